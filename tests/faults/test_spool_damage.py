"""Torn tail and flipped checksum bytes in spool segments, end to end: the restarted collector
quarantines and counts the damage, and every other acknowledged event still loads exactly once."""

from __future__ import annotations

import orjson

from collector.delivery.spool import HEADER, frame, scan
from tests.faults.harness import (Ledger, assert_exactly_once, assert_quiescent_conservation, fault_settings,
                                  metrics, send_until)
from collector.testing import CollectorProcess


def test_torn_tail_and_flipped_checksum_after_restart(tmp_path):
    down = tmp_path / "storage-down"
    down.touch()
    settings = fault_settings(tmp_path / "data", fault_store_file=str(down), spool_quota_bytes=192 * 1024,
                              segment_bytes=48 * 1024)
    ledger = Ledger()
    proc = CollectorProcess(settings, tmp_path).start()
    try:
        send_until(proc.url, ledger, "d", 503)  # everything acknowledged stays in the spool
    finally:
        assert proc.stop() == 0
    spool_dir = settings.data_dir / "spool"
    segs = sorted(p for p in spool_dir.glob("*.seg") if p.stat().st_size)
    assert len(segs) >= 3

    # flip a checksum byte of a record in the middle of the first segment
    buf = bytearray(segs[0].read_bytes())
    records = scan(bytes(buf)).records
    victim_end, victim = records[len(records) // 2]
    victim_start = victim_end - HEADER.size - len(victim)
    buf[victim_start + 6] ^= 0xFF
    segs[0].write_bytes(bytes(buf))
    # flip a payload byte of the last record of the second segment
    buf2 = bytearray(segs[1].read_bytes())
    last_end, last = scan(bytes(buf2)).records[-1]
    buf2[last_end - 5] ^= 0x20
    segs[1].write_bytes(bytes(buf2))
    lost = {orjson.loads(victim)["props"]["m"], orjson.loads(last)["props"]["m"]}
    # a torn tail: half a record after the last whole one, as a crash mid-write leaves it
    with open(segs[-1], "ab") as f:
        f.write(frame(b'{"_t":"events","never":"acknowledged"}')[:21])

    proc = CollectorProcess(settings.with_(fault_store_file=""), tmp_path).start()
    try:
        c = assert_quiescent_conservation(proc)
        m = metrics(proc)
        assert m["collector_events_dropped_total{reason=spool_damaged}"] == 2
        assert m["collector_events_dropped_total{reason=spool_torn}"] == 1
        assert m["collector_spool_quarantined_ranges"] == 2 and m["collector_spool_torn_tails"] == 1
        quarantine = sorted(p.suffix for p in (spool_dir / "quarantine").iterdir())
        assert quarantine == [".bad", ".bad", ".tail"]
        stored = assert_exactly_once(proc, ledger, lost=lost)
        # across the two lifetimes: acknowledged = stored + dropped as damaged (the torn record was never acked)
        assert len(ledger.acked) == len(stored) + 2
        assert c["inherited"] == len(ledger.acked) + 1
    finally:
        assert proc.stop() == 0
    # a second restart does not count the same damage again
    proc = CollectorProcess(settings.with_(fault_store_file=""), tmp_path).start()
    try:
        assert metrics(proc).get("collector_events_dropped_total", 0) == 0
    finally:
        assert proc.stop() == 0

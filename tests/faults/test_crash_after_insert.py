"""A crash between a ClickHouse insert and its checkpoint: the replayed batch is deduplicated by its token."""

from __future__ import annotations

import json

import httpx

from collector.faults import CRASH_EXIT_CODE
from collector.delivery.spool import scan
from collector.storage.store import Store
from tests.faults.harness import (Ledger, assert_exactly_once, assert_quiescent_conservation, fault_settings,
                                  send_batch, wait_for)
from collector.testing import CollectorProcess


def test_batch_replayed_after_crash_is_deduplicated(tmp_path):
    down, crash = tmp_path / "storage-down", tmp_path / "crash-after-insert"
    down.touch()
    settings = fault_settings(tmp_path / "data", fault_store_file=str(down),
                              fault_crash_after_insert_file=str(crash), batch_size=300)
    ledger = Ledger()
    proc = CollectorProcess(settings, tmp_path).start()
    # spool 1000 events while inserts fail, then let exactly one insert through and crash after it
    with_503 = 0
    with httpx.Client(timeout=10) as client:
        for _ in range(100):
            with_503 += send_batch(client, proc.url, ledger, "k") != 202
    assert with_503 == 0 and len(ledger.acked) == 1000
    crash.touch()
    down.unlink()
    code = proc.proc.wait(30)
    proc.proc = None
    assert code == CRASH_EXIT_CODE
    assert not crash.exists()
    cp = json.loads((settings.data_dir / "checkpoint.json").read_text())
    assert cp["pending"] is not None, "the crash must leave the batch pending"
    # the insert landed before the crash (nothing else holds the engine now: look directly)
    store = Store(settings.dsn, settings.database)
    try:
        landed = store.query_rows("SELECT count() FROM events")[0][0]
    finally:
        store.close()
    # exactly the pending range landed: its size depends on what was fsynced when the first
    # (failed) attempt fixed the batch boundaries, at most batch_size
    seg, start, end = cp["pending"]
    segment = (settings.data_dir / "spool" / f"{seg:012d}.seg").read_bytes()
    pending_records = len(scan(segment[start:end]).records)
    assert 0 < pending_records <= 300
    assert landed == pending_records
    proc = CollectorProcess(settings.with_(fault_store_file="", fault_crash_after_insert_file=""), tmp_path).start()
    try:
        c = assert_quiescent_conservation(proc)
        assert c["inherited"] == 1000 and c["stored"] == 1000  # the pending batch was inserted again ...
        stored = assert_exactly_once(proc, ledger)  # ... and ClickHouse discarded the copy
        assert len(stored) == 1000
        wait_for(lambda: json.loads((settings.data_dir / "checkpoint.json").read_text())["pending"] is None)
    finally:
        assert proc.stop() == 0

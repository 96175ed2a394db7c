"""Storage unavailable for a while, then healthy: the spool fills to its quota (then 503 with
Retry-After, never a 2xx for an unspooled event), drains after recovery, nothing lost or doubled."""

from __future__ import annotations

import httpx

from tests.faults.harness import (Ledger, Load, assert_exactly_once, assert_quiescent_conservation, conservation,
                                  fault_settings, metrics, send_until, wait_for)
from collector.testing import CollectorProcess, free_port

QUOTA = 256 * 1024


def test_failing_store_on_embedded_path_fills_spool_then_drains_by_itself(tmp_path):
    flag = tmp_path / "storage-down"
    flag.touch()
    settings = fault_settings(tmp_path / "data", spool_quota_bytes=QUOTA, segment_bytes=32 * 1024,
                              fault_store_file=str(flag))
    ledger = Ledger()
    proc = CollectorProcess(settings, tmp_path).start()
    try:
        sent = send_until(proc.url, ledger, "a", 503)
        assert sent > 5 and ledger.acked
        wait_for(lambda: metrics(proc)["collector_storage_healthy"] == 0, 30, what="a failed insert")
        m = metrics(proc)
        assert m["collector_spool_bytes"] <= QUOTA
        assert m["collector_events_refused_total{reason=spool_full}"] == len(ledger.refused)
        # still refusing while storage stays down (a smaller batch may still fit the last bytes), and not
        # ready meanwhile
        send_until(proc.url, ledger, "b", 503, limit=50)
        assert httpx.get(proc.url + "/readyz").status_code == 503
        flag.unlink()  # storage comes back: no restart, no operator action
        wait_for(lambda: metrics(proc)["collector_spool_unstored_records"] == 0, 30, what="the spool to drain")
        before = len(ledger.acked)
        with Load(proc.url, ledger, "c", threads=2, pause_s=0.01) as load:
            # several times the quota goes through: stored segments are reclaimed as the loader goes
            wait_for(lambda: len(ledger.acked) > before + 3000, 30, what="acceptance to resume")
            load.stop()
        c = assert_quiescent_conservation(proc)
        assert c["inherited"] == 0 and c["accepted"] == len(ledger.acked)
        assert c["refused"] == len(ledger.refused)
        stored = assert_exactly_once(proc, ledger)
        assert len(stored) == len(ledger.acked)  # no crash: nothing unknown
        assert metrics(proc)["collector_spool_bytes"] < QUOTA
    finally:
        assert proc.stop() == 0


def test_unreachable_clickhouse_server_then_drain(tmp_path):
    """An http:// DSN to a closed port: events are spooled up to the quota, then 503. The same data
    directory is then served on the embedded engine, which loads the spool (chDB is the only
    ClickHouse here; a server coming back is the same code path as the embedded store answering)."""
    dead = f"http://127.0.0.1:{free_port()}/?database=analytics"
    settings = fault_settings(tmp_path / "data", spool_quota_bytes=QUOTA, segment_bytes=32 * 1024,
                              clickhouse_dsn=dead)
    ledger = Ledger()
    proc = CollectorProcess(settings, tmp_path).start()
    try:
        send_until(proc.url, ledger, "a", 503)
        assert metrics(proc)["collector_storage_healthy"] == 0  # known at startup: migrations could not run
        first = conservation(proc)
        assert first["accepted"] == len(ledger.acked) and first["stored"] == 0
        assert first["unstored"] == len(ledger.acked)
    finally:
        assert proc.stop() == 0  # the loader cannot drain: the spool keeps the events
    proc = CollectorProcess(settings.with_(clickhouse_dsn=""), tmp_path).start()
    try:
        c = assert_quiescent_conservation(proc)
        assert c["inherited"] == len(ledger.acked)  # across lifetimes: accepted then = inherited now
        stored = assert_exactly_once(proc, ledger)
        assert len(stored) == len(ledger.acked)
    finally:
        assert proc.stop() == 0

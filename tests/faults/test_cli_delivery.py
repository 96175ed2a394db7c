"""``collector spool status`` (running and offline) and ``collector replay`` (offline, progress bar)."""

from __future__ import annotations

import json

from tests.faults.harness import Ledger, cli, fault_settings, send_until
from collector.testing import CollectorProcess


def test_spool_status_and_offline_replay(tmp_path):
    down = tmp_path / "storage-down"
    down.touch()
    settings = fault_settings(tmp_path / "data", fault_store_file=str(down), spool_quota_bytes=128 * 1024,
                              segment_bytes=32 * 1024)
    ledger = Ledger()
    proc = CollectorProcess(settings, tmp_path).start()
    try:
        send_until(proc.url, ledger, "q", 503)
        live = cli(proc.env, "spool", "status", "--json")
        assert live.returncode == 0, live.stderr
        report = json.loads(live.stdout)
        assert report["running"] and not report["storage_healthy"] and "fault drill" in report["last_error"]
        assert report["unstored_records"] == len(ledger.acked) and report["segments"] >= 3
        assert report["conservation"]["unaccounted"] == 0
        text = cli(proc.env, "spool", "status").stdout
        assert f"unstored: {len(ledger.acked)} records" in text and "storage: failing" in text
    finally:
        assert proc.stop() == 0
    offline = cli(proc.env, "spool", "status", "--json")
    assert offline.returncode == 0, offline.stderr
    report = json.loads(offline.stdout)
    assert not report["running"] and report["unstored_records"] == len(ledger.acked)
    assert report["oldest_unstored_age_s"] > 0

    replay = cli(proc.env, "replay")
    assert replay.returncode == 0, replay.stderr
    steps = [line for line in replay.stderr.splitlines() if line.startswith("[")]
    assert steps[-1].startswith("[" + "#" * 40 + "] 100.0%")
    assert any(" 100.0%" not in s for s in steps), "the progress bar never showed progress"  # it moved
    assert f"{len(ledger.acked)} rows stored" in replay.stdout
    after = json.loads(cli(proc.env, "spool", "status", "--json").stdout)
    assert after["unstored_records"] == 0 and after["unstored_bytes"] == 0
    again = cli(proc.env, "replay")  # nothing left: a second replay stores nothing
    assert again.returncode == 0 and "0 rows stored" in again.stdout
    count = cli(proc.env, "query", "--format", "TSV", "SELECT count(), uniqExact(props['m']) FROM events")
    assert count.stdout.split() == [str(len(ledger.acked))] * 2


def test_replay_reports_unreachable_storage(tmp_path):
    settings = fault_settings(tmp_path / "data", clickhouse_dsn="http://127.0.0.1:9/?database=analytics")
    proc = CollectorProcess(settings, tmp_path).start()
    ledger = Ledger()
    try:
        send_until(proc.url, ledger, "u", 202, limit=1)
    finally:
        assert proc.stop() == 0
    out = cli(proc.env, "replay")
    assert out.returncode == 1
    assert "replay stopped" in out.stdout and "cannot reach ClickHouse" in out.stdout
    assert "Traceback" not in out.stderr

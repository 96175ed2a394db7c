"""Disk full under the spool: 503 with Retry-After (never a 2xx for an unspooled event), no corrupt
segment, and acceptance resumes by itself once stored segments free the space.

As root the spool directory is a real 384 KiB tmpfs; otherwise the spool's write call is wrapped by
the ``COLLECTOR_FAULT_SPOOL_FULL_FILE`` drill hook (half the bytes land, then ENOSPC)."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

from tests.faults.harness import (Ledger, Load, assert_exactly_once, assert_quiescent_conservation,
                                  assert_segments_clean, body, fault_settings, metrics, send_until, wait_for)
from collector.testing import CHROME_UA, CollectorProcess


@pytest.fixture
def small_disk(tmp_path):
    spool = tmp_path / "data" / "spool"
    spool.mkdir(parents=True)
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=384k,mode=0700", "tmpfs", str(spool)], check=True)
        yield spool, None
        subprocess.run(["umount", "-l", str(spool)], check=False)
    else:
        yield spool, tmp_path / "disk-full"


def test_disk_full_refuses_then_resumes(tmp_path, small_disk):
    spool_dir, drill = small_disk
    down = tmp_path / "storage-down"
    down.touch()
    extra = {"fault_spool_full_file": str(drill)} if drill else {}
    settings = fault_settings(tmp_path / "data", fault_store_file=str(down), spool_quota_bytes=64 << 20,
                              segment_bytes=64 * 1024, **extra)
    ledger = Ledger()
    proc = CollectorProcess(settings, tmp_path).start()
    try:
        if drill:
            send_until(proc.url, ledger, "a", 202, limit=1)
            drill.touch()
        send_until(proc.url, ledger, "a", 503, limit=20000)
        probe = [f"zzprobe{c}" for c in "abcdefghijkl"]
        r = httpx.post(proc.url + "/api/batch", content=body(probe),
                       headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA})
        assert r.status_code == 503 and r.headers["retry-after"].isdigit() and "disk full" in r.text
        ledger.refused.update(probe)
        assert metrics(proc)["collector_events_refused_total{reason=spool_full}"] == len(ledger.refused)
        assert_segments_clean(spool_dir)
        # space comes back when storage recovers and stored segments are deleted
        down.unlink()
        if drill:
            drill.unlink()
        wait_for(lambda: metrics(proc)["collector_spool_unstored_records"] == 0, 30, what="the spool to drain")
        before = len(ledger.acked)
        with Load(proc.url, ledger, "b", threads=2, pause_s=0.01) as load:
            wait_for(lambda: len(ledger.acked) > before + 2000, 30, what="acceptance to resume")
            load.stop()
        c = assert_quiescent_conservation(proc)
        assert c["accepted"] == len(ledger.acked) and c["refused"] == len(ledger.refused)
        stored = assert_exactly_once(proc, ledger)
        assert len(stored) == len(ledger.acked)
        assert_segments_clean(spool_dir)
    finally:
        assert proc.stop() == 0

"""``storage_process``: on the embedded engine, chDB, the internal listener and the migrations run in a
process of their own that accepts no beacons; the beacon processes' loaders insert through it. The
conservation oracle under load, kill -9 repeatedly and SIGTERM under load, as for ``--workers``."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

from collector.testing import ROOT
from tests.faults.harness import (Ledger, Load, assert_exactly_once, assert_segments_clean, fault_settings,
                                  stored_markers, wait_for)
from tests.faults.test_workers import WorkersProcess, alive, spools


class StorageProcess(WorkersProcess):
    """``collector serve --workers N`` with ``storage_process``: N beacon processes and the storage one."""

    def __init__(self, settings, workdir, beacon_workers: int = 1):
        super().__init__(settings, workdir, workers=beacon_workers)
        self.beacon_workers = beacon_workers

    def start(self, timeout: float = 90) -> "StorageProcess":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "collector", "serve", "--workers",
                                          str(self.beacon_workers)], env=self.env, cwd=ROOT,
                                         stdout=log, stderr=subprocess.STDOUT)
        processes = self.beacon_workers + 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            text = self.log_path.read_text()
            try:
                if text.count("Application startup complete") >= self.start_count + processes and \
                        self.internal("GET", "/healthz").status_code == 200:
                    self.start_count += processes
                    return self
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            time.sleep(0.1)
        raise RuntimeError("collector did not start: " + self.log_path.read_text()[-3000:])



def checkpoint_of(spool_dir) -> dict:
    ckpt = (spool_dir.parent / "checkpoint.json") if spool_dir.name == "spool" else \
        spool_dir.parent / f"{spool_dir.name}.checkpoint.json"
    return json.loads(ckpt.read_text()) if ckpt.exists() else {"seg": 0, "offset": 0}


def test_the_storage_process_takes_no_beacons_and_everything_is_stored_once(tmp_path):
    settings = fault_settings(tmp_path / "data", storage_process=True)
    proc = StorageProcess(settings, tmp_path).start()
    ledger = Ledger()
    try:
        assert len(proc.worker_pids()) == 2  # the storage process and one beacon process
        with Load(proc.url, ledger, "p", threads=6, pause_s=0.005, reconnect_every=5):
            time.sleep(3)
        assert ledger.acked and not ledger.refused and not ledger.unknown
        wait_for(lambda: ledger.acked <= set(stored_markers(proc)), 60, what="the beacon process's spool stored")
        stored = assert_exactly_once(proc, ledger)
        assert len(stored) == len(ledger.acked)
        data = proc.settings.data_dir
        # every beacon went through the beacon process's spool; the storage process spooled none
        assert checkpoint_of(data / "spool" / "worker-1")["offset"] > 0 or \
            checkpoint_of(data / "spool" / "worker-1")["seg"] > 1
        owner = checkpoint_of(data / "spool")
        assert owner["offset"] == 0 and owner.get("seg", 0) <= 1, owner
        assert not any(p.stat().st_size for p in (data / "spool").glob("*.seg"))
        log = proc.log_path.read_text()
        assert "storage process: embedded chDB" in log and "/_worker/insert" not in log
    finally:
        assert proc.stop() == 0
    for d in spools(tmp_path / "data"):
        assert_segments_clean(d)
    assert proc.log_path.read_text().count("stopped; spool drained") == 2


def test_kill9_with_a_storage_process_repeatedly(tmp_path):
    rng = random.Random(11)
    settings = fault_settings(tmp_path / "data", segment_bytes=256 * 1024, batch_size=500, storage_process=True)
    ledger = Ledger()
    proc = StorageProcess(settings, tmp_path)
    for rnd in range(3):
        proc.start()
        pids = proc.worker_pids()
        with Load(proc.url, ledger, "q" + "abc"[rnd], threads=4):
            time.sleep(rng.uniform(0.8, 1.8))
            proc.kill()
        # both die with the parent: nothing keeps the port, a spool or the engine's data open
        wait_for(lambda: not any(alive(p) for p in pids), 10, what="the processes to die with the parent")
    proc.start()
    try:
        wait_for(lambda: ledger.acked <= set(stored_markers(proc)), 60, what="every acknowledged event stored")
        stored = assert_exactly_once(proc, ledger)
        assert len(ledger.acked) <= len(stored) <= len(ledger.sent)
    finally:
        assert proc.stop() == 0


def test_sigterm_with_a_storage_process_under_load(tmp_path):
    settings = fault_settings(tmp_path / "data", shutdown_deadline_s=15.0, storage_process=True)
    ledger = Ledger()
    proc = StorageProcess(settings, tmp_path).start()
    with Load(proc.url, ledger, "r", threads=4):
        time.sleep(1.5)
        proc.proc.send_signal(signal.SIGTERM)
        code = proc.proc.wait(60)
        proc.proc = None
    assert code == 0
    assert set(ledger.other_status) <= {503}, ledger.other_status
    assert proc.log_path.read_text().count("stopped; spool drained") == 2
    proc.start()
    try:
        stored = assert_exactly_once(proc, ledger)
        assert ledger.acked <= set(stored)
    finally:
        assert proc.stop() == 0

"""``collector serve --workers N``: several ingest processes on one port, each with its own spool. The
conservation oracle, kill -9 and SIGTERM under load, on the embedded engine (one owner of chDB loads
through for the others) and with a server DSN (every worker loads its own spool)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from collector.testing import ROOT, CollectorProcess
from collector.testing_clickhouse import ClickHouseHTTP
from tests.faults.harness import (Ledger, Load, assert_exactly_once, assert_segments_clean, cli, fault_settings,
                                  stored_markers, wait_for)

WORKERS = 3


class WorkersProcess(CollectorProcess):
    """``collector serve --workers N`` as a child process."""

    def __init__(self, settings, workdir, workers: int = WORKERS, extra_env=None):
        super().__init__(settings, workdir, extra_env)
        self.workers = workers

    def start(self, timeout: float = 90) -> "WorkersProcess":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "collector", "serve", "--workers", str(self.workers)],
                                         env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            text = self.log_path.read_text()
            try:
                if text.count("Application startup complete") >= self.start_count + self.workers and \
                        self.internal("GET", "/healthz").status_code == 200:
                    self.start_count += self.workers
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("collector did not start: " + self.log_path.read_text()[-3000:])

    start_count = 0

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def spools(data_dir) -> list:
    return [data_dir / "spool", *sorted(p for p in (data_dir / "spool").glob("worker-*") if p.is_dir())]


def test_workers_share_the_port_and_store_everything_once(tmp_path):
    settings = fault_settings(tmp_path / "data")
    proc = WorkersProcess(settings, tmp_path).start()
    ledger = Ledger()
    try:
        assert len(proc.worker_pids()) == WORKERS
        with Load(proc.url, ledger, "w", threads=6, pause_s=0.005, reconnect_every=5):
            time.sleep(3)
        assert ledger.acked and not ledger.refused and not ledger.unknown
        wait_for(lambda: ledger.acked <= set(stored_markers(proc)), 60, what="every worker's spool to be stored")
        stored = assert_exactly_once(proc, ledger)
        assert len(stored) == len(ledger.acked)  # no crash: accepted = stored, per marker
        # every worker took connections and spooled into its own spool
        used = [d for d in spools(proc.settings.data_dir) if d.name == "spool" or d.name.startswith("worker-")]
        assert len(used) == WORKERS
        for d in used:
            ckpt = (proc.settings.data_dir / "checkpoint.json") if d.name == "spool" else \
                d.parent / f"{d.name}.checkpoint.json"
            cp = json.loads(ckpt.read_text())
            assert cp["seg"] > 1 or cp["offset"] > 0, f"{d} loaded nothing"
    finally:
        assert proc.stop() == 0
    for d in spools(tmp_path / "data"):
        assert_segments_clean(d)
    assert proc.log_path.read_text().count("stopped; spool drained") == WORKERS


def test_the_cli_and_the_internal_listener_reach_the_owner(tmp_path):
    settings = fault_settings(tmp_path / "data")
    proc = WorkersProcess(settings, tmp_path, workers=2).start()
    try:
        out = subprocess.run([sys.executable, "-m", "collector", "query", "--format", "TSV", "SELECT 1"],
                             env=proc.env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr
        # the workers' insert path is closed to anyone without the workers' secret, admin token or not
        r = proc.admin("POST", "/_worker/insert", params={"table": "events", "token": "x"}, content=b"{}")
        assert r.status_code == 404
    finally:
        assert proc.stop() == 0


def _by_worker(proc, family: str, sample: str | None = None) -> dict[str, float]:
    """The owner's export of ``family``, summed per ``worker`` label (``sample``: one sample name only)."""
    text = proc.internal("GET", "/metrics").text
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == family:
            for s in fam.samples:
                if sample is None or s.name == sample:
                    out[s.labels["worker"]] = out.get(s.labels["worker"], 0.0) + s.value
    return out


def test_the_owners_metrics_hold_every_workers_numbers(tmp_path):
    settings = fault_settings(tmp_path / "data")
    proc = WorkersProcess(settings, tmp_path, workers=2).start()
    ledger = Ledger()
    try:
        with Load(proc.url, ledger, "m", threads=4, pause_s=0.005, reconnect_every=5):
            time.sleep(1.5)
            # under traffic, a flush (``collector replay`` while running) asks the other worker too, and
            # everything acknowledged before it is stored when it answers
            before = set(ledger.acked)
            flushed = proc.admin("POST", "/admin/flush").json()
            assert flushed["flushed"], flushed
            assert before and before <= set(stored_markers(proc))
            time.sleep(0.5)
        assert ledger.acked and not ledger.refused and not ledger.unknown
        flushed = proc.admin("POST", "/admin/flush").json()
        assert flushed["flushed"] and flushed["unstored_bytes"] == 0
        assert [(w["worker"], w["unstored_bytes"]) for w in flushed["workers"]] == [(1, 0)]
        assert ledger.acked <= set(stored_markers(proc))
        # within a push or two, the owner's export counts what each worker accepted and stored
        wait_for(lambda: sum(_by_worker(proc, "collector_events_stored").values()) == len(ledger.acked), 15,
                 what="the workers' stored counts in the owner's metrics")
        accepted = _by_worker(proc, "collector_events_accepted")
        assert set(accepted) == {"0", "1"} and all(v > 0 for v in accepted.values()), accepted
        assert sum(accepted.values()) == len(ledger.acked)
        requests = _by_worker(proc, "collector_http_requests")
        assert requests["0"] > 0 and requests["1"] > 0
        # each worker's own spool, not the owner's twice
        assert set(_by_worker(proc, "collector_spool_quota_bytes")) == {"0", "1"}
        age = _by_worker(proc, "collector_worker_metrics_age_seconds")
        assert age["0"] == 0 and 0 <= age["1"] < 5
        # the metrics path is closed to anyone without the workers' secret, admin token or not
        r = proc.admin("POST", "/_worker/metrics", params={"worker": "1"}, content=b"collector_events_accepted_total 1e9\n")
        assert r.status_code == 404
        assert sum(_by_worker(proc, "collector_events_accepted").values()) == len(ledger.acked)
    finally:
        assert proc.stop() == 0


def test_spool_status_and_replay_cover_every_workers_spool(tmp_path):
    down = tmp_path / "storage-down"
    down.touch()
    settings = fault_settings(tmp_path / "data", fault_store_file=str(down))
    proc = WorkersProcess(settings, tmp_path, workers=2).start()
    ledger = Ledger()
    try:
        with Load(proc.url, ledger, "s", threads=4, pause_s=0.005, reconnect_every=3):
            time.sleep(1.5)
        assert ledger.acked and not ledger.refused and not ledger.unknown

        def live() -> dict:
            out = cli(proc.env, "spool", "status", "--json")
            assert out.returncode == 0, out.stderr
            return json.loads(out.stdout)

        # storage is down: every acknowledged event waits in one of the two spools, and the owner's
        # report holds the other worker's from its metrics
        wait_for(lambda: live()["unstored_records"] + sum(w.get("unstored_records") or 0 for w in live()["workers"])
                 == len(ledger.acked), 15, what="both spools in the owner's report")
        report = live()
        (other,) = report["workers"]
        assert other["worker"] == 1 and other["reported"] and other["unstored_records"] > 0
        assert report["unstored_records"] > 0 and not other["storage_healthy"]
        text = cli(proc.env, "spool", "status").stdout
        assert "worker 1: " in text and f"unstored {other['unstored_records']} records" in text
    finally:
        assert proc.stop() == 0
    offline = cli(proc.env, "spool", "status", "--json")
    assert offline.returncode == 0, offline.stderr
    report = json.loads(offline.stdout)
    assert not report["running"] and [w["worker"] for w in report["workers"]] == [1]
    assert report["unstored_records"] + report["workers"][0]["unstored_records"] == len(ledger.acked)

    replay = cli(proc.env, "replay")  # storage is the embedded engine again: no fault drill offline
    assert replay.returncode == 0, replay.stderr
    assert "worker 1's spool:" in replay.stdout
    after = json.loads(cli(proc.env, "spool", "status", "--json").stdout)
    assert after["unstored_records"] == 0 and after["workers"][0]["unstored_records"] == 0
    count = cli(proc.env, "query", "--format", "TSV", "SELECT count(), uniqExact(props['m']) FROM events")
    assert count.stdout.split() == [str(len(ledger.acked))] * 2


def test_kill9_with_workers_repeatedly(tmp_path):
    rng = random.Random(7)
    settings = fault_settings(tmp_path / "data", segment_bytes=256 * 1024, batch_size=500)
    ledger = Ledger()
    proc = WorkersProcess(settings, tmp_path)
    for rnd in range(4):
        proc.start()
        pids = proc.worker_pids()
        with Load(proc.url, ledger, "k" + "abcdefgh"[rnd], threads=4):
            time.sleep(rng.uniform(0.8, 1.8))
            proc.kill()
        # the workers die with the parent (nothing keeps the port or a spool open)
        wait_for(lambda: not any(alive(p) for p in pids), 10, what="the workers to die with the parent")
    proc.start()
    try:
        wait_for(lambda: ledger.acked <= set(stored_markers(proc)), 60, what="every acknowledged event stored")
        stored = assert_exactly_once(proc, ledger)
        assert len(ledger.acked) <= len(stored) <= len(ledger.sent)
    finally:
        assert proc.stop() == 0
    print(f"kill -9 x4 with {WORKERS} workers: {len(ledger.acked)} acknowledged, {len(stored)} stored, "
          f"{len(ledger.unknown)} unanswered at the kills")


def test_sigterm_with_workers_under_load(tmp_path):
    settings = fault_settings(tmp_path / "data", fsync="always", shutdown_deadline_s=15.0)
    ledger = Ledger()
    proc = WorkersProcess(settings, tmp_path).start()
    readiness: list[int] = []
    stop = threading.Event()

    def poll():
        with httpx.Client(timeout=2) as c:
            while not stop.is_set():
                try:
                    readiness.append(c.get(proc.url + "/readyz").status_code)
                except httpx.HTTPError:
                    readiness.append(0)
                time.sleep(0.02)

    with Load(proc.url, ledger, "t", threads=4):
        time.sleep(1.5)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        time.sleep(0.1)
        proc.proc.send_signal(signal.SIGTERM)
        code = proc.proc.wait(60)
        proc.proc = None
    stop.set()
    poller.join(5)
    assert code == 0
    assert 503 in readiness, "readiness never turned unhealthy"
    assert set(ledger.other_status) <= {503}, ledger.other_status
    log = proc.log_path.read_text()
    assert log.count("stopped; spool drained") == WORKERS, log[-3000:]
    proc.start()
    try:
        stored = assert_exactly_once(proc, ledger)
        assert ledger.acked <= set(stored)
    finally:
        assert proc.stop() == 0


def test_workers_with_a_server_dsn_each_load_their_own_spool(tmp_path):
    server = ClickHouseHTTP(tmp_path / "clickhouse").start()
    try:
        settings = fault_settings(tmp_path / "data", clickhouse_dsn=server.dsn(), segment_bytes=256 * 1024)
        proc = WorkersProcess(settings, tmp_path).start()
        ledger = Ledger()
        try:
            server.faults(drop=2, apply=True)  # two answers lost after the insert ran: retried, deduplicated
            with Load(proc.url, ledger, "s", threads=4, pause_s=0.005):
                time.sleep(1.0)
                proc.kill()
            proc.start()
            with Load(proc.url, ledger, "u", threads=4, pause_s=0.005):
                time.sleep(1.5)
        finally:
            assert proc.stop() == 0
        proc.start()
        try:
            wait_for(lambda: ledger.acked <= set(stored_markers(proc)), 60, what="every acknowledged event")
            stored = assert_exactly_once(proc, ledger)
            assert int(server.query("SELECT count() FROM events")) == len(stored)
            assert "/_worker/insert" not in proc.log_path.read_text()
        finally:
            assert proc.stop() == 0
        assert server.stats()["dropped"] == 2
    finally:
        server.stop()

"""Beacons/s against ``collector serve --workers N`` for N from 1 to the machine's cores.

The same single-event requests as the ``beacons`` step (rotating bodies, User-Agents and client
addresses; ``loadtests.wrk``), closed loop, 64 connections, best of ``rounds``, each N on a fresh data
directory with production delivery settings and the embedded engine (worker 0 owns chDB and runs the
others' inserts). wrk runs on the same machine with one thread, so on a small machine the load
generator takes a core the workers would otherwise use: read the curve as a lower bound, and the
per-worker figure at N = 1 as the per-process figure of the capacity model (docs/scaling.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from loadtests import geodata, servers, traffic, wrk

CONNECTIONS = 64
THREADS = 1


class WorkersCollector:
    """``collector serve --workers N`` with the benchmark's settings (``servers.collector``)."""

    def __init__(self, workdir: Path, workers: int, city: str, asn: str):
        self.inner = servers.collector(workdir, city, asn)
        self.workers = workers
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.inner.url

    def start(self, timeout: float = 120) -> "WorkersCollector":
        log = self.inner.log_path
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "collector", "serve", "--workers", str(self.workers)],
                                         env=self.inner.env, cwd=servers.ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited: {log.read_text()[-2000:]}")
            try:
                ok = httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok and (self.workers == 1 or len(subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                                               text=True).stdout.split()) >= self.workers):
                time.sleep(1.0)  # the last workers finish their start-up
                return self
            time.sleep(0.1)
        raise RuntimeError("collector did not start: " + log.read_text()[-2000:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def run(duration_s: float = 5.0, rounds: int = 2, max_workers: int = 0, log=print) -> dict:
    cores = os.cpu_count() or 1
    counts = list(range(1, (max_workers or cores) + 1))
    mix = traffic.Mix()
    script = wrk.script("/api/event", mix.requests(2000, 1), rate_per_thread=0)
    points = []
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as d:
        tmp = Path(d)
        city, asn = geodata.databases(tmp / "mmdb", mix.ips)
        for n in counts:
            coll = WorkersCollector(tmp / f"w{n}", n, city, asn)
            try:
                coll.start()
                wrk.run(coll.url + "/api/event", script, 1.0, CONNECTIONS, THREADS)  # warm up every worker
                best = max((wrk.run(coll.url + "/api/event", script, duration_s, CONNECTIONS, THREADS)
                            for _ in range(rounds)), key=lambda r: r.rate)
            finally:
                coll.stop()
            points.append({"workers": n, "beacons_s": round(best.rate), "p50_ms": best.p50_ms, "p99_ms": best.p99_ms,
                           "non_2xx": best.non_2xx, "errors": best.errors})
            log(f"workers {n}: {best.rate:,.0f} beacons/s, p99 {best.p99_ms:.2f} ms")
    base = points[0]["beacons_s"] or 1
    for p in points:
        p["speedup"] = round(p["beacons_s"] / base, 2)
    return {"cores": cores, "duration_s": duration_s, "rounds": rounds, "connections": CONNECTIONS,
            "wrk_threads": THREADS, "points": points}


if __name__ == "__main__":
    import json

    print(json.dumps(run(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0), indent=1))

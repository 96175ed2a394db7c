"""Latency at one fixed offered rate for collector variants side by side: each variant is the bench's
collector (``loadtests.servers.collector``) with its own settings, all started at once and paced by
the same wrk script in interleaved rounds (``loadtests.wrk``'s fixed-rate pacing, 64 connections).

    .venv/bin/python -m loadtests.latency --rate 10000 \\
        default='{}' nostore='{"clickhouse_dsn": "http://127.0.0.1:9/"}' nice19='{"storage_nice": 19}'

Each variant is ``name=JSON`` of settings overrides. Prints p50/p90/p99/p99.9/max per variant and
round, and the event loop's garbage-collection pauses the collector exports.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from loadtests import geodata, servers, traffic, wrk
from loadtests.beacons import CONNECTIONS, THREADS, _drain, lua


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10000, help="offered requests/s")
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("variants", nargs="+", help="name=JSON settings overrides")
    args = ap.parse_args()
    variants = dict(v.split("=", 1) for v in args.variants)
    mix = traffic.Mix()
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as d:
        tmp = Path(d)
        city, asn = geodata.databases(tmp / "mmdb", mix.ips)
        procs = {name: servers.collector(tmp / name, city, asn, **json.loads(overrides))
                 for name, overrides in variants.items()}
        single = lua("/api/event", mix, 2000)
        paced = lua("/api/event", mix, 2000, rate=args.rate)
        try:
            for p in procs.values():
                p.start()
                wrk.run(p.url + "/api/event", single, 1.0, CONNECTIONS, THREADS)  # warm up
            for r in range(args.rounds):
                for name, p in procs.items():
                    _drain(p, 60)
                    res = wrk.run(p.url + "/api/event", paced, args.seconds, CONNECTIONS, THREADS)
                    gc = {line.split('generation="')[1][0]: f"{float(line.split()[-1]) * 1e3:.1f} ms"
                          for line in p.metrics().splitlines() if line.startswith("collector_gc_pause_max_seconds{")}
                    print(f"{name:12s} round {r + 1}: {res.rate:.0f}/s  p50 {res.p50_ms:.2f}  p90 {res.p90_ms:.2f}  "
                          f"p99 {res.p99_ms:.2f}  p99.9 {res.p999_ms:.2f}  max {res.max_ms:.2f} ms  non-2xx "
                          f"{res.non_2xx}  gc max pause by generation {gc}", flush=True)
        finally:
            for p in procs.values():
                p.stop()


if __name__ == "__main__":
    main()

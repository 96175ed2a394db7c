"""``make bench``: every performance figure of the brief, each against a baseline measured in the same run
on the same machine, printed as a table and written to docs/benchmarks.md.

    python -m loadtests.bench [--quick] [--only beacons,enrichment,requestcpu,useragent,loader,freshness,dashboard]
                              [--seconds N] [--no-write] [--json FILE]

Everything runs on loopback, on ephemeral ports, in temporary directories, and stops by itself
(about three minutes in full; ``--quick`` takes well under a minute and writes nothing by default).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from loadtests import report

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("useragent", "enrichment", "requestcpu", "loader", "beacons", "freshness", "memory", "dashboard", "workers")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs (a smoke test, not figures to keep)")
    ap.add_argument("--only", default=",".join(PARTS), help="comma-separated parts to run")
    ap.add_argument("--seconds", type=float, default=0, help="seconds per wrk run (default 5, quick 1)")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--json", default="", help="also write the raw results here")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")
    quick = args.quick
    seconds = args.seconds or (1.0 if quick else 5.0)
    write = not args.no_write and not quick and set(parts) == set(PARTS)
    results: dict = {"errors": {}}
    t_start = time.monotonic()

    def step(name: str, fn) -> None:
        if name not in parts:
            return
        print(f"[{time.monotonic() - t_start:5.0f}s] {name} ...", flush=True)
        try:
            results[name] = fn()
        except Exception as exc:  # noqa: BLE001 - one failed part must not hide the others
            traceback.print_exc()
            results["errors"][name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]

    from loadtests import beacons, dashboard, enrichment, freshness, loader, memory, requestcpu, useragent, wrk

    step("useragent", lambda: useragent.run(n_miss=200 if quick else 2000, n_baseline=30 if quick else 300))
    step("enrichment", lambda: enrichment.run(0.3 if quick else 4.0, 500 if quick else 4000))
    step("requestcpu", lambda: {"single": requestcpu.run(500 if quick else 4000, 3 if quick else 7),
                                "batch": requestcpu.run(100 if quick else 400, 3 if quick else 7, batch=True)})
    step("loader", lambda: loader.run(5000 if quick else 50_000, 1 if quick else 2))
    if "beacons" in parts and not wrk.available():
        results["errors"]["beacons"] = "wrk is not installed (scripts/bench-deps.sh installs it)"
    else:
        step("beacons", lambda: beacons.run(seconds, rounds=1 if quick else 2, warmup_s=1.0,
                                            curve_points=3 if quick else 6))
    step("freshness", lambda: freshness.run(duration_s=2 if quick else 10))
    step("memory", lambda: memory.run(10 if quick else 90))
    step("dashboard", lambda: dashboard.run(n_events=50_000 if quick else 2_000_000, rounds=1 if quick else 3))
    step("workers", lambda: __import__("loadtests.workers", fromlist=["run"]).run(seconds, 1 if quick else 2))
    elapsed = time.monotonic() - t_start

    print()
    print(report.table(results))
    print()
    print(report.details(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if write:
        command = "make bench" if "MAKELEVEL" in __import__("os").environ else "python -m loadtests.bench"
        if results.get("beacons", {}).get("curve"):
            beacons.plot_curve(results["beacons"]["curve"], ROOT / "docs" / "benchmarks-load.png")
        if results.get("memory"):
            memory.plot(results["memory"], ROOT / "docs" / "benchmarks-rss.png")
        report.write(ROOT / "docs" / "benchmarks.md", results, command, elapsed)
        print(f"\nwritten to docs/benchmarks.md ({elapsed:.0f} s)")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

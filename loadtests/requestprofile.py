"""Where a request's Python time goes inside the server: ``loadtests.requestcpu``'s collector side (the
same pre-formatted requests of the realistic mix through the public protocol on in-memory connections,
the loader thread and embedded engine running) under ``py-spy``, its event loop's samples grouped
into the parts of a request, each as a share of the event loop's time.

    .venv/bin/python -m loadtests.requestprofile [--passes 60] [--batch] [--rate 400] [--out stacks.txt]

The shares multiply with ``requestcpu``'s figure (µs per request, measured without the profiler) to
give µs per part. py-spy samples from outside the process, so the shares are not skewed by it.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (part, frames that mark it), matched in this order on each sample's stack: the first part one of
# whose frames is on the stack takes the sample
PARTS = [
    ("answer: status line and headers, write, uvicorn's end of cycle, request metrics",
     ("Collector._submit.<locals>.written", "BeaconApp._done")),
    ("pipeline steps", ("Pipeline.run_many", "Pipeline.run", "Pipeline.apply")),
    ("record encoding", ("Collector._records",)),
    ("spool write (one per turn)", ("SharedWrite._flush", "Spool.append", "Spool.append_groups")),
    ("events and outcomes built per request", ("Collector.ingest_soon", "Collector._run_turn")),
    ("JSON decoding and validation", ("BeaconApp._events", "decode_events")),
    ("client address, rate limit, content type", ("BeaconApp._admit", "BeaconApp._pixel")),
    ("headers read, the turn's queue", ("BeaconApp._run_front", "BeaconApp.inline")),
    ("HTTP parsing and uvicorn's protocol (the bare route pays it too)", ("BeaconProtocol.data_received",)),
]
OTHER = "event loop and the rest"
# the harness's own setup and teardown on the event loop's thread
SETUP = {"create_app", "Collector.start", "Collector.stop", "settle", "_protocols", "Config.load"}


def parts(collapsed: str) -> tuple[int, list[tuple[str, float]]]:
    """(event-loop samples, [(part, share)]) from py-spy's collapsed stacks."""
    counts: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or "Runner.run" not in stack:
            continue  # not the event loop's thread (the loader, the engine, workers, startup)
        names = {frame.split(" (")[0] for frame in stack.split(";")}
        if not names.isdisjoint(SETUP):
            continue
        samples += int(n)
        for part, marks in PARTS:
            if not names.isdisjoint(marks):
                counts[part] += int(n)
                break
        else:
            counts[OTHER] += int(n)
    return samples, [(p, n / samples) for p, n in counts.most_common()] if samples else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passes", type=int, default=60)
    ap.add_argument("--batch", action="store_true")
    ap.add_argument("--rate", type=int, default=400, help="py-spy samples per second")
    ap.add_argument("--out", default="", help="where to keep the collapsed stacks")
    args = ap.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory(prefix="bench-requestprofile-") as d:
        raw = Path(d) / "stacks.txt"
        cmd = [pyspy, "record", "-r", str(args.rate), "-f", "raw", "-o", str(raw), "--",
               sys.executable, "-m", "loadtests.requestcpu", "--collector-only", "--passes", str(args.passes)]
        if args.batch:
            cmd.append("--batch")
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0 or not raw.exists():
            raise SystemExit(f"py-spy failed: {proc.stderr[-2000:]}")
        stacks = raw.read_text()
    if args.out:
        Path(args.out).write_text(stacks)
    samples, shares = parts(stacks)
    print(f"{samples} event-loop samples ({'20-event batches' if args.batch else 'single events'})")
    for part, share in shares:
        print(f"  {100 * share:5.1f}%  {part}")


if __name__ == "__main__":
    main()

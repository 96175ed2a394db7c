"""Profiles the collector's request path under load: the collector in a child process, wrk at its max
rate, and py-spy sampling the collector meanwhile. Prints the functions with the most own time and the
most total time (per thread: the event loop serves requests, ``loader`` writes to ClickHouse), and
keeps the collapsed stacks for a flame graph.

    .venv/bin/python -m loadtests.profile [--batch] [--seconds 10] [--out profile.txt]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from loadtests import beacons, geodata, servers, traffic, wrk


def summarize(collapsed: str, top: int = 25) -> str:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        threads[frames[0]] += n
        own[frames[-1]] += n
        for f in set(frames[1:]):
            total[f] += n
    out = [f"{samples} samples"]
    out += [f"  thread {t}: {100 * n / samples:.1f}%" for t, n in threads.most_common(6)]
    out.append("own time:")
    out += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in own.most_common(top)]
    out.append("total time:")
    out += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in total.most_common(top)]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--batch", action="store_true", help="20-event batches on /api/batch instead of single events")
    ap.add_argument("--out", default="", help="where to keep the collapsed stacks")
    args = ap.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    mix = traffic.Mix()
    path = "/api/batch" if args.batch else "/api/event"
    script = beacons.lua(path, mix, 400 if args.batch else 2000, 20 if args.batch else 1)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as d:
        tmp = Path(d)
        city, asn = geodata.databases(tmp / "mmdb", mix.ips)
        coll = servers.collector(tmp / "collector", city, asn).start()
        try:
            assert coll.proc is not None
            wrk.run(coll.url + path, script, 1, beacons.CONNECTIONS, beacons.THREADS)
            raw = tmp / "stacks.txt"
            spy = subprocess.Popen([pyspy, "record", "-p", str(coll.proc.pid), "-d", str(int(args.seconds)),
                                    "-r", "200", "--threads", "--nonblocking", "-f", "raw", "-o", str(raw)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            result: list[wrk.Result] = []
            t = threading.Thread(target=lambda: result.append(
                wrk.run(coll.url + path, script, args.seconds, beacons.CONNECTIONS, beacons.THREADS)))
            t.start()
            t.join()
            spy.wait(args.seconds + 30)
            res = result[0]
            print(f"{res.rate:.0f} req/s under profiling, p99 {res.p99_ms:.2f} ms, non-2xx {res.non_2xx}")
            stacks = raw.read_text() if raw.exists() else ""
            if not stacks:
                print("py-spy recorded nothing:", spy.stderr.read().decode() if spy.stderr else "")
                return
            if args.out:
                Path(args.out).write_text(stacks)
            print(summarize(stacks))
        finally:
            coll.stop()


if __name__ == "__main__":
    main()

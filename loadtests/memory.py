"""Resident memory of a collector ingesting at its max rate with 100k distinct User-Agents, client
addresses and page URLs: every bounded cache (UA parse and bot verdict, network memos, scrub memos,
rate-limit buckets) is driven past its bound.

A child process (chDB allows one data path per process) builds the collector as ``collector serve``
does, starts it (loader thread writing to embedded chDB, fsync ``interval``) and calls
``Collector.ingest`` as fast as it can in batches of 20 events for ``seconds``, reading its own RSS
from ``/proc/self/statm`` every ``sample_s``. The figure is the RSS growth over the second half of
the run per million events: a bounded process shows none once its caches are full, and a 10-minute
run extrapolates from it (events at the measured rate × the slope).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISTINCT = 100_000


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(seconds: float = 60.0, sample_s: float = 0.5, distinct: int = DISTINCT) -> dict:
    from collector import gcpolicy
    from collector.http.decode import normalize
    from collector.service import Collector
    from collector.settings import Settings, Site, validate
    from loadtests import geodata, traffic

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as d:
        tmp = Path(d)
        ips = traffic.public_ips(distinct, seed=23)
        bases = traffic.user_agents(300)
        uas = [f"{bases[i % len(bases)]} App/{i}" for i in range(distinct)]
        city, asn = geodata.databases(tmp / "mmdb", ips[:5000])
        settings = validate(Settings(data_dir=tmp / "data", sites=(Site(traffic.SITE, secret="bench-secret"),),
                                     geoip_city_db=city, geoip_asn_db=asn, fsync="interval", fsync_interval_ms=200,
                                     flush_interval_ms=1000, batch_size=5000, log_level="warning"))
        rnd = random.Random(5)
        svc = Collector.from_settings(settings)
        site = settings.site(traffic.SITE)
        samples: list[tuple[int, float, float]] = []  # (events, seconds, rss MiB)
        objects: list[tuple[int, int]] = []  # (events, objects the garbage collector tracks): the caches' bound

        async def go() -> int:
            await svc.start()
            gcpolicy.settle()  # as the server does once started
            n, i = 0, 0
            t0 = time.monotonic()
            next_sample = t0
            try:
                while True:
                    now = time.monotonic()
                    if now >= next_sample:
                        samples.append((n, now - t0, _rss_mib()))
                        if len(samples) % 20 == 1:
                            objects.append((n, len(gc.get_objects())))
                        next_sample += sample_s
                        await asyncio.sleep(0)  # let the loader's and sync's tasks run
                        if now - t0 >= seconds:
                            return n
                    batch = []
                    for _ in range(20):
                        p = traffic.payload(rnd)
                        p["u"] = f"https://{traffic.SITE}/d/{i % distinct:06d}/{rnd.choice(traffic.SLUGS)}?utm_source=s{i % 97}"
                        batch.append(normalize(p, settings))
                        i += 1
                    k = i // 20
                    await svc.ingest([(site, batch)], ips[k % distinct], uas[(k * 7919) % distinct], False)
                    n += 20
            finally:
                await svc.stop()

        events = asyncio.run(go())
    half = [s for s in samples if s[1] >= samples[-1][1] / 2]
    # least-squares slope over the second half: the engine's merges move RSS up and down by tens of MiB,
    # so two end points would measure a merge, not a trend
    xs, ys = [s[0] for s in half], [s[2] for s in half]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = (sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var * 1e6) if var else 0.0  # MiB per million events
    rate = events / samples[-1][1]
    return {"seconds": samples[-1][1], "events": events, "rate": rate, "distinct": distinct,
            "rss_start_mib": samples[0][2], "rss_max_mib": max(s[2] for s in samples), "rss_end_mib": samples[-1][2],
            "slope_mib_per_million": slope, "extrapolated_10min_mib": samples[-1][2] + max(0.0, slope) * rate * (600 - samples[-1][1]) / 1e6,
            "python_objects": objects, "samples": samples}


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = [s[0] / 1e6 for s in result["samples"]]
    rss = [s[2] for s in result["samples"]]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(ev, rss, "-")
    ax.set(xlabel="events ingested, millions", ylabel="RSS, MiB",
           title=f"collector RSS, {result['distinct']:,} distinct UAs, addresses and URLs")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(seconds: float = 60.0, timeout_s: float = 900) -> dict:
    proc = subprocess.run([sys.executable, "-m", "loadtests.memory", str(seconds)], cwd=ROOT, capture_output=True,
                          text=True, timeout=seconds + timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"memory benchmark failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    # python -m loadtests.memory [SECONDS [PLOT.png]]: the measurement as JSON, and its plot when a path is given
    result = measure(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
    if len(sys.argv) > 2:
        plot(result, Path(sys.argv[2]))
    print(json.dumps(result))

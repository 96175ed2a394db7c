"""Beacon throughput and latency over HTTP on loopback, with wrk, against three servers in one run:

* nginx ``return 204;`` with one worker (the physical limit of the machine and load generator);
* a bare Starlette route returning 204 under the collector's uvicorn settings;
* the floor (``loadtests.floor``): a raw ASGI handler under the same settings doing only the work no
  beacon design can avoid (decode, City and ASN lookups, cached UA parse, one HMAC, encode, write);
* the collector: full pipeline, durable spool (fsync ``interval``), loader thread writing to chDB;
* the same collector with an unreachable storage DSN (``collector-nostore``): the loader retries with
  backoff and never inserts, so the difference between the two is what the loader thread and the
  embedded engine cost the request path in the same process (single events and batches);
* the same collector with ``storage_nice = 0`` (``collector-samepriority``): the loader and the
  engine's threads at the event loop's scheduling priority, as before ``collector.delivery.priority``;
  its max rate and its p99 at the collector's 70 % rate show what that design changes.

After each max-rate round of a collector with storage, the bench waits for its spool to drain, so its
backlog of inserts does not run during the next server's round.

Every server receives the same pre-formatted requests (rotating bodies, User-Agents and client
addresses). Max rates are closed-loop runs, best of ``rounds`` interleaved rounds. Latency is measured
at a fixed offered rate of 70% of the collector's max single-event rate (see ``loadtests.wrk``), for the
collector and for nginx at that same rate. A load curve (offered rate against achieved rate and p99)
runs the collector, bare Starlette and nginx at the same offered rates and is drawn to a PNG.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from loadtests import geodata, servers, traffic, wrk

THREADS = 1  # one wrk thread: the server gets the other core
CONNECTIONS = 64
LATENCY_CONNECTIONS = 64


def lua(path: str, mix: traffic.Mix, n: int, events_per_request: int = 1, rate: float = 0.0) -> str:
    return wrk.script(path, mix.requests(n, events_per_request), rate_per_thread=rate / THREADS)


def _best(url: str, script: str, duration_s: float) -> wrk.Result:
    return wrk.run(url, script, duration_s, CONNECTIONS, THREADS)


def run(duration_s: float = 5.0, rounds: int = 2, warmup_s: float = 1.0, batch_events: int = 20,
        log=print, curve_points: int = 0) -> dict:
    mix = traffic.Mix()
    single = lua("/api/event", mix, 2000)
    batch = lua("/api/batch", mix, 400, batch_events)
    out: dict = {"duration_s": duration_s, "rounds": rounds, "connections": CONNECTIONS, "threads": THREADS,
                 "batch_events": batch_events}
    with tempfile.TemporaryDirectory(prefix="bench-http-") as d:
        tmp = Path(d)
        city, asn = geodata.databases(tmp / "mmdb", mix.ips)
        nginx = servers.Nginx(tmp / "nginx")
        bare = servers.BareApp(tmp / "bare")
        floor = servers.FloorApp(tmp / "floor", city, asn)
        coll = servers.collector(tmp / "collector", city, asn)
        # storage that never answers: the loader only backs off, the embedded engine is never opened
        # (its spool keeps every event of its rounds: room for them under the quota)
        nostore = servers.collector(tmp / "nostore", city, asn, clickhouse_dsn="http://127.0.0.1:9/",
                                    spool_quota_bytes=8 << 30)
        same = servers.collector(tmp / "samepriority", city, asn, storage_nice=0)
        storing = {"collector": coll, "collector-samepriority": same}
        try:
            nginx.start()
            bare.start()
            floor.start()
            coll.start()
            nostore.start()
            same.start()
            targets = {"nginx": nginx.url + "/api/event", "bare": bare.url + "/api/event",
                       "floor": floor.url + "/api/event",
                       "collector": coll.url + "/api/event", "collector-nostore": nostore.url + "/api/event",
                       "collector-samepriority": same.url + "/api/event"}
            for url in targets.values():  # warm up: connections, caches, JIT-free but page cache and allocators
                wrk.run(url, single, warmup_s, CONNECTIONS, THREADS)
            best: dict[str, wrk.Result] = {}
            for r in range(rounds):
                for name, url in targets.items():
                    res = _best(url, single, duration_s)
                    log(f"  single-event {name:9s} round {r + 1}: {res.rate:10.0f} req/s  "
                        f"p99 {res.p99_ms:.2f} ms  errors {res.errors} non-2xx {res.non_2xx}")
                    if name not in best or res.rate > best[name].rate:
                        best[name] = res
                    if name in storing:
                        _drain(storing[name], 60)
            out["single"] = {k: vars(v) | {"rate": v.rate, "ok": v.ok} for k, v in best.items()}

            # batches, rounds interleaved: the collector, the same collector without storage (what the
            # engine's inserts of the accepted rows cost on these cores while batches arrive) and the floor;
            # the collector's backlog is stored before each round
            batch_targets = {"collector": coll, "collector-nostore": nostore, "floor": floor}
            for server in batch_targets.values():
                wrk.run(server.url + "/api/batch", batch, warmup_s, CONNECTIONS, THREADS)
            best_batch: dict[str, wrk.Result] = {}
            for r in range(rounds):
                for name, server in batch_targets.items():
                    _drain(coll, 60)
                    res = wrk.run(server.url + "/api/batch", batch, duration_s, CONNECTIONS, THREADS)
                    log(f"  batch x{batch_events}  {name} round {r + 1}: {res.rate * batch_events:10.0f} events/s "
                        f"({res.rate:.0f} req/s)  p99 {res.p99_ms:.2f} ms  non-2xx {res.non_2xx}")
                    if name not in best_batch or res.rate > best_batch[name].rate:
                        best_batch[name] = res
            batches = {name: vars(res) | {"rate": res.rate, "events_per_s": res.rate * batch_events, "ok": res.ok}
                       for name, res in best_batch.items()}
            out["batch"] = batches["collector"]
            out["batch_nostore"] = batches["collector-nostore"]
            out["batch_floor"] = batches["floor"]

            nostore.stop()
            # let the loader catch up so the latency run does not compete with a backlog of inserts
            _drain(coll, 60)
            target = 0.7 * best["collector"].rate
            paced = lua("/api/event", mix, 2000, rate=target)
            lat = {}
            for name in ("collector", "collector-samepriority", "nginx"):
                if name in storing:
                    _drain(storing[name], 60)
                res = wrk.run(targets[name], paced, duration_s * 2, LATENCY_CONNECTIONS, THREADS)
                log(f"  fixed rate {target:.0f}/s {name:9s}: achieved {res.rate:.0f}/s  p50 {res.p50_ms:.2f} ms  "
                    f"p99 {res.p99_ms:.2f} ms  p99.9 {res.p999_ms:.2f} ms  non-2xx {res.non_2xx}")
                lat[name] = vars(res) | {"rate": res.rate, "ok": res.ok}
            out["latency"] = {"target_rate": target, **lat}
            same.stop()
            if curve_points:
                _drain(coll, 60)
                out["curve"] = _curve(targets, mix, best["collector"].rate, best["bare"].rate, curve_points,
                                      max(2.0, duration_s / 2), log)
        finally:
            for s in (nginx, bare, floor):
                s.stop()
            coll.stop()
            nostore.stop()
            same.stop()
    return out


def _curve(targets: dict, mix: traffic.Mix, coll_max: float, bare_max: float, points: int, seconds: float,
           log) -> dict:
    """Achieved rate and p99 of the collector, bare Starlette and nginx at the same offered rates,
    from a fifth of the collector's max to above bare Starlette's."""
    top = max(bare_max * 1.1, coll_max * 1.3)
    rates = [coll_max * 0.2 + (top - coll_max * 0.2) * i / (points - 1) for i in range(points)]
    out: dict = {"offered": rates}
    for name in ("collector", "bare", "nginx"):
        rows = []
        for rate in rates:
            res = wrk.run(targets[name], lua("/api/event", mix, 2000, rate=rate), seconds, LATENCY_CONNECTIONS,
                          THREADS)
            rows.append({"rate": res.rate, "p99_ms": res.p99_ms, "p50_ms": res.p50_ms, "non_2xx": res.non_2xx})
            log(f"  curve {name:9s} offered {rate:8.0f}/s: achieved {res.rate:8.0f}/s p99 {res.p99_ms:.2f} ms")
        out[name] = rows
    return out


def plot_curve(curve: dict, path: Path) -> Path:
    """Throughput and p99 against offered load, one line per server (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    offered = [r / 1000 for r in curve["offered"]]
    for name, style in (("collector", "o-"), ("bare", "s--"), ("nginx", "^:")):
        rows = curve[name]
        ax1.plot(offered, [r["rate"] / 1000 for r in rows], style, label=name)
        ax2.plot(offered, [r["p99_ms"] for r in rows], style, label=name)
    ax1.plot(offered, offered, color="0.8", lw=1, label="offered")
    ax1.set(xlabel="offered, thousand requests/s", ylabel="achieved, thousand requests/s", title="throughput")
    ax2.set(xlabel="offered, thousand requests/s", ylabel="p99 latency, ms (log)", title="p99 latency", yscale="log")
    ax2.axhline(10, color="0.6", lw=1, ls="--")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("single-event beacons, wrk -t1 -c64, fixed offered rate (same run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _drain(coll, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            coll.flush()
            return
        except Exception:  # noqa: BLE001 - a flush that times out is retried until the deadline
            time.sleep(0.5)


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0, rounds=1), indent=2))

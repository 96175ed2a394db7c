"""Python time per request inside the server, without the kernel: the collector's public protocol and
the bare Starlette route each get the same pre-formatted requests of the realistic mix through
``data_received`` on in-memory transports (64 connections, one request each per event-loop turn, the
turn's shared write included), on uvloop, in this process, in alternating passes.

What it separates: wrk on loopback measures the whole machine (sockets, the load generator, the
engine's threads on the same two cores); this measures only the CPU the request path spends in
Python, so its ratio is stable where loopback figures vary by 2-5x between runs.

    .venv/bin/python -m loadtests.requestcpu [--requests 4000] [--passes 7] [--batch]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from collector.testing import MemoryTransport
from loadtests import geodata, servers, traffic

CONNECTIONS = 64


def _raw_requests(path: str, mix: traffic.Mix, n: int, per_request: int) -> list[bytes]:
    out = []
    for body, ua, ip in mix.requests(n, per_request):
        head = (f"POST {path} HTTP/1.1\r\nHost: collector\r\nUser-Agent: {ua}\r\nX-Forwarded-For: {ip}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        out.append(head + body)
    return out


def _protocols(config, n: int):
    from uvicorn.server import ServerState

    state = ServerState()
    protos = []
    for _ in range(n):
        p = config.http_protocol_class(config=config, server_state=state, app_state={})
        t = MemoryTransport(keep=False)
        p.connection_made(t)
        protos.append((p, t))
    return protos


async def _pass(protos, requests: list[bytes]) -> float:
    t0 = time.perf_counter()
    k = len(protos)
    for i in range(0, len(requests), k):
        for (p, _), raw in zip(protos, requests[i:i + k]):
            p.data_received(raw)
        # the turn ends: shared writes go out, tasks run their answers
        for _ in range(4):
            await asyncio.sleep(0)
    return time.perf_counter() - t0


def run(requests: int = 4000, passes: int = 7, batch: bool = False, collector_only: bool = False) -> dict:
    import uvicorn
    import uvloop

    from collector import gcpolicy
    from collector.http.app import create_app
    from collector.http.inline import protocol_class
    from loadtests import bare

    mix = traffic.Mix(seed=3)
    per = 20 if batch else 1
    path = "/api/batch" if batch else "/api/event"
    raw = _raw_requests(path, mix, requests, per)
    with tempfile.TemporaryDirectory(prefix="bench-requestcpu-") as d:
        tmp = Path(d)
        city, asn = geodata.databases(tmp / "mmdb", mix.ips)
        settings = servers.collector(tmp / "c", city, asn).settings

        async def go() -> dict:
            app = create_app(settings)
            svc = app.state.collector
            await svc.start()
            gcpolicy.settle()  # as the server does once started (both sides share this process)
            try:
                kw = dict(loop="none", log_config=None, access_log=False, server_header=False, date_header=False,
                          proxy_headers=False, ws="none", lifespan="off")
                coll_cfg = uvicorn.Config(app, http=protocol_class(settings.request_timeout_s, app), **kw)
                bare_cfg = uvicorn.Config(bare.create_app(), http="httptools", **kw)
                coll_cfg.load()
                bare_cfg.load()
                sides = {"collector": _protocols(coll_cfg, CONNECTIONS), "bare": _protocols(bare_cfg, CONNECTIONS)}
                if collector_only:  # for a profiler (loadtests.requestprofile)
                    del sides["bare"]
                times: dict[str, list[float]] = {k: [] for k in sides}
                for _ in range(passes):
                    for name, protos in sides.items():
                        times[name].append(await _pass(protos, raw))
                answered = {k: sum(t.written for _, t in v) for k, v in sides.items()}
                inline = svc.counts.http.inline
                steps = {k: v / 1e3 / (len(raw) * per * passes) for k, v in svc.pipeline.step_ns.items()}
            finally:
                await svc.stop()
            med = {k: statistics.median(v) / len(raw) * 1e6 for k, v in times.items()}
            med.setdefault("bare", float("nan"))
            return {"requests": len(raw), "events_per_request": per, "passes": passes,
                    "collector_us": med["collector"], "bare_us": med["bare"],
                    "ratio": med["bare"] / med["collector"], "writes": answered, "inline_answers": inline,
                    "pipeline_us_per_event": sum(steps.values()), "steps_us": {k: round(v, 2) for k, v in steps.items()}}

        return uvloop.run(go())


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--passes", type=int, default=7)
    ap.add_argument("--batch", action="store_true")
    ap.add_argument("--collector-only", action="store_true", help="only the collector's side (for a profiler)")
    args = ap.parse_args()
    print(json.dumps(run(args.requests, args.passes, args.batch, args.collector_only), indent=2))

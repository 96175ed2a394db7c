"""Acknowledged → queryable: how long after the collector answers 202 an event can be counted in SQL.

A fixed-rate open-loop client sends batches of the realistic mix (``rate`` events/s as
``rate / per_request`` requests/s, each sent on schedule whether or not earlier ones were answered)
to a collector with production delivery settings (loader batches of 5000 or every second). A poller
asks the collector ``SELECT count() FROM events`` every ``poll_s`` through ``/admin/query`` on the internal socket (the only
way in: chDB is one process per data path). The loader stores records in spool order, which is the
order of acknowledgement, so the k-th acknowledged event is queryable at the first poll that counts
at least k rows. The poll's answer time is used (conservative: it includes the query itself).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import tempfile
import time
from pathlib import Path

import httpx

from loadtests import geodata, servers, traffic


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


CONNECTIONS = 64


def _request(body: bytes, ua: str, ip: str) -> bytes:
    return (f"POST /api/batch HTTP/1.1\r\nHost: collector\r\nUser-Agent: {ua}\r\nX-Forwarded-For: {ip}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


class _Pool:
    """Keep-alive HTTP/1.1 connections for pre-formatted requests: a request takes a free connection
    (or opens one, up to ``size``; beyond that it waits for one), sends, and reads the answer. A client
    this thin keeps its own cost per request far below the collector's, so the offered rate holds."""

    def __init__(self, host: str, port: int, size: int):
        self.host, self.port = host, port
        self.free: asyncio.Queue = asyncio.Queue()
        self.opened = 0
        self.size = size
        self.all: list[asyncio.StreamWriter] = []

    async def _take(self):
        if self.free.empty() and self.opened < self.size:
            self.opened += 1
            try:
                conn = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.opened -= 1
                raise
            self.all.append(conn[1])
            return conn
        return await self.free.get()

    async def request(self, raw: bytes) -> int:
        reader, writer = await self._take()
        try:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
        except BaseException:
            writer.close()
            self.opened -= 1
            raise
        if b"connection: close" in head.lower():
            writer.close()
            self.opened -= 1
        else:
            self.free.put_nowait((reader, writer))
        return status

    def close(self) -> None:
        for w in self.all:
            w.close()


async def _drive(url: str, socket_path: str, token: str, bodies: list[tuple[bytes, str, str]], per_request: int,
                 rate: float, poll_s: float, settle_s: float) -> dict:
    acks: list[tuple[float, int]] = []  # (time, events in the request)
    polls: list[tuple[float, int]] = []
    failures = 0
    kinds: collections.Counter[str] = collections.Counter()  # failures by exception or status
    host, port = url.removeprefix("http://").split(":")
    pool = _Pool(host, int(port), CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, timeout=10) as client, \
            httpx.AsyncClient(base_url="http://collector", transport=httpx.AsyncHTTPTransport(uds=socket_path),
                              timeout=10) as admin:
        stop = asyncio.Event()

        async def send(raw: bytes) -> None:
            nonlocal failures
            try:
                status = await asyncio.wait_for(pool.request(raw), 10)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                failures += 1
                kinds[type(exc).__name__] += 1
                return
            if status == 202:
                acks.append((time.monotonic(), per_request))
            else:
                failures += 1
                kinds[str(status)] += 1

        async def poll() -> None:
            while not stop.is_set():
                try:
                    r = await admin.post("/admin/query", headers={"Authorization": f"Bearer {token}"},
                                         json={"sql": "SELECT count() AS n FROM events", "format": "JSONEachRow"})
                    if r.status_code == 200:
                        polls.append((time.monotonic(), int(r.json()["n"])))
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                await asyncio.sleep(poll_s)

        # warm up before the clock starts: one beacon answered and one count answered (the admin
        # role's engine connection opens on its first query)
        warm_until = time.monotonic() + 60
        while time.monotonic() < warm_until:
            try:
                r = await admin.post("/admin/query", headers={"Authorization": f"Bearer {token}"},
                                     json={"sql": "SELECT count() AS n FROM events", "format": "JSONEachRow"})
                w = await client.get("/healthz")
                if r.status_code == 200 and w.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        poller = asyncio.create_task(poll())
        interval = per_request / rate
        start = time.monotonic()
        tasks = []
        raws = [_request(body, ua, ip) for body, ua, ip in bodies]
        for i, raw in enumerate(raws):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(raw)))
        await asyncio.gather(*tasks)
        pool.close()
        sent_s = time.monotonic() - start
        total = sum(n for _, n in acks)
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline and (not polls or polls[-1][1] < total):
            await asyncio.sleep(poll_s)
        stop.set()
        await poller
    acks.sort()
    poll_times = [t for t, _ in polls]
    counts = [n for _, n in polls]
    # counts only grow; make them monotone against a poll that raced a merge
    for i in range(1, len(counts)):
        counts[i] = max(counts[i], counts[i - 1])
    latencies, seen, unseen = [], 0, 0
    for t_ack, n in acks:
        for _ in range(n):
            seen += 1
            j = bisect.bisect_left(counts, seen)
            # the first poll that counts this event and was answered after the acknowledgement
            while j < len(polls) and poll_times[j] < t_ack:
                j += 1
            if j >= len(polls):
                unseen += 1
                continue
            latencies.append(poll_times[j] - t_ack)
    latencies.sort()
    return {"events": total, "offered_rate": rate, "achieved_rate": total / sent_s if sent_s else 0.0,
            "failures": failures, "failure_kinds": dict(kinds), "unseen": unseen, "polls": len(polls), "poll_s": poll_s,
            "p50_s": _percentile(latencies, 50), "p99_s": _percentile(latencies, 99),
            "max_s": latencies[-1] if latencies else float("nan")}


def run(rate: float = 5000, duration_s: float = 10, per_request: int = 10, poll_s: float = 0.05,
        settle_s: float = 30) -> dict:
    mix = traffic.Mix(seed=9)
    n_requests = int(rate * duration_s / per_request)
    bodies = list(mix.requests(n_requests, per_request))
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as d:
        tmp = Path(d)
        city, asn = geodata.databases(tmp / "mmdb", mix.ips)
        coll = servers.collector(tmp / "collector", city, asn).start()
        try:
            out = asyncio.run(_drive(coll.url, str(coll.socket_path), coll.settings.admin_token, bodies, per_request, rate, poll_s, settle_s))
        finally:
            coll.stop()
    out["per_request"] = per_request
    out["duration_s"] = duration_s
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(duration_s=float(sys.argv[1]) if len(sys.argv) > 1 else 5), indent=2))

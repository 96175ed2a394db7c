"""Deadlines for receiving a request, so slow or stalled clients cannot hold the server's attention.

Two phases, each bounded by ``request_timeout_s``:

- **headers**: ``DeadlineHttpToolsProtocol`` (uvicorn's httptools protocol plus a deadline). A
  connection that has not completed its request line and headers within the deadline, counted from
  the connection (or from the first byte of a later keep-alive request), gets ``408`` and is closed.
  Header bytes are capped as well (``431``), since the parser would otherwise buffer them without end.
- **body**: ``BodyDeadline``, used by the ASGI security middleware. A request whose body has not
  fully arrived within the deadline, counted from the end of its headers, is answered ``408``.

Neither arms a timer per request: a request records its start, and one sweeper task per process
looks at the open connections and receiving requests a few times per deadline, then sleeps again,
and stops while there is nothing to watch.
"""

from __future__ import annotations

import asyncio
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 64 * 1024
TIMEOUT_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n"
TOO_LARGE_431 = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\ncontent-length: 24\r\n"
                 b"connection: close\r\n\r\nrequest headers too big\n")


def _sweep_interval(timeout: float) -> float:
    return min(1.0, max(0.05, timeout / 4))


class BodyDeadline:
    """Requests still receiving their body, and a sweeper that cancels those past the deadline."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.waiting: dict[asyncio.Task, float] = {}
        self.expired: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None

    def watch(self, task: asyncio.Task) -> None:
        self.waiting[task] = time.monotonic() + self.timeout
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        interval = _sweep_interval(self.timeout)
        try:
            while self.waiting:
                await asyncio.sleep(interval)
                now = time.monotonic()
                late = [t for t, deadline in self.waiting.items() if deadline <= now]
                for task in late:
                    del self.waiting[task]
                    if not task.done():
                        self.expired.add(task)
                        task.cancel()
        finally:
            self._sweeper = None


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size cap on request headers."""

    header_timeout = 10.0
    # one sweeper per server (its set of connections) and loop: the public and the internal listener
    # of one process each have their own
    _sweepers: dict[tuple[asyncio.AbstractEventLoop, int], asyncio.Task] = {}

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._hdr_since: float | None = time.monotonic()
        self._hdr_bytes = 0
        key = (self.loop, id(self.connections))
        if key not in self._sweepers:
            self._sweepers[key] = self.loop.create_task(self._sweep(key))

    def data_received(self, data: bytes) -> None:
        since = self._hdr_since
        if since is None and (self.cycle is None or self.cycle.response_complete):
            self._hdr_since = time.monotonic()
            self._hdr_bytes = len(data)
        elif since is not None:
            self._hdr_bytes += len(data)
        super().data_received(data)
        if self._hdr_since is not None and self._hdr_bytes > MAX_HEADER_BYTES:
            self._refuse(TOO_LARGE_431)  # still no end of headers

    def on_headers_complete(self) -> None:
        self._hdr_since = None
        super().on_headers_complete()

    def _refuse(self, response: bytes) -> None:
        self._hdr_since = None
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()

    async def _sweep(self, key) -> None:
        interval = _sweep_interval(self.header_timeout)
        try:
            while self.connections:
                await asyncio.sleep(interval)
                cutoff = time.monotonic() - self.header_timeout
                for conn in list(self.connections):
                    since = getattr(conn, "_hdr_since", None)
                    if since is not None and since <= cutoff:
                        conn._refuse(TIMEOUT_408)
        finally:
            self._sweepers.pop(key, None)


def protocol_class(timeout: float) -> type[DeadlineHttpToolsProtocol]:
    return type("CollectorHttpProtocol", (DeadlineHttpToolsProtocol,), {"header_timeout": float(timeout)})

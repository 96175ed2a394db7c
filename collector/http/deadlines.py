"""Deadlines for receiving a request, so slow or stalled clients cannot hold the server's attention.

Two phases, each bounded by ``request_timeout_s``:

- **headers**: ``DeadlineHttpToolsProtocol`` (uvicorn's httptools protocol plus a deadline). A
  connection that has not completed its request line and headers within the deadline, counted from
  the connection (or from the first byte of a later keep-alive request), gets ``408`` and is closed.
  Header bytes are capped as well (``431``), since the parser would otherwise buffer them without end.
- **body**: ``BodyDeadline``, used by the ASGI security middleware. A request whose body has not
  fully arrived within the deadline, counted from the end of its headers, is answered ``408``.

An answer sent before the request's body has fully arrived (``413``, a body ``408``) closes the
connection with a **drain** (nginx's lingering close): the answer is flushed and the write side shut
down, then whatever the client still sends is read and thrown away until it closes its side, up to
``DRAIN_MAX_BYTES`` and the request deadline. Closing at once with unread bytes would make the kernel
send a reset, and a client still writing its body would see that instead of the answer.

Neither arms a timer per request: a request records its start, and one sweeper task per process
looks at the open connections and receiving requests a few times per deadline, then sleeps again,
and stops while there is nothing to watch. The same sweeper closes keep-alive connections idle for
longer than uvicorn's ``timeout_keep_alive`` (to within a sweep interval), where uvicorn arms and
cancels a timer for every answer.
"""

from __future__ import annotations

import asyncio
import time

from collector.errors import RequestTimeout

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 64 * 1024
TIMEOUT_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n"
TOO_LARGE_431 = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\ncontent-length: 24\r\n"
                 b"connection: close\r\n\r\nrequest headers too big\n")


DRAIN_MAX_BYTES = 4 << 20  # read and discarded after an early answer before the connection is cut


def _sweep_interval(timeout: float) -> float:
    return min(1.0, max(0.05, timeout / 4))


class BodyDeadline:
    """Requests still receiving their body, and a sweeper that cancels those past the deadline."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.waiting: dict[asyncio.Task, float] = {}
        self.expired: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None

    def claim(self, task: asyncio.Task) -> bool:
        """Whether ``task`` was cancelled by this deadline; if so, the cancellation is taken back so the
        request can still be answered (408)."""
        if task not in self.expired:
            return False
        self.expired.discard(task)
        task.uncancel()
        return True

    async def receive(self, receive, task: asyncio.Task):
        """``receive()`` for ``task``; a cancellation by this deadline becomes ``RequestTimeout`` (408)."""
        try:
            return await receive()
        except asyncio.CancelledError:
            if self.claim(task):
                raise RequestTimeout(f"request body not received within {self.timeout:g} s") from None
            raise

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


class _DrainingTransport:
    """The transport as a request's cycle sees it: closing it while the request body is still
    arriving drains the connection instead (see ``DeadlineHttpToolsProtocol.drain``)."""

    def __init__(self, transport, protocol: "DeadlineHttpToolsProtocol"):
        self._transport = transport
        self._protocol = protocol

    def close(self) -> None:
        if self._protocol._body_pending and not self._transport.is_closing():
            self._protocol.drain()
        else:
            self._transport.close()

    def __getattr__(self, name):
        return getattr(self._transport, name)


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size cap on request headers, and a
    bounded drain of an unread body before closing."""

    header_timeout = 10.0
    # one sweeper per server (its set of connections) and loop: the public and the internal listener
    # of one process each have their own
    _sweepers: dict[tuple[asyncio.AbstractEventLoop, int], asyncio.Task] = {}

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._hdr_since: float | None = time.monotonic()
        self._hdr_bytes = 0
        self._body_pending = False  # headers of the current request read, its body not yet whole
        self._draining: float | None = None  # when the drain started
        self._drained = 0
        self._idle_since: float | None = None  # answered, waiting for the next request (keep-alive)
        self._cycle_transport = _DrainingTransport(transport, self)  # what each request's cycle writes to
        key = (self.loop, id(self.connections))
        if key not in self._sweepers:
            self._sweepers[key] = self.loop.create_task(self._sweep(key))

    def data_received(self, data: bytes) -> None:
        if self._draining is not None:
            self._drained += len(data)
            if self._drained > DRAIN_MAX_BYTES:
                self.transport.close()
            return
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
        self._body_pending = True
        super().on_headers_complete()
        self.cycle.transport = self._cycle_transport

    def on_message_complete(self) -> None:
        self._body_pending = False
        super().on_message_complete()

    def drain(self) -> None:
        """Answer sent, body still arriving: shut the write side (the answer goes out first), then
        discard what arrives until the client closes, the byte budget is spent or the deadline passes."""
        self._draining = time.monotonic()
        self._hdr_since = None
        transport = self.transport
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        transport.resume_reading()
        self.flow.resume_reading()
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    def on_response_complete(self) -> None:
        # uvicorn's, with the keep-alive deadline left to the sweeper instead of a timer per answer
        self.server_state.total_requests += 1
        if self._draining is not None or self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._idle_since = time.monotonic()

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None
        super()._unset_keepalive_if_required()

    def eof_received(self):
        if self._draining is not None:
            self.transport.close()  # the client has sent everything: the drain is over
            return None
        return super().eof_received()

    def _refuse(self, response: bytes) -> None:
        self._hdr_since = None
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()

    async def _sweep(self, key) -> None:
        interval = _sweep_interval(min(self.header_timeout, self.timeout_keep_alive))
        try:
            while self.connections:
                await asyncio.sleep(interval)
                now = time.monotonic()
                cutoff, idle_cutoff = now - self.header_timeout, now - self.timeout_keep_alive
                for conn in list(self.connections):
                    since = getattr(conn, "_hdr_since", None)
                    if since is not None and since <= cutoff:
                        conn._refuse(TIMEOUT_408)
                    idle = getattr(conn, "_idle_since", None)
                    if idle is not None and idle <= idle_cutoff:
                        conn._idle_since = None
                        conn.timeout_keep_alive_handler()
                    draining = getattr(conn, "_draining", None)
                    if draining is not None and draining <= cutoff and not conn.transport.is_closing():
                        conn.transport.close()
        finally:
            self._sweepers.pop(key, None)


def protocol_class(timeout: float) -> type[DeadlineHttpToolsProtocol]:
    return type("CollectorHttpProtocol", (DeadlineHttpToolsProtocol,), {"header_timeout": float(timeout)})

"""Beacons answered inside the connection's protocol, without an ASGI task.

A beacon request (``collector.http.beacon.ROUTES``) whose headers and whole body arrive in one read
is answered by ``BeaconProtocol`` itself: at the end of that read it hands the request to
``BeaconApp.inline``, which runs the same checks and pipeline as the ASGI route and queues the
records on the turn's shared write; the answer is written, as one ``write()``, once the records are.
No task, no ASGI messages, no per-request future. A read that is exactly one whole beacon request on
a connection with nothing in flight (the common case) is not even given to httptools: it is checked
in one pass and only the headers a beacon reads are taken out (``collector.http.headparse``, which
leaves everything it does not fully understand to httptools), without uvicorn's request cycle. The
order and guarantees are those of the ASGI route: the answer follows the spool ``write()`` (the
``interval`` policy; under ``always`` every request takes the ASGI route and waits for its fsync),
error answers are the same bytes.

Everything else takes uvicorn's ASGI path unchanged: other routes, a body that arrives in several
reads (so the body deadline applies to it), ``Expect: 100-continue``, a request pipelined behind
another on the same connection (queued as uvicorn queues it: while an inline answer is pending, the
connection's cycle is incomplete, so a following request waits for it), and a beacon that arrives
while writing to the connection is paused (the client is not reading its answers: the ASGI route
waits for the buffer to drain, and the requests behind it stop being read, as for any route).

Two things every connection of this protocol does for its pipelined requests (inline or not):

- a malformed request is answered ``400`` (and the connection closed) only after the requests that
  arrived whole before it are answered, in order; until then nothing more is read;
- a client that half-closes (sends FIN, still reading) after whole requests gets their answers, the
  last one with ``Connection: close``, instead of the connection closing under them.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from collector.http.beacon import ROUTES
from collector.http.deadlines import DeadlineHttpToolsProtocol

CONNECTION_CLOSE = b"connection: close\r\n"
PROTOCOL_ROUTE = "(protocol)"  # answers given before a request reached a route: malformed, headers late or too big


class BeaconProtocol(DeadlineHttpToolsProtocol):
    """``DeadlineHttpToolsProtocol`` with the inline beacon path; ``beacons`` is the ``BeaconApp``."""

    beacons = None
    heads: Heads | None = None  # the listener's answer heads (``protocol_class``)
    counts = None  # Counts: the protocol's own error answers (400, 408, 431) are counted there, route "(protocol)"

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._reading = False
        self._held = None  # (cycle, app) of a beacon whose headers came in this read
        self._bad: str | None = None  # the 400 owed for a malformed request, once the earlier ones are answered
        self._at_rest = True  # the parser is between requests (nothing of a request buffered in it)

    def data_received(self, data: bytes) -> None:
        if self._bad is not None:
            return  # nothing after a malformed request is read
        if self._at_rest and self._whole_beacon(data):
            return
        self._reading = True
        try:
            super().data_received(data)
        finally:
            self._reading = False
        held, self._held = self._held, None
        if held is None:
            return
        cycle, app = held
        if cycle.more_body or cycle.waiting_for_100_continue or self.transport.is_closing() or self.flow.write_paused:
            # the body is still coming (the ASGI route and its deadline), or the client is not reading
            # its answers (the ASGI route waits for the write buffer to drain)
            super()._start_asgi_task(cycle, app)
        else:
            self._answer_inline(cycle, bytes(cycle.body), None)

    def _whole_beacon(self, data: bytes) -> bool:
        """A read that is one whole beacon request (``collector.http.headparse``), on a connection with
        nothing in flight, is answered inline without the general parser; False: it was not one."""
        cycle = self.cycle
        if ((cycle is not None and not cycle.response_complete) or self.pipeline or self._draining is not None
                or self.flow.write_paused or self.transport.is_closing() or self.beacons is None
                or self.limit_concurrency is not None or self.root_path
                or not self.beacons.collector.answers_after_write):
            return False
        request = self.beacons.read_whole(data)
        if request is None:
            return False
        path, req, body, keep_alive = request
        self._unset_keepalive_if_required()
        self._hdr_since = None
        # the headers the beacon reads are read already (``req``); no header is kept in the scope
        self.cycle = cycle = _WholeCycle(
            {"type": "http", "http_version": "1.1", "server": self.server, "client": self.client,
             "scheme": self.scheme, "root_path": "", "method": "POST", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": []}, keep_alive)
        self._answer_inline(cycle, body, req)
        return True

    def on_message_begin(self) -> None:
        self._at_rest = False
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self._at_rest = True
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        if (cycle is not None and not cycle.response_complete and not cycle.more_body
                and self._draining is None and not self.transport.is_closing()):
            # the malformed bytes follow whole requests not answered yet: answer those first
            self._bad = msg
            self.flow.pause_reading()
            return
        self._count(400)
        super().send_400_response(msg)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if (self._bad is not None and not self.pipeline and self.cycle.response_complete
                and self._draining is None and not self.transport.is_closing()):
            msg, self._bad = self._bad, None
            self._unset_keepalive_if_required()
            self._count(400)
            super().send_400_response(msg)

    def _refuse(self, response: bytes) -> None:
        if not self.transport.is_closing():
            self._count(int(response[9:12]))
        super()._refuse(response)

    def _count(self, status: int) -> None:
        if self.counts is not None:
            self.counts.rejected[status] += 1
            self.counts.http.observe(PROTOCOL_ROUTE, status, 0.0)

    def eof_received(self):
        cycle = self.cycle
        if (self._draining is None and cycle is not None and not cycle.response_complete and not cycle.more_body
                and not self.transport.is_closing()):
            # a half-close after whole requests: they are answered, then the connection closes (after
            # the last answer, or after the 400 owed for a malformed request)
            if self._bad is None:
                cycle.keep_alive = False
            return True
        return super().eof_received()

    def _start_asgi_task(self, cycle, app) -> None:
        scope = cycle.scope
        if (self._reading and self._held is None and app is self.app
                and ROUTES.get(scope["path"]) == scope["method"].encode()
                and self.beacons is not None and self.beacons.collector.answers_after_write):
            self._held = (cycle, app)  # decided at the end of this read, once its body is known
            return
        super()._start_asgi_task(cycle, app)

    def _answer_inline(self, cycle, body: bytes, req) -> None:
        transport = self.transport
        assert self.beacons is not None and self.heads is not None
        stats = self.beacons.http

        def respond(status: int, headers: tuple, body: bytes) -> None:
            if cycle.response_complete:
                return
            cycle.response_complete = True
            if cycle.disconnected or transport.is_closing():
                return
            head, close = self.heads(self.server_state.default_headers, status, headers, not cycle.keep_alive)
            transport.write(head + body)
            stats.inline += 1
            if close:
                transport.close()
            self.on_response_complete()

        self.beacons.inline(cycle.scope, body, respond, req)


class _Set:
    @staticmethod
    def set() -> None:
        pass


class _WholeCycle:
    """What the protocol reads of a request's cycle, for a request ``_whole_beacon`` took: no body is
    still to come and no ASGI task waits on it."""

    __slots__ = ("scope", "keep_alive", "response_complete", "disconnected")
    more_body = False
    waiting_for_100_continue = False
    message_event = _Set  # connection_lost wakes a cycle's waiting task: there is none

    def __init__(self, scope: dict, keep_alive: bool):
        self.scope = scope
        self.keep_alive = keep_alive
        self.response_complete = False
        self.disconnected = False


class Heads:
    """The status line and header block of each distinct inline answer, made once: the same few
    answers repeat. One per listener, bounded, renewed when uvicorn renews its default headers."""

    MAX = 512

    def __init__(self):
        self._made: dict[tuple, tuple[bytes, bool]] = {}  # (status, headers, close) -> (head, close)
        self._for: list | None = None  # the server's default headers the heads were made with

    def __call__(self, default_headers: list, status: int, headers: tuple, close: bool) -> tuple[bytes, bool]:
        """The answer's head, and whether the connection closes after it."""
        if default_headers is not self._for:
            self._made.clear()
            self._for = default_headers
        key = (status, headers, close)
        hit = self._made.get(key)
        if hit is not None:
            return hit
        out = [STATUS_LINE[status]]
        for name, value in default_headers:
            out += [name, b": ", value, b"\r\n"]
        for name, value in headers:
            if name == b"connection" and value.lower() == b"close":
                close = True
                continue
            out += [name, b": ", value, b"\r\n"]
        if close:
            out.append(CONNECTION_CLOSE)
        out.append(b"\r\n")
        hit = (b"".join(out), close)
        if len(self._made) >= self.MAX:
            self._made.clear()
        self._made[key] = hit
        return hit


def protocol_class(timeout: float, beacons=None, counts=None) -> type[BeaconProtocol]:
    """A listener's protocol: the header deadline, with ``beacons`` the inline path, and with
    ``counts`` its own error answers counted (``collector_requests_rejected_total`` and
    ``collector_http_requests_total{route="(protocol)"}``)."""
    return type("CollectorHttpProtocol", (BeaconProtocol,),
                {"header_timeout": float(timeout), "beacons": beacons, "counts": counts, "heads": Heads()})

"""The beacon endpoints as one ASGI callable: ``POST /api/event``, ``POST /api/batch``, ``GET /p.gif``.

It sits in front of the public Starlette app and answers these three (path, method) pairs itself,
with precomputed responses and header lists; everything else (other methods on these paths, CORS
preflights, the tracker, consent calls, health) goes on to the Starlette app and its middleware. It
does what that stack does for a beacon, in one pass:

- the request headers are read once; ``Cookie`` and ``Authorization`` are never read (and are taken
  out of the scope before anything else sees it);
- the security headers and the CORS answer of ``collector.http.security`` on every response;
- the body deadline (``408``) and size limit (``413``, before reading when declared), the content
  type (``415``), the rate limits (``429``), unknown sites (``422``) and bad payloads (``400``), each
  rendered by ``collector.http.errors`` in the product's JSON shape; ``408`` and ``413`` close the
  connection, and so does every answer while the collector drains;
- the trusted-proxy ``X-Forwarded-For`` (repeated lines joined) and GPC/DNT lines (any saying 1);
- policy drops answered like accepted events (``202``), error answers counted in ``Counts.rejected``,
  and every answer counted by route and status with its latency (``collector.counts.HttpStats``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Callable
from urllib.parse import parse_qsl

from collector.errors import BadRequest, CollectorError, PayloadTooLarge, RequestTimeout, UnknownSite, \
    UnsupportedMediaType
from collector.http.api import CONTENT_TYPES, GIF
from collector.http import headparse
from collector.http.deadlines import BodyDeadline
from collector.http.decode import decode_events, normalize
from collector.http.errors import error_response
from collector.http.security import CLOSE, SECRET_HEADERS, SECURITY_HEADERS, VARY
from collector.pipeline.origin import origin_of_url

log = logging.getLogger("collector")

EVENT, BATCH, PIXEL = "/api/event", "/api/batch", "/p.gif"
ROUTES = {EVENT: b"POST", BATCH: b"POST", PIXEL: b"GET"}
METHODS = {EVENT: "POST", BATCH: "POST", PIXEL: "GET"}
# header tuples (hashable: the inline path keeps each distinct answer head's bytes, collector.http.inline)
_BASE = (*SECURITY_HEADERS, VARY)
ACCEPTED_HEADERS = ((b"content-length", b"2"), (b"content-type", b"text/plain; charset=utf-8"))
GIF_HEADERS = ((b"cache-control", b"no-store"), (b"content-length", str(len(GIF)).encode()),
               (b"content-type", b"image/gif"))
_NAMES = (b"user-agent", b"x-forwarded-for", b"sec-gpc", b"dnt", b"content-type", b"content-length", b"origin",
          b"referer")
_WANTED = frozenset(_NAMES)


class ClientGone(Exception):
    """The client went away before its request's body was whole: nothing is ingested, answered or counted."""


class _Request:
    """What a beacon handler reads from the request headers (first value of a repeated name)."""

    __slots__ = ("ua", "xff", "gpc", "ctype", "clen", "origin", "referer")

    def __init__(self):
        self.ua = b""
        self.xff: bytes | None = None
        self.gpc = False
        self.ctype = b""
        self.clen: bytes | None = None
        self.origin: bytes | None = None
        self.referer: bytes | None = None

    @classmethod
    def of(cls, values: list[bytes | None]) -> "_Request":
        """From the values of ``_NAMES`` (each sent once at most; None: not sent)."""
        r = cls()
        ua, r.xff, sec_gpc, dnt, ctype, r.clen, r.origin, r.referer = values
        r.ua = ua or b""
        r.ctype = ctype or b""
        r.gpc = sec_gpc == b"1" or dnt == b"1"
        return r


def read_headers(scope) -> _Request:
    r = _Request()
    secret = False
    xff_lines = None
    for name, value in scope["headers"]:
        if name not in _WANTED:
            if name in SECRET_HEADERS:
                secret = True
            continue
        if name == b"user-agent":
            if not r.ua:
                r.ua = value
        elif name == b"x-forwarded-for":
            if r.xff is None:
                r.xff = value
            else:  # repeated lines: one comma-joined list (RFC 9110)
                xff_lines = (xff_lines or [r.xff])
                xff_lines.append(value)
        elif name == b"sec-gpc" or name == b"dnt":
            if value.strip() == b"1":
                r.gpc = True
        elif name == b"content-type":
            if not r.ctype:
                r.ctype = value
        elif name == b"content-length":
            if r.clen is None:
                r.clen = value
        elif name == b"origin":
            if r.origin is None:
                r.origin = value
        elif r.referer is None:
            r.referer = value
    if xff_lines is not None:
        r.xff = b",".join(xff_lines)
    if secret:  # never read, and gone before anything else could see them
        scope["headers"] = [h for h in scope["headers"] if h[0] not in SECRET_HEADERS]
    return r


class _Inline:
    """An inline beacon between its arrival and its answer (``BeaconApp._run_front``)."""

    __slots__ = ("scope", "body", "respond", "t0", "req", "ip", "ua", "args", "answered")

    def __init__(self, scope, body: bytes, respond, t0: float, req: _Request | None):
        self.scope, self.body, self.respond, self.t0 = scope, body, respond, t0
        # on arrival: Cookie and Authorization leave the scope at once
        self.req = read_headers(scope) if req is None else req
        self.ip = self.ua = ""
        self.args: tuple | None = None  # the arguments of ``Collector.ingest_soon``
        self.answered = False


class BeaconApp:
    def __init__(self, app, collector, origins, client_ip, ratelimit, request_timeout_s: float):
        self.app = app  # the Starlette app: everything that is not a beacon
        self.collector = collector
        self.settings = collector.settings
        self.origins = origins
        self.client_ip = client_ip
        self.ratelimit = ratelimit
        self.deadline = BodyDeadline(request_timeout_s)
        self.rejected = collector.counts.rejected
        self.http = collector.counts.http
        self._cors: dict[bytes, tuple] = {}  # allowed Origin value -> response headers (bounded)
        self._front: list[_Inline] = []  # inline beacons of this event-loop turn (``_run_front``)
        self._whole = headparse.Reader(_NAMES)
        self._ctypes: set[bytes] = set()  # accepted Content-Type values, as sent

    def __getattr__(self, name):  # ``state``, ``routes``, ``router``, … are the Starlette app's
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or ROUTES.get(scope["path"]) != scope["method"].encode():
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        path = scope["path"]
        req = read_headers(scope)
        error: Exception | None = None
        try:
            if path == PIXEL:
                await self.collector.ingest(*self._pixel(scope, req))
            else:
                await self._with_deadline(scope, receive, req, path == BATCH)
        except ClientGone:
            return
        except Exception as exc:  # noqa: BLE001 - every error is answered by _answer
            error = exc
        status, headers, body = self._answer(path, req, error)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.http.observe(path, status, time.perf_counter() - t0)

    def read_whole(self, data: bytes) -> tuple[str, _Request, bytes, bool] | None:
        """``(path, headers read, body, keep_alive)`` when the read ``data`` is one whole beacon request
        (``collector.http.headparse``: only the headers a beacon reads are read), else None."""
        whole = self._whole(data)
        if whole is None:
            return None
        path, values, body, keep_alive = whole
        return path, _Request.of(values), body, keep_alive

    def inline(self, scope, body: bytes, respond: Callable[[int, tuple, bytes], None],
               req: _Request | None = None) -> None:
        """A beacon whose request has fully arrived, answered without a task (``collector.http.inline``):
        the same checks, pipeline and answers as ``__call__``; ``respond(status, headers, body)`` is
        called once, at the end of this event-loop turn (a refusal) or once its events are written.

        The beacons of one turn are taken together at its end (``_run_front``), stage by stage over
        all of them, as the pipeline takes their events (``Collector.ingest_soon``): each keeps its
        own outcome, in arrival order. ``req``: the headers, already read (``read_whole``)."""
        if not self._front:
            asyncio.get_running_loop().call_soon(self._run_front)
        self._front.append(_Inline(scope, body, respond, time.perf_counter(), req))

    def _run_front(self) -> None:
        front, self._front = self._front, []
        # the client, its rate limit and the content type, before any body is read
        for r in front:
            try:
                if r.scope["path"] == PIXEL:
                    r.args = self._pixel(r.scope, r.req)
                else:
                    r.ip, r.ua = self._admit(r.scope, r.req)
            except Exception as exc:  # noqa: BLE001 - every error is answered by _answer
                self._done(r, exc)
        limit = self.settings.max_body_bytes
        for r in front:
            if r.answered or r.args is not None:
                continue
            try:
                self._check_declared_size(r.req, limit)
                if len(r.body) > limit:
                    raise PayloadTooLarge(f"body larger than {limit} bytes")
                r.args = self._events(r.body, r.scope["path"] == BATCH, r.ip, r.ua, r.req)
            except Exception as exc:  # noqa: BLE001
                self._done(r, exc)
        ingest, done = self.collector.ingest_soon, self._done
        for r in front:
            if r.answered:
                continue
            try:
                ingest(*r.args, partial(done, r))
            except Exception as exc:  # noqa: BLE001
                self._done(r, exc)
        self.collector.end_turn()  # the pipeline for all of them

    def _done(self, r: _Inline, error: BaseException | None) -> None:
        if r.answered:
            return
        r.answered = True
        path = r.scope["path"]
        status, headers, out = self._answer(path, r.req, error)
        r.respond(status, headers, out)
        self.http.observe(path, status, time.perf_counter() - r.t0)

    def _answer(self, path: str, req: _Request, error: BaseException | None) -> tuple[int, tuple, bytes]:
        """The status, headers and body for a beacon's outcome (``None``: accepted), counted."""
        if error is None:
            status, headers, body = (200, GIF_HEADERS, GIF) if path == PIXEL else (202, ACCEPTED_HEADERS, b"ok")
        elif isinstance(error, CollectorError):
            resp = error_response(error)
            status, headers, body = resp.status_code, tuple(resp.raw_headers), resp.body
        else:  # answered 500 naming only the class, logged like Starlette's
            log.error("unexpected error on %s", path, exc_info=error)
            body = b'{"error":"internal","message":"%s"}' % type(error).__name__.encode()
            status, headers = 500, ((b"content-length", str(len(body)).encode()), (b"content-type", b"application/json"))
        headers = headers + self._headers_for(req.origin)
        if status >= 400:
            self.rejected[status] += 1
        # 408/413: the rest of the body is not read, do not keep the connection; draining: every answer
        # closes (one header line either way)
        if status in (408, 413) or self.collector.draining:
            headers += (CLOSE,)
        return status, headers, body

    def _headers_for(self, origin: bytes | None) -> tuple:
        if origin is None:
            return _BASE
        hit = self._cors.get(origin)
        if hit is not None:
            return hit
        if not self.origins.cors_allowed(origin.decode("latin-1")):
            return _BASE
        if len(self._cors) >= 1024:
            self._cors.clear()
        out = self._cors[origin] = (*SECURITY_HEADERS, (b"access-control-allow-origin", origin), VARY)
        return out

    def _client(self, scope, req: _Request) -> tuple[str, str]:
        client = scope.get("client")
        peer = client[0] if client else ""
        ip = self.client_ip.resolve(peer, req.xff.decode("latin-1") if req.xff is not None else None)
        return ip, req.ua.decode("latin-1")

    def _site(self, domain: str):
        site = self.settings.site(domain)
        if site is None:
            raise UnknownSite(f"unknown site {domain[:80]!r}: add it to the collector's sites")
        return site

    async def _with_deadline(self, scope, receive, req: _Request, batch: bool) -> None:
        deadline = self.deadline
        task = asyncio.current_task()
        assert task is not None
        deadline.watch(task)
        try:
            await self._ingest(receive, scope, req, batch, task)
        except asyncio.CancelledError:
            # cancelled by the deadline somewhere other than while receiving
            if not deadline.claim(task):
                raise
            raise RequestTimeout("request not received in time") from None
        finally:
            deadline.waiting.pop(task, None)

    async def _ingest(self, receive, scope, req: _Request, batch: bool, task) -> None:
        ip, ua = self._admit(scope, req)
        body = await self._body(receive, req, self.settings.max_body_bytes, task)
        await self.collector.ingest(*self._events(body, batch, ip, ua, req))

    def _admit(self, scope, req: _Request) -> tuple[str, str]:
        """The client and the checks made before a body is read: rate limit (429), content type (415)."""
        ip, ua = self._client(scope, req)
        self.ratelimit.check(ip)
        if req.ctype not in self._ctypes:
            if req.ctype.decode("latin-1").split(";")[0].strip().lower() not in CONTENT_TYPES:
                raise UnsupportedMediaType("Content-Type must be text/plain or application/json")
            if len(self._ctypes) < 64:  # the few accepted spellings clients send, as sent
                self._ctypes.add(req.ctype)
        return ip, ua

    def _events(self, body: bytes, batch: bool, ip: str, ua: str, req: _Request) -> tuple:
        """The arguments of ``Collector.ingest`` for a JSON body: its events grouped by site."""
        payloads = decode_events(body, self.settings, batch)
        if len(payloads) == 1:
            groups = [(self._site(payloads[0]["domain"]), payloads)]
        else:
            by_site: dict[str, list[dict]] = {}
            for p in payloads:
                by_site.setdefault(p["domain"], []).append(p)
            groups = [(self._site(d), ps) for d, ps in by_site.items()]
        origin = req.origin.decode("latin-1") if req.origin is not None else None
        return groups, ip, ua, req.gpc, origin

    @staticmethod
    def _check_declared_size(req: _Request, limit: int) -> None:
        if req.clen is not None:
            try:
                if int(req.clen) > limit:
                    raise PayloadTooLarge(f"body larger than {limit} bytes")
            except ValueError:
                raise BadRequest("invalid Content-Length") from None

    async def _body(self, receive, req: _Request, limit: int, task) -> bytes:
        self._check_declared_size(req, limit)
        deadline = self.deadline
        chunks, size = [], 0
        while True:
            message = await deadline.receive(receive, task)
            if message["type"] != "http.request":  # the client went away: a partial body is not a request
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body larger than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                deadline.waiting.pop(task, None)
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _pixel(self, scope, req: _Request) -> tuple:
        """The arguments of ``Collector.ingest`` for a pixel: its query string, else its Referer."""
        svc = self.collector
        ip, ua = self._client(scope, req)
        self.ratelimit.check(ip)
        qs = scope.get("query_string", b"")
        raw = dict(parse_qsl(qs.decode("latin-1"), keep_blank_values=True)) if qs else {}
        raw.setdefault("n", "pageview")
        referer = req.referer.decode("latin-1") if req.referer is not None else None
        if "u" not in raw and "url" not in raw and referer:
            raw["u"] = referer
        payload = normalize(raw, svc.settings)
        site = self._site(payload["domain"])
        origin = (req.origin.decode("latin-1") if req.origin else None) or (origin_of_url(referer) if referer else None)
        return [(site, [payload])], ip, ua, req.gpc, origin

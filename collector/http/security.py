"""One pure ASGI middleware for what every response and every beacon request needs:

- security headers on every response: a restrictive Content-Security-Policy (with
  ``frame-ancestors 'none'``), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY``; a route may set its own value, which is kept;
- ``Cookie`` and ``Authorization`` are removed from beacon requests before any handler runs, so
  nothing downstream can read, log or store them;
- CORS on the beacon endpoints: preflights answered only for allowed origins (``403`` otherwise),
  and ``Access-Control-Allow-Origin`` on responses to allowed origins;
- a deadline for receiving the request body (``408``, see ``collector.http.deadlines``);
- every answer with an error status counted by status (``Counts.rejected``).

It is a plain ASGI wrapper (not ``BaseHTTPMiddleware``) and does the least per request: one pass
over the request headers on beacon paths, and a list concatenation on the response headers.
"""

from __future__ import annotations

import asyncio

from collector.http.deadlines import BodyDeadline
from collector.errors import Forbidden, RequestTimeout
from collector.http.errors import error_response
from collector.pipeline.origin import OriginPolicy

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
SECURITY_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)
# endpoints that browsers call cross-origin
CORS_PATHS = frozenset({"/api/event", "/api/batch", "/p.gif"})
# endpoints whose Cookie and Authorization headers are dropped unread
BEACON_PATHS = CORS_PATHS | {"/api/consent", "/t.js"}
SECRET_HEADERS = frozenset({b"cookie", b"authorization"})
PREFLIGHT = [
    (b"access-control-allow-methods", b"POST, GET, OPTIONS"),
    (b"access-control-allow-headers", b"content-type"),
    (b"access-control-max-age", b"86400"),
]
VARY = (b"vary", b"origin")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CLOSE = (b"connection", b"close")


class SecurityMiddleware:
    def __init__(self, app, origins: OriginPolicy, counts, request_timeout_s: float = 10.0):
        self.app = app
        self.origins = origins
        self.rejected = counts.rejected
        self.body_deadline = BodyDeadline(request_timeout_s)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = SECURITY_HEADERS
        path = scope["path"]
        if path in BEACON_PATHS:
            headers = scope["headers"]
            origin = None
            secret = False
            for name, value in headers:
                if name == b"origin":
                    origin = value
                elif name in SECRET_HEADERS:
                    secret = True
            if secret:
                scope["headers"] = [h for h in headers if h[0] not in SECRET_HEADERS]
            if path in CORS_PATHS:
                allowed = origin is not None and self.origins.cors_allowed(origin.decode("latin-1"))
                if scope["method"] == "OPTIONS":
                    return await self._preflight(origin if allowed else None, send)
                extra = SECURITY_HEADERS + [(b"access-control-allow-origin", origin), VARY] if allowed \
                    else SECURITY_HEADERS + [VARY]

        started = []
        rejected = self.rejected

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                started.append(True)
                own = message.get("headers") or []
                add = extra
                for name, _ in own:
                    if name in SECURITY_NAMES:  # the route set its own: keep it
                        names = {n for n, _ in own}
                        add = [h for h in extra if h[0] not in names]
                        break
                status = message["status"]
                if status >= 400:
                    rejected[status] += 1
                if status in (408, 413):
                    add = add + [CLOSE]  # the rest of the body is not read: do not keep the connection
                message["headers"] = [*own, *add]
            await send(message)

        if scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send_with_headers)
        return await self._with_body_deadline(scope, receive, send_with_headers, started)

    async def _with_body_deadline(self, scope, receive, send, started: list):
        deadline = self.body_deadline
        task = asyncio.current_task()
        assert task is not None
        deadline.watch(task)

        async def receive_by_deadline():
            message = await deadline.receive(receive, task)
            if not message.get("more_body"):
                deadline.waiting.pop(task, None)
            return message

        try:
            await self.app(scope, receive_by_deadline, send)
        except asyncio.CancelledError:
            # cancelled by the deadline somewhere other than while receiving
            if not deadline.claim(task):
                raise
            if not started:
                await _send_response(error_response(RequestTimeout("request not received in time")), scope, send)
        finally:
            deadline.waiting.pop(task, None)

    async def _preflight(self, origin: bytes | None, send):
        if origin is None:
            resp = error_response(Forbidden("this origin may not send beacons to this collector"))
            self.rejected[resp.status_code] += 1
            headers = [*resp.raw_headers, *SECURITY_HEADERS, VARY]
            await send({"type": "http.response.start", "status": resp.status_code, "headers": headers})
            await send({"type": "http.response.body", "body": resp.body})
            return
        headers = [(b"access-control-allow-origin", origin), VARY, *PREFLIGHT, *SECURITY_HEADERS,
                   (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


async def _send_response(resp, scope, send) -> None:
    async def no_receive():
        return {"type": "http.disconnect"}

    await resp(scope, no_receive, send)

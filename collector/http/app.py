"""The two Starlette applications of one collector.

The *public* app faces the internet: beacons, the tracker, consent calls from site backends, health
and the OpenAPI document. The *internal* app (``collector.http.internal``) serves admin operations,
analyst queries and metrics, and is reachable only through the data directory's Unix socket (and an
optional loopback port). ``create_app`` builds both; the public one carries the lifespan and holds
the internal one as ``app.state.internal``. The beacon endpoints are answered by
``collector.http.beacon.BeaconApp`` in front of the public app's middleware (it hands everything else
on, and its attributes, ``state`` included, are the Starlette app's).
"""

from __future__ import annotations

import contextlib
import json
import time

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.http import api, internal, openapi, ratelimit, tracker
from collector.http.beacon import BeaconApp
from collector.http.health import healthz, readyz, storagez
from collector.http.clientip import ClientIp
from collector.http.errors import HANDLERS
from collector.http.security import SecurityMiddleware
from collector.pipeline.origin import OriginPolicy
from collector.service import Collector
from collector.settings import Settings


async def openapi_json(request: Request) -> Response:
    return Response(request.app.state.openapi, media_type="application/json")


def routes() -> list[Route]:
    return [
        Route("/api/event", api.event, methods=["POST"]),
        Route("/api/batch", api.batch, methods=["POST"]),
        Route("/p.gif", api.pixel, methods=["GET"]),
        tracker.route,
        Route("/api/consent", api.consent, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/storagez", storagez, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
    ]


class CloseWhenDraining:
    """Once shutdown has begun, every answer says ``Connection: close``, so clients stop reusing
    connections during the readiness grace instead of sending on one the server is about to close."""

    def __init__(self, app, collector: Collector):
        self.app = app
        self.collector = collector

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.collector.draining:
            return await self.app(scope, receive, send)

        async def send_closing(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        return await self.app(scope, receive, send_closing)


class CountRequests:
    """Every answer of the Starlette-served routes by route and status, with its latency
    (``Counts.http``); a path that is no route counts as ``other``, so the labels stay few."""

    def __init__(self, app, collector: Collector, paths: frozenset[str]):
        self.app = app
        self.http = collector.counts.http
        self.paths = paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = [500]

        async def noting(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            path = scope["path"]
            self.http.observe(path if path in self.paths else "other", status[0], time.perf_counter() - t0)


def create_app(settings: Settings, collector: Collector | None = None) -> BeaconApp:
    svc = collector or Collector.from_settings(settings)
    origins = OriginPolicy(settings.sites)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await svc.start()
        try:
            yield
        finally:
            await svc.stop()

    app = Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers=HANDLERS,
        middleware=[Middleware(CountRequests, collector=svc, paths=frozenset(r.path for r in routes())),
                    Middleware(CloseWhenDraining, collector=svc),
                    Middleware(SecurityMiddleware, origins=origins, counts=svc.counts,
                               request_timeout_s=settings.request_timeout_s)],
    )
    app.state.collector = svc
    app.state.origins = origins
    app.state.client_ip = ClientIp(settings.trusted_proxies)
    app.state.ratelimit = ratelimit.from_settings(settings)
    app.state.openapi = json.dumps(openapi.document(settings)).encode()
    app.state.internal = internal.create_internal_app(svc)
    # the beacon endpoints are answered in front of the middleware stack (collector.http.beacon)
    return BeaconApp(app, svc, origins, app.state.client_ip, app.state.ratelimit, settings.request_timeout_s)

"""The Starlette application: routes, lifespan and the one error mapping."""

from __future__ import annotations

import contextlib
import json

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.http import admin, api, openapi, ratelimit, tracker
from collector.http.clientip import ClientIp
from collector.http.errors import HANDLERS
from collector.http.security import SecurityMiddleware
from collector.pipeline.origin import OriginPolicy
from collector.service import Collector
from collector.settings import Settings


async def healthz(request: Request) -> Response:
    return JSONResponse({"alive": True})


async def readyz(request: Request) -> Response:
    svc = request.app.state.collector
    storage = svc.loader.healthy and svc.migrated
    ok = svc.ready and storage
    body = {"ready": ok, "accepting": svc.ready, "storage": storage}
    return JSONResponse(body, status_code=200 if ok else 503)


async def openapi_json(request: Request) -> Response:
    return Response(request.app.state.openapi, media_type="application/json")


async def metrics(request: Request) -> Response:
    return Response(request.app.state.collector.metrics.render(), media_type="text/plain; version=0.0.4")


def routes() -> list[Route]:
    return [
        Route("/api/event", api.event, methods=["POST"]),
        Route("/api/batch", api.batch, methods=["POST"]),
        Route("/p.gif", api.pixel, methods=["GET"]),
        tracker.route,
        Route("/api/consent", api.consent, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/admin/query", admin.query, methods=["POST"]),
        Route("/admin/forget", admin.forget, methods=["POST"]),
        Route("/admin/inventory", admin.inventory_list, methods=["GET"]),
        Route("/admin/keys", admin.keys_status, methods=["GET"]),
        Route("/admin/keys/rotate", admin.keys_rotate, methods=["POST"]),
        Route("/admin/spool", admin.spool_status, methods=["GET"]),
        Route("/admin/flush", admin.flush, methods=["POST"]),
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


def create_app(settings: Settings, collector: Collector | None = None) -> Starlette:
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
        middleware=[Middleware(CloseWhenDraining, collector=svc),
                    Middleware(SecurityMiddleware, origins=origins, counts=svc.counts,
                               request_timeout_s=settings.request_timeout_s)],
    )
    app.state.collector = svc
    app.state.origins = origins
    app.state.client_ip = ClientIp(settings.trusted_proxies)
    app.state.ratelimit = ratelimit.from_settings(settings)
    app.state.openapi = json.dumps(openapi.document(settings)).encode()
    return app

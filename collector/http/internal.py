"""The internal application: admin operations, analyst queries and Prometheus metrics.

Never served on the public listener. ``collector.http.server`` binds it to a Unix socket in the data
directory (mode 0600, in a 0700 directory) and, when ``COLLECTOR_INTERNAL_PORT`` is set, to that
loopback port. Admin endpoints need the admin token; the query endpoint answers for either role
within that role's sandbox; health and metrics need none (the listener itself is private).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.http import admin, dashboard
from collector.http.errors import HANDLERS
from collector.http.health import healthz, readyz, storagez


async def metrics(request: Request) -> Response:
    return Response(request.app.state.collector.metrics.render(), media_type="text/plain; version=0.0.4")


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/storagez", storagez, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/admin/hello", admin.hello, methods=["GET"]),
        Route("/admin/query", admin.query, methods=["POST"]),
        Route("/api/query", admin.query, methods=["POST"]),
        Route("/admin/forget", admin.forget, methods=["POST"]),
        Route("/admin/inventory", admin.inventory_list, methods=["GET"]),
        Route("/admin/keys", admin.keys_status, methods=["GET"]),
        Route("/admin/keys/rotate", admin.keys_rotate, methods=["POST"]),
        Route("/admin/spool", admin.spool_status, methods=["GET"]),
        Route("/admin/flush", admin.flush, methods=["POST"]),
        *dashboard.routes(),
    ]


class CountErrors:
    """Counts the internal listener's error answers by status, like the public one's."""

    def __init__(self, app, counts):
        self.app = app
        self.rejected = counts.rejected

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def counting(message):
            if message["type"] == "http.response.start" and message["status"] >= 400:
                self.rejected[message["status"]] += 1
            await send(message)

        return await self.app(scope, receive, counting)


def create_internal_app(collector) -> Starlette:
    from starlette.middleware import Middleware

    app = Starlette(routes=routes(), exception_handlers=HANDLERS,
                    middleware=[Middleware(CountErrors, counts=collector.counts)])
    app.state.collector = collector
    return app

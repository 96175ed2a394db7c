"""The baseline app: one Starlette route answering 204, served with the collector's uvicorn settings
(uvloop, httptools, no access log, no server/date headers, same keep-alive and backlog).

Run as ``python -m loadtests.bare PORT``.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def accept(request: Request) -> Response:
    return Response(status_code=204)


async def healthz(request: Request) -> Response:
    return Response(b'{"alive":true}', media_type="application/json")


def create_app() -> Starlette:
    return Starlette(routes=[Route("/api/event", accept, methods=["POST"]),
                             Route("/api/batch", accept, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])])


def run(app, port: int) -> None:
    """Serve ``app`` on loopback with the same keyword arguments as collector.http.server.serve()."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", lifespan="on",
        log_config=None, access_log=False, server_header=False, date_header=False,
        timeout_keep_alive=5, backlog=2048,
    )
    uvicorn.Server(config).run()


def main(port: int) -> None:
    run(create_app(), port)


if __name__ == "__main__":
    main(int(sys.argv[1]))

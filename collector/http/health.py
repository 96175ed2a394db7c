"""Liveness and readiness, answered on both listeners."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


async def healthz(request: Request) -> Response:
    return JSONResponse({"alive": True})


async def readyz(request: Request) -> Response:
    svc = request.app.state.collector
    storage = svc.loader.healthy and svc.migrated
    ok = svc.ready and storage
    body = {"ready": ok, "accepting": svc.ready, "storage": storage}
    return JSONResponse(body, status_code=200 if ok else 503)

"""Renders every failure as JSON with the status its class declares (``collector.errors``).

Unexpected exceptions answer 500 naming only the class of the failure: nothing from the request is
echoed. Starlette's own 404 and 405 answers take the same JSON shape.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collector.errors import CollectorError

HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def error_response(exc: CollectorError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status, headers=headers)


async def handle_collector_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CollectorError)
    return error_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
    return JSONResponse({"error": code, "message": message}, status_code=exc.status_code, headers=exc.headers)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "internal", "message": type(exc).__name__}, status_code=500)


HANDLERS = {CollectorError: handle_collector_error, HTTPException: handle_http_exception, Exception: handle_unexpected}

"""Every ingestion failure, and the one place that maps each to an HTTP status."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class CollectorError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class BadRequest(CollectorError):
    status, code = 400, "bad_request"


class Unauthorized(CollectorError):
    status, code = 401, "unauthorized"


class Forbidden(CollectorError):
    status, code = 403, "forbidden"


class NotFound(CollectorError):
    status, code = 404, "not_found"


class RequestTimeout(CollectorError):
    """The client did not send the whole request within the deadline (slow or stalled client)."""

    status, code = 408, "request_timeout"


class UnknownSite(CollectorError):
    status, code = 422, "unknown_site"


class PayloadTooLarge(CollectorError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(CollectorError):
    status, code = 415, "unsupported_media_type"


class RateLimited(CollectorError):
    status, code = 429, "rate_limited"


class Unavailable(CollectorError):
    status, code = 503, "unavailable"


class StorageError(CollectorError):
    """ClickHouse could not be reached or refused a statement."""

    status, code = 503, "storage_unavailable"


def error_response(exc: CollectorError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status, headers=headers)


async def handle_collector_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CollectorError)
    return error_response(exc)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    # Nothing from the request is echoed: only the class of the failure.
    return JSONResponse({"error": "internal", "message": type(exc).__name__}, status_code=500)

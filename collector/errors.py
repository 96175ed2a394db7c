"""Every failure the product reports, each with its HTTP status: the one place statuses are decided.

``collector.http.errors`` renders them; everything below the HTTP layer raises them without knowing
about HTTP.
"""

from __future__ import annotations


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


class Conflict(CollectorError):
    """The request repeats one already carried out (a replayed signed call)."""

    status, code = 409, "conflict"


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


# kinds of storage failure
PERMANENT = "permanent"  # the statement or the data is unacceptable: retrying cannot help
TRANSIENT = "transient"  # storage unreachable, erroring or slow: retry later
BUSY = "busy"  # the embedded data path is held by another process


class StorageError(CollectorError):
    """ClickHouse could not be reached or refused a statement. Raised only by ``collector.storage``,
    which translates the driver's errors once; ``message`` never holds a password."""

    code = "storage_unavailable"

    def __init__(self, message: str, kind: str = TRANSIENT, *, retry_after: int | None = None):
        super().__init__(message, retry_after=retry_after if retry_after is not None or kind == PERMANENT else 5)
        self.kind = kind

    @property
    def status(self) -> int:  # type: ignore[override]
        return 400 if self.kind == PERMANENT else 503

    @property
    def permanent(self) -> bool:
        return self.kind == PERMANENT


class QueryRefused(Forbidden):
    """The SQL sandbox refused a statement for the caller's role (not readable, not a SELECT, …)."""

    status, code = 403, "query_refused"


class QueryLimit(CollectorError):
    """A sandboxed query exceeded its role's limits (time, memory, rows read or returned)."""

    status, code = 422, "query_limit"


class QueryBusy(RateLimited):
    """Another sandboxed query of the same role is still running."""

    status, code = 429, "query_busy"

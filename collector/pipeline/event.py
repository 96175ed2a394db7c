"""The event as it moves through the pipeline.

``ip``, ``user_agent`` and ``client_id`` are request context: they live only in memory while the
request is handled (so does ``shared``, the per-request memo of what is derived from them). Only ``row`` (and ``table``) leave the process, appended to the spool.
"""

from __future__ import annotations

from typing import Any, Callable

from collector.settings import Site


class Dropped(Exception):
    """A policy drop: counted by reason, answered like an accepted event."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Event:
    """One event of a request, changed in place by each step (``collector.pipeline.runner``)."""

    __slots__ = ("site", "payload", "ip", "user_agent", "received_ms", "gpc", "origin", "table", "row", "query",
                 "shared", "page", "page_key")

    def __init__(self, site: Site, payload: dict[str, Any], ip: str, user_agent: str, received_ms: int,
                 gpc: bool = False, origin: str | None = None, shared: dict | None = None):
        self.site = site
        self.payload = payload
        self.ip = ip
        self.user_agent = user_agent
        self.received_ms = received_ms
        self.gpc = gpc
        self.origin = origin  # the page's origin (Origin header, else the pixel's Referer); None: none sent
        self.table = "events"
        self.row: dict[str, Any] = {}  # what is stored: made by the payload step, filled by the others
        self.query: dict[str, str] = _NO_QUERY  # the page URL's query pairs (the url step), read-only
        # facts derived from the request's address and User-Agent, computed once for all the events of
        # one request (a batch shares them); it lives and dies with the request, like ``ip`` itself
        self.shared: dict[Any, Any] = {} if shared is None else shared
        # the page's remembered outcome (``collector.pipeline.page``): the scrubbed page fields, or None;
        # on a miss, the keyed hash under which the scrub step remembers them
        self.page: tuple[str, ...] | None = None
        self.page_key: bytes | None = None

    def derived(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per request for ``key``; later events of the request reuse the value."""
        value = self.shared.get(key)
        if value is None:
            value = self.shared[key] = compute()
        return value

    def __repr__(self) -> str:  # never the address, the User-Agent or the payload
        return f"Event(site={getattr(self.site, 'domain', None)!r}, table={self.table!r})"


_NO_QUERY: dict[str, str] = {}

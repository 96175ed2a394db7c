"""The event as it moves through the pipeline.

``ip``, ``user_agent`` and ``client_id`` are request context: they live only in memory while the
request is handled (so does ``shared``, the per-request memo of what is derived from them). Only ``row`` (and ``table``) leave the process, appended to the spool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from collector.settings import Site


class Dropped(Exception):
    """A policy drop: counted by reason, answered like an accepted event."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Event:
    site: Site
    payload: dict[str, Any]
    ip: str
    user_agent: str
    received_ms: int
    gpc: bool = False
    origin: str | None = None  # the page's origin (Origin header, else the pixel's Referer); None: none sent
    table: str = "events"
    row: dict[str, Any] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    # facts derived from the request's address and User-Agent, computed once for all the events of
    # one request (a batch shares them); it lives and dies with the request, like ``ip`` itself
    shared: dict[Any, Any] = field(default_factory=dict)
    # the page's remembered outcome (``collector.pipeline.page``): the scrubbed page fields, or None;
    # on a miss, the keyed hash under which the scrub step remembers them
    page: tuple[str, ...] | None = None
    page_key: bytes | None = None

    def derived(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per request for ``key``; later events of the request reuse the value."""
        value = self.shared.get(key)
        if value is None:
            value = self.shared[key] = compute()
        return value

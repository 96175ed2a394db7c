"""Host and path from the page URL; the fragment is dropped unless the site uses hash routing."""

from __future__ import annotations

from collector.pipeline.event import Event
from collector.pipeline.urls import query_pairs, split


class UrlStep:
    name = "url"

    def __call__(self, ev: Event) -> Event:
        raw = ev.payload["url"]
        if ev.payload.get("screen"):
            raw = raw or "app://" + ev.site.domain + "/" + ev.payload["screen"].lstrip("/")
        parts = split(raw)
        path = parts.path or "/"
        if ev.payload.get("hash") and parts.fragment.startswith("/"):
            path = parts.fragment.split("?", 1)[0]
        ev.row["host"] = (parts.hostname or "")[:253]
        ev.row["path"] = path
        ev.query = query_pairs(parts.query) if parts.query else {}
        return ev

"""Host and path from the page URL; the fragment is dropped unless the site uses hash routing."""

from __future__ import annotations

from collector.pipeline.event import Event
from collector.pipeline.page import PageMemo
from collector.pipeline.urls import query_pairs, split


class UrlStep:
    name = "url"

    def __init__(self, pages: PageMemo | None = None):
        self.pages = pages

    def __call__(self, ev: Event) -> Event:
        if self.pages is not None:
            hit = ev.page = self.pages.find(ev)
            if hit is not None:  # host, path and query already scrubbed, as the scrub step leaves them
                ev.row["host"], ev.row["path"], ev.row["query"] = hit[0], hit[1], hit[2]
                return ev
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

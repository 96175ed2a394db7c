"""UTM campaign fields from the page's query string; every other query parameter is dropped later."""

from __future__ import annotations

from collector.pipeline.event import Event
from collector.pipeline.page import UTM

FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class UtmStep:
    name = "utm"

    def __call__(self, ev: Event) -> Event:
        if ev.page is not None:
            ev.row.update(zip(FIELDS, ev.page[UTM]))
            return ev
        q = ev.query
        for f in FIELDS:
            ev.row[f] = q.get(f, "")[:256]
        return ev

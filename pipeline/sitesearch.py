"""Site-search term: an explicit ``search`` field, or the first configured query parameter present."""

from __future__ import annotations

from pipeline.event import Event


class SiteSearchStep:
    name = "sitesearch"

    def __call__(self, ev: Event) -> Event:
        term = ev.payload.get("search") or ""
        if not term:
            for param in ev.site.search_params:
                if ev.query.get(param):
                    term = ev.query[param]
                    break
        ev.row["search_term"] = " ".join(term.split()).lower()
        return ev

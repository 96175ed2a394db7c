"""Site-search term: an explicit ``search`` field, or on a pageview the first configured query parameter
present. Other events on the same page (engagement, clicks) do not repeat the term, so searches are
counted once."""

from __future__ import annotations

from collector.pipeline.event import Event


class SiteSearchStep:
    name = "sitesearch"

    def __call__(self, ev: Event) -> Event:
        if ev.page is not None:
            ev.row["search_term"] = ev.page[10]
            return ev
        term = ev.payload.get("search") or ""
        if not term and ev.row["name"] == "pageview":
            for param in ev.site.search_params:
                if ev.query.get(param):
                    term = ev.query[param]
                    break
        ev.row["search_term"] = " ".join(term.split()).lower()
        return ev

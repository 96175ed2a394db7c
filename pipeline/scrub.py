"""Applies the privacy scrubber to every free-text field before anything is stored.

Paths lose id-like segments; the query keeps only allow-listed parameters; search terms, titles,
click text, link URLs and custom properties go through the PII/PHI detectors; lengths are capped.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from collector.settings import DEFAULT_QUERY_ALLOW
from pipeline.event import Event
from privacy.scrub import Scrubber


class ScrubStep:
    name = "scrub"

    def __init__(self):
        self._by_patterns: dict[tuple[str, ...], Scrubber] = {}

    def scrubber(self, patterns: tuple[str, ...]) -> Scrubber:
        s = self._by_patterns.get(patterns)
        if s is None:
            s = self._by_patterns[patterns] = Scrubber(patterns)
        return s

    def link(self, sc: Scrubber, url: str) -> str:
        try:
            parts = urlsplit(url)
        except ValueError:
            return ""
        if parts.scheme in ("http", "https") and parts.hostname:
            return f"{parts.scheme}://{parts.hostname}{sc.path(parts.path, 512)}"
        if parts.scheme in ("mailto", "tel", "sms"):
            return f"{parts.scheme}:[redacted]"
        return sc.path(parts.path, 512)

    def __call__(self, ev: Event) -> Event:
        sc = self.scrubber(ev.site.member_id_patterns)
        row = ev.row
        row["path"] = sc.path(row["path"])
        allowed = DEFAULT_QUERY_ALLOW + ev.site.search_params
        kept = [(k, sc.text(v, 128)) for k, v in ev.query.items() if k in allowed]
        row["query"] = urlencode(kept)[:512] if kept else ""
        for f in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer_source"):
            if row[f]:
                row[f] = sc.text(row[f], 128)
        row["search_term"] = sc.text(row["search_term"], 256)
        row["title"] = sc.text(row["title"], 256)
        row["click_text"] = sc.text(row["click_text"], 256)
        if row["link_url"]:
            row["link_url"] = self.link(sc, row["link_url"])
        if row["props"]:
            row["props"] = {sc.text(k, 64): sc.text(v, 256) for k, v in row["props"].items()}
        return ev

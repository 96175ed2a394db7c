"""Applies the privacy scrubber to every free-text field before anything is stored.

Paths lose id-like segments; the query keeps only allow-listed parameters; search terms, titles,
click text, link URLs and custom properties go through the PII/PHI detectors; lengths are capped.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from collector.settings import DEFAULT_QUERY_ALLOW
from collector.pipeline.event import Event
from collector.privacy.scrub import Scrubber


class Clean:
    """Remembers values that a scrub function returned unchanged, and returns them without scrubbing again.

    Only such values are kept: they hold nothing any detector flags and are stored verbatim anyway, so
    this memory holds nothing the database does not. Anything a detector changed is never remembered.
    The set is bounded: it starts over when full. Scrubbing is deterministic, so answers are the same.
    """

    __slots__ = ("fn", "seen", "size")

    def __init__(self, fn, size: int = 4096):
        self.fn = fn
        self.seen: set[str] = set()
        self.size = size

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        out = self.fn(value)
        if out == value:
            if len(self.seen) >= self.size:
                self.seen.clear()
            self.seen.add(value)
        return out


class Scrubbers:
    """One site's scrubber, with memos for the fields that repeat most (paths, titles, query values)."""

    def __init__(self, patterns: tuple[str, ...]):
        sc = self.sc = Scrubber(patterns)
        self.path = Clean(sc.path)
        self.query_value = Clean(lambda v: sc.text(v, 128))
        self.title = Clean(lambda v: sc.text(v, 256))


class ScrubStep:
    name = "scrub"

    def __init__(self):
        self._by_patterns: dict[tuple[str, ...], Scrubbers] = {}

    def scrubbers(self, patterns: tuple[str, ...]) -> Scrubbers:
        s = self._by_patterns.get(patterns)
        if s is None:
            s = self._by_patterns[patterns] = Scrubbers(patterns)
        return s

    def scrubber(self, patterns: tuple[str, ...]) -> Scrubber:
        return self.scrubbers(patterns).sc

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
        scs = self.scrubbers(ev.site.member_id_patterns)
        sc = scs.sc
        row = ev.row
        row["path"] = scs.path(row["path"])
        qv = scs.query_value
        kept = None
        if ev.query:
            allowed = DEFAULT_QUERY_ALLOW + ev.site.search_params
            kept = [(k, qv(v)) for k, v in ev.query.items() if k in allowed]
        row["query"] = urlencode(kept)[:512] if kept else ""
        for f in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer_source"):
            if row[f]:
                row[f] = qv(row[f])
        row["search_term"] = sc.text(row["search_term"], 256)
        row["title"] = scs.title(row["title"])
        row["click_text"] = sc.text(row["click_text"], 256)
        if row["link_url"]:
            row["link_url"] = self.link(sc, row["link_url"])
        if row["props"]:
            row["props"] = {sc.text(k, 64): sc.text(v, 256) for k, v in row["props"].items()}
        return ev

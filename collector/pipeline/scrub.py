"""Applies the privacy scrubber to every free-text field before anything is stored.

Paths lose id-like segments; the query keeps only allow-listed parameters; the event name, search
terms, titles, click text, link URLs, custom properties (URL- and path-like values scrubbed as links
and paths), app version and device model go through the PII/PHI detectors; the page host and the
referring host keep only labels that are plainly names; lengths are capped.
"""

from __future__ import annotations

from urllib.parse import urlencode

from collector.settings import DEFAULT_QUERY_ALLOW, Site
from collector.pipeline.event import Event
from collector.pipeline.page import PageMemo
from collector.privacy.memokey import MemoKey
from collector.privacy.scrub import Scrubber
from collector.pipeline.urls import split


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


_keyed_hash = MemoKey()  # its key made when the process starts, never written anywhere


class Scrubbed:
    """Remembers what a scrub function made of a value the scrubber changed, keyed by a keyed BLAKE2b
    hash of the value with a random per-process key: the memory holds only scrubbed output (what is
    stored) and hashes that cannot be reversed or recomputed outside this process. Unchanged values
    go to ``Clean`` first, which needs no hash. Bounded: it starts over when full."""

    __slots__ = ("clean", "fn", "done", "size")

    def __init__(self, fn, size: int = 8192):
        self.fn = fn
        self.clean = Clean(fn, size)
        self.done: dict[bytes, str] = {}
        self.size = size

    def __call__(self, value: str) -> str:
        if value in self.clean.seen:
            return value
        key = _keyed_hash(value)
        out = self.done.get(key)
        if out is not None:
            return out
        out = self.clean(value)
        if out != value:
            if len(self.done) >= self.size:
                self.done.clear()
            self.done[key] = out
        return out


class Scrubbers:
    """One site's scrubber, with memos for the fields that repeat most (paths, titles, query values,
    event names, hosts)."""

    def __init__(self, site: Site):
        self.site = site
        sc = self.sc = Scrubber(site.member_id_patterns, site.keep_numeric_segments)
        self.path = Scrubbed(sc.path)
        self.query_value = Scrubbed(lambda v: sc.text(v, 128, form=True))
        self.title = Scrubbed(lambda v: sc.text(v, 256))
        self.name = Scrubbed(lambda v: sc.text(v, 120))
        self.search = Scrubbed(lambda v: sc.text(v, 256, form=True))
        self.click = Scrubbed(lambda v: sc.text(v, 256))
        self.link = Scrubbed(lambda v: ScrubStep.link_of(self, v))
        self.query: dict[tuple, str] = {}  # allow-listed, scrubbed (key, value) pairs -> query string
        self.host = Clean(lambda v: sc.host(v, site.domain))
        self.foreign_host = Clean(sc.host)
        self.app = Clean(lambda v: v if sc.text(v, 64) == v else "")


def _url_like(value: str) -> bool:
    return value[:8].lower().startswith(("http://", "https://")) or value.startswith("//")


class ScrubStep:
    name = "scrub"

    def __init__(self, pages: PageMemo | None = None):
        self._by_site: dict[str, Scrubbers] = {}
        self.pages = pages  # where the page fields' outcome is remembered (``collector.pipeline.page``)

    def scrubbers(self, site: Site) -> Scrubbers:
        s = self._by_site.get(site.domain)
        if s is None or s.site is not site:
            if len(self._by_site) >= 1024:
                self._by_site.clear()
            s = self._by_site[site.domain] = Scrubbers(site)
        return s

    def scrubber(self, site: Site) -> Scrubber:
        return self.scrubbers(site).sc

    def link(self, scs: Scrubbers, url: str) -> str:
        return self.link_of(scs, url)

    @staticmethod
    def link_of(scs: Scrubbers, url: str) -> str:
        """Scheme, checked host, a non-default port, and the scrubbed path of a link; nothing else."""
        sc = scs.sc
        try:
            parts = split(url.strip())
            port = parts.port
        except ValueError:
            return ""
        if parts.scheme in ("http", "https") and parts.hostname:
            host = scs.foreign_host(parts.hostname)
            if ":" in host:  # an IPv6 literal is "[ip]" by now; keep brackets off anything else
                host = "*"
            default = {"http": 80, "https": 443}[parts.scheme]
            netloc = f"{host}:{port}" if port is not None and port != default else host
            return f"{parts.scheme}://{netloc}{sc.path(parts.path, 512)}"
        if parts.scheme in ("mailto", "tel", "sms"):
            return f"{parts.scheme}:[redacted]"
        if parts.scheme or parts.netloc:
            return ""
        return sc.path(parts.path, 512)

    def prop(self, scs: Scrubbers, value: str) -> str:
        if _url_like(value):
            return self.link(scs, value)[:256]
        if value.startswith("/") and " " not in value:
            return scs.sc.path(value, 256)
        return scs.sc.text(value, 256)

    def __call__(self, ev: Event) -> Event:
        scs = self.scrubbers(ev.site)
        sc = scs.sc
        row = ev.row
        row["name"] = scs.name(row["name"])
        if ev.page is None:  # on a remembered page its fields are already the scrubbed ones
            self.page(scs, ev, row)
            if self.pages is not None:
                self.pages.keep(ev)
        if row["title"]:
            row["title"] = scs.title(row["title"])
        if row["click_text"]:
            row["click_text"] = scs.click(row["click_text"])
        if row["link_url"]:
            row["link_url"] = scs.link(row["link_url"])
        if row["props"]:
            row["props"] = {sc.text(k, 64): self.prop(scs, v) for k, v in row["props"].items()}
        for f in ("app_version", "device_model"):
            if row.get(f):
                row[f] = scs.app(row[f])
        return ev

    @staticmethod
    def page(scs: Scrubbers, ev: Event, row: dict) -> None:
        """The page fields: host, path, allow-listed query, referrer, campaign, search term."""
        row["host"] = scs.host(row["host"])
        row["path"] = scs.path(row["path"])
        qv = scs.query_value
        kept = None
        if ev.query:
            allowed = DEFAULT_QUERY_ALLOW + ev.site.search_params
            kept = [(k, qv(v)) for k, v in ev.query.items() if k in allowed]
        if kept:
            kept_key = tuple(kept)
            query = scs.query.get(kept_key)
            if query is None:
                if len(scs.query) >= 4096:
                    scs.query.clear()
                query = scs.query[kept_key] = urlencode(kept)[:512]
            row["query"] = query
        else:
            row["query"] = ""
        ref = row.get("referrer_host") or ""
        if ref:
            clean_ref = scs.host(ref)
            if row["referrer_source"] == ref:  # an unnamed source is the referring host itself
                row["referrer_source"] = clean_ref
            row["referrer_host"] = clean_ref
        for f in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer_source"):
            if row[f]:
                row[f] = qv(row[f])
        if row["search_term"]:
            row["search_term"] = scs.search(row["search_term"])

"""What an event's page, referrer and campaign become, remembered by a keyed hash of their raw form.

The url, referrer, utm and sitesearch steps and the page part of the scrub step compute, from the
site, the page URL, the referrer, whether the event is a pageview, the hash-routing flag and the app
screen, the stored host, path, allow-listed query, referrer host and source, UTM fields and
site-search term, and nothing else goes into them. Pages repeat (a site has few pages, campaigns and
referrers), so that outcome is remembered per input: under a BLAKE2b hash of the raw inputs keyed
with a random per-process key (never written, so the hashes cannot be recomputed or reversed
outside this process), holding only the scrubbed values that are stored anyway, never a raw URL,
query value or referrer. Bounded: it starts over when full. An explicit site-search term is not a
function of the page, so such events are not remembered.

On a miss the steps do their work as before and the scrub step remembers the outcome; on a hit the
url step sets the event's ``page`` and the other steps copy from it. Every step's output is the same
either way (``tests/pipeline/test_page_memo.py`` compares rows with and without the memory).
"""

from __future__ import annotations

from collector.pipeline.event import Event
from collector.privacy.memokey import MemoKey

FIELDS = ("host", "path", "query", "referrer_host", "referrer_source", "utm_source", "utm_medium", "utm_campaign",
          "utm_term", "utm_content", "search_term")
UTM = slice(5, 10)

_keyed_hash = MemoKey()  # its key made when the process starts, never written anywhere


class PageMemo:
    __slots__ = ("size", "_by_site")

    def __init__(self, size: int = 8192):
        self.size = size
        self._by_site: dict[str, tuple[object, dict[bytes, tuple[str, ...]]]] = {}

    def _memo(self, site) -> dict[bytes, tuple[str, ...]]:
        entry = self._by_site.get(site.domain)
        if entry is None or entry[0] is not site:  # a reloaded site configuration starts afresh
            if len(self._by_site) >= 1024:
                self._by_site.clear()
            entry = self._by_site[site.domain] = (site, {})
        return entry[1]

    @staticmethod
    def key(ev: Event) -> bytes | None:
        p = ev.payload
        if p.get("search"):
            return None
        raw = "\x1f".join((p["url"], p.get("referrer") or "", "1" if p["name"] == "pageview" else "",
                           "1" if p.get("hash") else "", p.get("screen") or ""))
        return _keyed_hash(raw)

    def find(self, ev: Event) -> tuple[str, ...] | None:
        """The remembered outcome for the event's page, or None (then ``ev.page_key`` is set for ``keep``)."""
        key = self.key(ev)
        if key is None:
            return None
        hit = self._memo(ev.site).get(key)
        if hit is None:
            ev.page_key = key
        return hit

    def keep(self, ev: Event) -> None:
        """Remember the event's scrubbed page fields (called by the scrub step on a miss)."""
        if ev.page_key is None:
            return
        memo = self._memo(ev.site)
        if len(memo) >= self.size:
            memo.clear()
        row = ev.row
        memo[ev.page_key] = tuple([row[f] for f in FIELDS])

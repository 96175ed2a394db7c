"""Which web origins may send beacons: a per-site allow-list, and the CORS answer that follows from it.

``Site.origins`` lists origins such as ``https://example.org`` or ``https://*.example.org`` (any
subdomain); ``*`` allows any origin. An empty list allows the site's own pages: http(s) origins whose
host is the site's domain or one of its subdomains, on any port. A request without an ``Origin`` header
(server-to-server calls, mobile apps, an ``<img>`` pixel) is not from another origin and is allowed;
the pixel falls back to the origin of its ``Referer``.

A beacon for a site from an origin that site does not allow is dropped and counted under the reason
``origin``; the client gets the same answer as for an accepted beacon. CORS is decided before the
body (and so the site) is known: an origin is allowed for CORS when some site allows it.
"""

from __future__ import annotations

from functools import lru_cache

from collector.pipeline.event import Dropped, Event
from collector.settings import Site

DROP_REASON = "origin"


def normalize(origin: str) -> str:
    """``HTTPS://Example.org:443/`` -> ``https://example.org``; default ports dropped."""
    o = origin.strip().rstrip("/").lower()
    if o.startswith("https://") and o.endswith(":443"):
        o = o[:-4]
    elif o.startswith("http://") and o.endswith(":80"):
        o = o[:-3]
    return o


def origin_of_url(url: str) -> str | None:
    """The origin part of an absolute http(s) URL (the pixel's ``Referer``), else None."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return None
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}://{host}" if host and "@" not in host else None


# an Origin header longer than any real origin is refused unread (and never cached)
MAX_ORIGIN = 255


class _Allow:
    """One allow-list: exact origins and ``scheme://*.suffix`` wildcards; the site's own domain when empty."""

    def __init__(self, origins: tuple[str, ...], domain: str = ""):
        self.any = "*" in origins
        self.own = "" if origins else domain.lower()
        self.exact = frozenset(normalize(o) for o in origins if "://*." not in o)
        self.wild = tuple((s, "." + h) for s, _, h in (normalize(o).partition("://*.") for o in origins if "://*." in o))

    def __call__(self, origin: str) -> bool:
        if self.any:
            return True
        o = normalize(origin)
        if self.own:
            scheme, sep, host = o.partition("://")
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
            return bool(sep) and scheme in ("http", "https") and (host == self.own or host.endswith("." + self.own))
        if o in self.exact:
            return True
        scheme, sep, host = o.partition("://")
        return bool(sep) and any(scheme == s and host.endswith(suffix) for s, suffix in self.wild)


class OriginPolicy:
    def __init__(self, sites: tuple[Site, ...]):
        self._by_site = {s.domain: _Allow(s.origins, s.domain) for s in sites}
        self.any_for_cors = any(a.any for a in self._by_site.values())
        allows = tuple(self._by_site.values())
        # bounded caches of bounded keys: hostile clients can send any number of distinct origins
        self._cors = lru_cache(maxsize=1024)(lambda origin: self.any_for_cors or any(a(origin) for a in allows))
        self._site = lru_cache(maxsize=4096)(self._site_allows)

    def cors_allowed(self, origin: str) -> bool:
        return len(origin) <= MAX_ORIGIN and self._cors(origin)

    def site_allows(self, domain: str, origin: str | None) -> bool:
        if origin is None:
            return True
        return len(origin) <= MAX_ORIGIN and self._site(domain, origin)

    def _site_allows(self, domain: str, origin: str | None) -> bool:
        if origin is None:
            return True
        allow = self._by_site.get(domain)
        return allow is None or allow(origin)


class OriginStep:
    """Drops events whose page origin the site does not allow (``Event.origin``; None: no origin)."""

    name = "origin"

    def __init__(self, policy: OriginPolicy):
        self.policy = policy

    def __call__(self, ev: Event) -> Event:
        if ev.origin is not None and not self.policy.site_allows(ev.site.domain, ev.origin):
            raise Dropped(DROP_REASON)
        return ev

"""URL splitting for request data, without the standard library's memory of raw URLs.

``urllib.parse.urlsplit`` keeps its last 128 inputs in an ``lru_cache``: page URLs, referrers and link
URLs, query strings and all, would outlive the request in it. ``split`` returns exactly what
``urlsplit`` returns and keeps nothing: plain ``http(s)://`` URLs (printable ASCII, no brackets) are
split here directly, everything else by ``urlsplit``'s own uncached function, which also raises its
``ValueError`` for malformed hosts. ``query_pairs`` is ``dict(parse_qsl(query))`` (blank values
dropped), taking a shortcut when nothing is percent- or plus-encoded.
"""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, urlsplit

_urlsplit = urlsplit.__wrapped__  # the uncached function behind the lru_cache
_SCHEMES = (("https://", "https", 8), ("http://", "http", 7))


def split(url: str) -> SplitResult:
    """``urlsplit(url)``, computed afresh and remembered nowhere."""
    if url.isascii() and url.isprintable() and " " not in url and "[" not in url and "]" not in url:
        for prefix, scheme, n in _SCHEMES:
            if url.startswith(prefix):
                rest = url[n:]
                end = len(rest)
                for ch in "/?#":
                    i = rest.find(ch)
                    if 0 <= i < end:
                        end = i
                netloc, rest = rest[:end], rest[end:]
                fragment = query = ""
                if "#" in rest:
                    rest, fragment = rest.split("#", 1)
                if "?" in rest:
                    rest, query = rest.split("?", 1)
                return SplitResult(scheme, netloc, rest, query, fragment)
    return _urlsplit(url)


def query_pairs(query: str) -> dict[str, str]:
    """``dict(parse_qsl(query))``: names to their last non-blank value."""
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=False))
    out: dict[str, str] = {}
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        if eq and value:
            out[name] = value
    return out

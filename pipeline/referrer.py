"""Referrer reduced to its host, and a source name for well-known hosts; internal referrers are empty."""

from __future__ import annotations

from urllib.parse import urlsplit

from pipeline.event import Event

SOURCES = {
    "google": "Google", "bing": "Bing", "duckduckgo": "DuckDuckGo", "yahoo": "Yahoo", "baidu": "Baidu",
    "yandex": "Yandex", "ecosia": "Ecosia", "facebook": "Facebook", "fb": "Facebook", "instagram": "Instagram",
    "t": "Twitter", "twitter": "Twitter", "x": "Twitter", "linkedin": "LinkedIn", "lnkd": "LinkedIn",
    "reddit": "Reddit", "youtube": "YouTube", "pinterest": "Pinterest", "tiktok": "TikTok",
    "github": "GitHub", "news.ycombinator": "Hacker News", "wikipedia": "Wikipedia", "chatgpt": "ChatGPT",
}


def source_for(host: str) -> str:
    parts = host.split(".")
    for i in range(len(parts) - 1):
        label = ".".join(parts[i:-1])
        if label in SOURCES:
            return SOURCES[label]
        if parts[i] in SOURCES and i == len(parts) - 2:
            return SOURCES[parts[i]]
    return host


class ReferrerStep:
    name = "referrer"

    def __call__(self, ev: Event) -> Event:
        raw = ev.payload.get("referrer") or ""
        host = ""
        if raw:
            try:
                host = (urlsplit(raw).hostname or "").removeprefix("www.")[:253]
            except ValueError:
                host = ""
        own = ev.row["host"].removeprefix("www.")
        if host == own:
            host = ""
        ev.row["referrer_host"] = host
        ev.row["referrer_source"] = ev.query.get("ref") or ev.query.get("source") or (source_for(host) if host else "")
        return ev

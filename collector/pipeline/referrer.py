"""Referrer reduced to its host, and a source name for well-known hosts; internal referrers are empty."""

from __future__ import annotations

from collector.pipeline.event import Event
from collector.pipeline.urls import split

# registrable name (without public suffix) -> source
NAMES = {
    "google": "Google", "bing": "Bing", "duckduckgo": "DuckDuckGo", "yahoo": "Yahoo", "baidu": "Baidu",
    "yandex": "Yandex", "ecosia": "Ecosia", "facebook": "Facebook", "instagram": "Instagram",
    "twitter": "Twitter", "linkedin": "LinkedIn", "reddit": "Reddit", "youtube": "YouTube",
    "pinterest": "Pinterest", "tiktok": "TikTok", "github": "GitHub", "wikipedia": "Wikipedia",
    "chatgpt": "ChatGPT", "perplexity": "Perplexity",
}
HOSTS = {"t.co": "Twitter", "x.com": "Twitter", "lnkd.in": "LinkedIn", "fb.com": "Facebook",
         "m.facebook.com": "Facebook", "l.facebook.com": "Facebook", "news.ycombinator.com": "Hacker News",
         "youtu.be": "YouTube"}
SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or"}


def source_for(host: str) -> str:
    if host in HOSTS:
        return HOSTS[host]
    labels = host.split(".")[:-1]
    if len(labels) > 1 and labels[-1] in SECOND_LEVEL:
        labels.pop()
    return NAMES.get(labels[-1], host) if labels else host


class ReferrerStep:
    name = "referrer"

    def __call__(self, ev: Event) -> Event:
        if ev.page is not None:
            ev.row["referrer_host"], ev.row["referrer_source"] = ev.page[3], ev.page[4]
            return ev
        raw = ev.payload.get("referrer") or ""
        host = ""
        if raw:
            try:
                host = (split(raw).hostname or "").removeprefix("www.")[:253]
            except ValueError:
                host = ""
        own = ev.row["host"].removeprefix("www.")
        if host == own:
            host = ""
        ev.row["referrer_host"] = host
        ev.row["referrer_source"] = ev.query.get("ref") or ev.query.get("source") or (source_for(host) if host else "")
        return ev

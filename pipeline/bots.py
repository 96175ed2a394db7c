"""Drops automated traffic, counted as ``bot``; the client gets the same answer as for a stored event."""

from __future__ import annotations

import re

from pipeline.event import Dropped, Event

_BOT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|scrape|headlesschrome|phantomjs|puppeteer|playwright|lighthouse|"
    r"pingdom|uptime|monitor|curl/|wget/|python-requests|python-httpx|aiohttp|go-http-client|okhttp|"
    r"java/|libwww|httpclient|facebookexternalhit|preview|bingpreview|googleother|apis-google",
    re.IGNORECASE,
)


def is_bot(user_agent: str) -> bool:
    return not user_agent or _BOT.search(user_agent) is not None


class BotStep:
    name = "bots"

    def __call__(self, ev: Event) -> Event:
        if is_bot(ev.user_agent) and ev.row["platform"] == "web":
            raise Dropped("bot")
        return ev

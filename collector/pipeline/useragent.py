"""Browser family and major version, OS family and major version, and device class from the User-Agent.

The parse is ua-parser 1.0 (the Rust matcher when ``ua-parser-rs`` is installed) wrapped in a cache:
composed by wrapping, as ua-parser's own ``CachingResolver`` is. Only the derived fields are kept.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import ua_parser
from ua_parser import Domain

from collector.pipeline.event import Event

_TABLET = re.compile(r"ipad|tablet|kindle|silk|playbook|nexus (7|9|10)|sm-t\d|android(?!.*mobile)", re.I)
_MOBILE = re.compile(r"mobi|iphone|ipod|android.*mobile|windows phone|blackberry|opera mini", re.I)
# Case-sensitive twins for lowercased ASCII input: same matches, several times faster than re.I.
_TABLET_LOWER = re.compile(_TABLET.pattern)
_MOBILE_LOWER = re.compile(_MOBILE.pattern)


def device_class(ua: str) -> str:
    if ua.isascii():
        text, tablet, mobile = ua.lower(), _TABLET_LOWER, _MOBILE_LOWER
    else:
        text, tablet, mobile = ua, _TABLET, _MOBILE
    if tablet.search(text):
        return "tablet"
    if mobile.search(text):
        return "mobile"
    return "desktop"


class Agent(NamedTuple):
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str


def _resolver():
    # ua_parser.regex is the Rust matcher from ua-parser-rs; the pure-Python one is ~40x slower.
    return ua_parser.BestAvailableResolver(ua_parser.load_builtins())


class UserAgentParser:
    def __init__(self, cache_size: int = 20000):
        resolver = _resolver()
        self._resolve = resolver
        self.parse = lru_cache(maxsize=cache_size)(self._parse)

    def _parse(self, ua: str) -> Agent:
        r = self._resolve(ua, Domain.USER_AGENT | Domain.OS)
        browser = r.user_agent.family if r.user_agent else "Other"
        bmajor = (r.user_agent.major or "") if r.user_agent else ""
        os_family = r.os.family if r.os else "Other"
        omajor = (r.os.major or "") if r.os else ""
        return Agent(browser, bmajor, os_family, omajor, device_class(ua))


class UserAgentStep:
    name = "useragent"

    def __init__(self, parser: UserAgentParser | None = None):
        self.parser = parser or UserAgentParser()

    def __call__(self, ev: Event) -> Event:
        a = self.parser.parse(ev.user_agent[:512])
        row = ev.row
        row["browser"], row["browser_version"], row["os"], row["os_version"], row["device"] = a
        return ev

"""A realistic, deterministic traffic mix: user agents, client IPs, pages, referrers and beacon bodies.

User agents follow a skewed (Zipf-like) popularity over a few hundred distinct strings, as real
traffic does: a handful of current browsers dominate, with a long tail of older versions. Client IPs
are public IPv4 addresses spread over the whole allocated space plus some IPv6, so geo lookups walk
the real City database rather than one hot path.
"""

from __future__ import annotations

import ipaddress
import random
import time
from typing import Iterator

import orjson

SITE = "example.org"

_CHROME_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
_EDGE_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
             "Safari/537.36 Edg/{v}.0.{b}.{p}")
_FIREFOX_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
_CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/{v}.0.0.0 Safari/537.36")
_SAFARI_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/{s}.{m} Safari/605.1.15")
_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS {i}_{m} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           "Version/{i}.{m} Mobile/15E148 Safari/604.1")
_IPAD = ("Mozilla/5.0 (iPad; CPU OS {i}_{m} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/{i}.{m} Mobile/15E148 Safari/604.1")
_ANDROID = ("Mozilla/5.0 (Linux; Android {a}; {d}) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/{v}.0.{b}.{p} Mobile Safari/537.36")
_SAMSUNG = ("Mozilla/5.0 (Linux; Android {a}; {d}) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/{s}.0 Chrome/{v}.0.0.0 Mobile Safari/537.36")
_FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
_ANDROID_DEVICES = ("SM-S918B", "SM-A546B", "Pixel 8", "Pixel 7a", "K", "moto g power (2023)", "SM-G991U",
                    "2201117TG", "CPH2451", "SM-A155F")

PAGES = (
    "/", "/plans", "/plans/medicare-advantage", "/plans/individual-family", "/find-a-doctor",
    "/find-a-doctor/results", "/pharmacy", "/claims", "/claims/{n}", "/member/login", "/member/benefits",
    "/contact", "/about/privacy", "/blog/{slug}", "/providers/{uuid}", "/search",
)
SLUGS = ("open-enrollment-2025", "how-deductibles-work", "telehealth-visits", "flu-shots", "hsa-vs-fsa")
SEARCHES = ("cardiology near me", "dentist", "urgent care", "pediatrician 02108", "dermatology", "eye exam")
REFERRERS = (
    "", "", "", "https://www.google.com/search?q=health+plans", "https://www.bing.com/", "https://duckduckgo.com/",
    "https://www.facebook.com/", "https://t.co/abc123", "https://news.example.net/article/42",
    "https://example.org/plans",
)
UTMS = ("", "", "", "utm_source=newsletter&utm_medium=email&utm_campaign=fall",
        "utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_term=insurance", "ref=partner")


def user_agents(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct realistic User-Agent strings (most popular first)."""
    rnd = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    templates = (
        (_CHROME_WIN, 30), (_IPHONE, 22), (_ANDROID, 14), (_CHROME_MAC, 8), (_SAFARI_MAC, 7), (_EDGE_WIN, 6),
        (_SAMSUNG, 4), (_FIREFOX_WIN, 4), (_IPAD, 3), (_FIREFOX_LINUX, 2),
    )
    names, weights = zip(*templates)
    while len(out) < n:
        t = rnd.choices(names, weights)[0]
        ua = t.format(v=rnd.randint(100, 131), b=rnd.randint(4000, 6800), p=rnd.randint(0, 200),
                      s=rnd.randint(14, 26), m=rnd.randint(0, 6), i=rnd.randint(14, 18), a=rnd.randint(10, 15),
                      d=rnd.choice(_ANDROID_DEVICES))
        if ua not in seen:
            seen.add(ua)
            out.append(ua)
    return out


def public_ips(n: int, seed: int = 11) -> list[str]:
    """``n`` public client addresses: 90% IPv4 over the allocated space, 10% IPv6."""
    rnd = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        if rnd.random() < 0.1:
            addr = ipaddress.IPv6Address((0x2001 << 112) | (rnd.getrandbits(16) << 96) | rnd.getrandbits(64))
            out.append(str(addr))
            continue
        addr = ipaddress.IPv4Address(rnd.randint(0x01000000, 0xDFFFFFFF))
        if addr.is_global:
            out.append(str(addr))
    return out


def zipf_indices(n_items: int, count: int, seed: int = 3, s: float = 1.1) -> list[int]:
    rnd = random.Random(seed)
    weights = [1 / (k + 1) ** s for k in range(n_items)]
    return rnd.choices(range(n_items), weights, k=count)


def page_url(rnd: random.Random) -> str:
    path = rnd.choice(PAGES).format(n=rnd.randint(100000, 999999), slug=rnd.choice(SLUGS),
                                    uuid="3f2b8c1e-9a4d-4c7e-8b1a-{:012x}".format(rnd.getrandbits(48)))
    query = rnd.choice(UTMS)
    if path == "/search":
        query = "q=" + rnd.choice(SEARCHES).replace(" ", "+")
    return f"https://{SITE}{path}" + (f"?{query}" if query else "")


def payload(rnd: random.Random, seq: int | None = None, now: int | None = None, cid: str | None = None) -> dict:
    """One beacon body as the tracker sends it (short keys); ``cid``: the client id to send ("" none),
    else one drawn as the mix draws them."""
    p: dict = {"n": "pageview", "u": page_url(rnd), "d": SITE}
    ref = rnd.choice(REFERRERS)
    if ref:
        p["r"] = ref
    roll = rnd.random()
    if roll < 0.15:
        p["n"] = "engagement"
        p["e"] = rnd.randint(500, 120000)
    elif roll < 0.22:
        p["n"] = "click"
        p["link"] = "https://partner.example.com/enroll?id=7"
        p["text"] = "Enroll now"
    if cid is None:
        cid = client_id(rnd, now) if rnd.random() < 0.7 else ""
    if cid:
        p["cid"] = cid
    if rnd.random() < 0.1:
        p["p"] = {"plan": rnd.choice(("gold", "silver", "bronze")), "step": str(rnd.randint(1, 5))}
    if seq is not None:
        p.setdefault("p", {})["k"] = letters(seq)
    return p


def client_id(rnd: random.Random, now: int | None = None) -> str:
    """A client id as the tracker makes them: its creation time (base36 seconds, up to an hour ago), a dot, random hex."""
    return f"{base36((int(time.time()) if now is None else now) - rnd.randint(0, 3600))}.{rnd.getrandbits(64):016x}"


def letters(n: int) -> str:
    """A sequence number spelled in letters, so the scrubber's digit detectors leave it alone."""
    s = ""
    while True:
        n, r = divmod(n, 26)
        s = chr(97 + r) + s
        if n == 0:
            return s


def base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    s = ""
    while n:
        n, r = divmod(n, 36)
        s = digits[r] + s
    return s or "0"


def from_letters(s: str) -> int:
    n = 0
    for ch in s:
        n = n * 26 + ord(ch) - 97
    return n


class Mix:
    """The request-level mix: each request has its own body, User-Agent and client address; the events
    of a batch are one client's (one User-Agent, address and client id), on pages drawn as for singles."""

    def __init__(self, distinct_uas: int = 300, distinct_ips: int = 5000, seed: int = 1, now: int | None = None):
        self.uas = user_agents(distinct_uas)
        self.ips = public_ips(distinct_ips)
        self.rnd = random.Random(seed)
        # client ids are made relative to one instant (default: now), so one seed and instant give one mix
        self.now = int(time.time()) if now is None else now

    def requests(self, count: int, events_per_request: int = 1) -> Iterator[tuple[bytes, str, str]]:
        """(body, user_agent, client_ip) for ``count`` requests."""
        ua_idx = zipf_indices(len(self.uas), count, seed=self.rnd.randint(0, 1 << 30))
        for i in range(count):
            ua = self.uas[ua_idx[i]]
            ip = self.rnd.choice(self.ips)
            if events_per_request == 1:
                body = orjson.dumps(payload(self.rnd, now=self.now))
            else:  # a batch is one client's (an app's queue, a page's): one client id or none for all of it
                cid = client_id(self.rnd, self.now) if self.rnd.random() < 0.7 else ""
                body = orjson.dumps([payload(self.rnd, now=self.now, cid=cid) for _ in range(events_per_request)])
            yield body, ua, ip

    def events(self, count: int) -> list[tuple[dict, str, str]]:
        """(payload, user_agent, client_ip) per event, for in-process measurements."""
        ua_idx = zipf_indices(len(self.uas), count, seed=self.rnd.randint(0, 1 << 30))
        return [(payload(self.rnd, now=self.now), self.uas[ua_idx[i]], self.rnd.choice(self.ips)) for i in range(count)]

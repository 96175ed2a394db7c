"""Realistic journeys against the collector's public API, for ``locust`` (``make loadtest``).

Weighted users: anonymous readers (pages, site searches, outbound clicks, downloads, engagement pings),
returning readers, members who log in with a signed identity token and then read member pages,
visitors sending Global Privacy Control, bots, a mobile app posting batches to ``/api/batch``, pages
that only have the ``/p.gif`` pixel, and (when ``LOADTEST_FOREIGN_ORIGIN`` is set) an embed on an
origin the site does not allow. User-Agents follow a skewed popularity over a few hundred real-world
strings; client addresses are public addresses spread over the IPv4 and IPv6 space, sent in
``X-Forwarded-For`` as a load balancer would (the collector believes it from trusted proxies only).

Every event carries a unique marker in ``props.m`` (letters without vowels: the scrubber leaves it
alone, as it leaves any custom property that holds no personal data). Each locust process appends, per
request, what the collector answered and the markers it carried to its own ledger file in
``LOADTEST_LEDGER_DIR`` (``ledger-<worker>.tsv``: ``status<TAB>class<TAB>marker,marker,...``); requests
still in flight when the run stops are written with status ``-1`` (unknown). ``loadtests/verdict.py``
reads the ledgers and compares them with what ClickHouse holds.

Environment: ``LOADTEST_RUN`` (run tag, letters), ``LOADTEST_LEDGER_DIR``, ``LOADTEST_SITE``
(default ``example.org``), ``LOADTEST_SITE_SECRET`` (the site's secret, for identity tokens; without it
members browse without logging in), ``LOADTEST_THINK`` (think-time factor, default 1),
``LOADTEST_FOREIGN_ORIGIN`` (an origin the site does not allow).
"""

from __future__ import annotations

import atexit
import os
import random
import time
import uuid
from pathlib import Path

import orjson
from locust import FastHttpUser, between, events, task

from collector.privacy.tokens import mint
from loadtests.markers import prefix, random_tag, spell
from loadtests.traffic import SEARCHES, SLUGS, UTMS, public_ips, user_agents, zipf_indices

SITE = os.environ.get("LOADTEST_SITE", "example.org")
SECRET = os.environ.get("LOADTEST_SITE_SECRET", "")
THINK = float(os.environ.get("LOADTEST_THINK", "1") or 1)
FOREIGN_ORIGIN = os.environ.get("LOADTEST_FOREIGN_ORIGIN", "")
ORIGIN = f"https://{SITE}"

CLASSES = ("anon", "member", "bot", "origin")  # expected: events, member_events, dropped (bot), dropped (origin)

RUN = os.environ.get("LOADTEST_RUN") or random_tag(6)
PREFIX = prefix(RUN)


class Ledger:
    """One locust process's record of what each request was told."""

    def __init__(self, directory: str):
        self.pid = os.getpid()
        self.worker = random_tag(8)
        self.seq = 0
        self.pending: dict[int, tuple[str, list[str]]] = {}
        self.path = Path(directory) / f"ledger-{self.worker}.tsv" if directory else None
        self.file = open(self.path, "a", buffering=1 << 16) if self.path else None

    def markers(self, n: int) -> list[str]:
        out = [f"{PREFIX}{self.worker}{spell(self.seq + i)}" for i in range(n)]
        self.seq += n
        return out

    def write(self, status: int, cls: str, markers: list[str]) -> None:
        if self.file:
            self.file.write(f"{status}\t{cls}\t{','.join(markers)}\n")

    def close(self) -> None:
        """Requests still waiting for an answer are unknown: they may or may not have been stored."""
        for cls, markers in self.pending.values():
            self.write(-1, cls, markers)
        self.pending.clear()
        if self.file:
            self.file.flush()
            os.fsync(self.file.fileno())


_ledger: Ledger | None = None


def ledger() -> Ledger:
    """This process's ledger. Made on first use, so that each process ``locust --processes`` forks after
    importing this file gets its own worker tag, file and random state."""
    global _ledger
    if _ledger is None or _ledger.pid != os.getpid():
        random.seed()
        _ledger = Ledger(os.environ.get("LOADTEST_LEDGER_DIR", ""))
    return _ledger


def _close_ledger(**_kw) -> None:
    if _ledger is not None and _ledger.pid == os.getpid():
        _ledger.close()


atexit.register(_close_ledger)
events.test_stop.add_listener(_close_ledger)
events.quitting.add_listener(_close_ledger)


# A few hundred User-Agents with Zipf-like popularity, and 20,000 public client addresses.
UAS = user_agents(300, seed=random.randrange(1 << 20))
_UA_DRAW = zipf_indices(len(UAS), 50_000, seed=random.randrange(1 << 20))
IPS = public_ips(20_000, seed=random.randrange(1 << 20))
BOT_UAS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) "
    "Chrome/116.0.1938.76 Safari/537.36",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
    "python-requests/2.32.3",
    "curl/8.5.0",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
)
APP_UAS = (
    ("ios", "HealthApp/3.2.1 (iPhone; iOS 17.4; Scale/3.00)", ("iPhone15,2", "iPhone14,5", "iPhone16,1")),
    ("android", "okhttp/4.12.0", ("Pixel 8", "SM-S918B", "SM-A546B")),
)
APP_SCREENS = ("Home", "Claims/List", "Claims/New", "Benefits", "ID Card", "Find Care", "Messages", "Settings")
APP_PLACES = (("US", "US-MA"), ("US", "US-CA"), ("US", "US-TX"), ("GB", "GB-ENG"), (None, None), (None, None))
REFERRERS = ("", "", "", "https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/",
             "https://www.facebook.com/", "https://t.co/", "https://news.example.net/article/health-costs")
PAGES = ("/", "/plans", "/plans/medicare-advantage", "/plans/individual-family", "/find-a-doctor", "/pharmacy",
         "/claims", "/contact", "/about/privacy")
MEMBER_PAGES = ("/member/benefits", "/member/claims", "/member/id-card", "/member/messages", "/member/pharmacy")
DOWNLOADS = ("/forms/claim-form.pdf", "/plans/summary-of-benefits.pdf", "/forms/provider-directory.xlsx")
OUTBOUND = ("https://partner.example.com/enroll", "https://www.medicare.gov/plan-compare",
            "https://pharmacy.example.net/refill")


def think(lo: float, hi: float) -> float:
    return random.uniform(lo, hi) * THINK


class Visitor(FastHttpUser):
    """What every journey shares: one browser (User-Agent, address, tab id) and the ledgered send."""

    abstract = True
    wait_time = between(0.5 * THINK, 2.0 * THINK)
    network_timeout = 10.0
    connection_timeout = 5.0
    cls = "anon"

    def on_start(self) -> None:
        self.new_browser()

    def new_browser(self) -> None:
        self.ua = UAS[random.choice(_UA_DRAW)]
        self.ip = random.choice(IPS)
        self.cid = f"{int(time.time()):x}.{random.getrandbits(64):016x}"
        self.extra_headers: dict[str, str] = {}

    def headers(self, content_type: str | None = "text/plain") -> dict[str, str]:
        h = {"User-Agent": self.ua, "X-Forwarded-For": self.ip, "Origin": ORIGIN, **self.extra_headers}
        if content_type:
            h["Content-Type"] = content_type
        return h

    def send(self, name: str, cls: str, markers: list[str], method: str, path: str, **kw) -> int:
        key = id(markers)
        ledger().pending[key] = (cls, markers)
        with self.client.request(method, path, name=name, catch_response=True, **kw) as r:
            status = r.status_code or 0
            if 200 <= status < 300:
                r.success()
            else:
                r.failure(f"HTTP {status}" if status else f"no answer: {type(r.error).__name__}")
        ledger().pending.pop(key, None)
        ledger().write(status, cls, markers)
        return status

    def event(self, n: str, path: str, cls: str | None = None, ref: str = "", **fields) -> int:
        """One beacon as the tracker sends it (``/api/event``, short keys, ``text/plain``)."""
        cls = cls or self.cls
        [m] = ledger().markers(1)
        body = {"n": n, "u": ORIGIN + path, "d": SITE, "cid": self.cid, **fields}
        body["p"] = {**body.get("p", {}), "m": m}
        if ref:
            body["r"] = ref
        return self.send(f"/api/event {n}", cls, [m], "POST", "/api/event", data=orjson.dumps(body),
                         headers=self.headers())

    def page(self, path: str, ref: str = "", read: tuple[float, float] = (0.5, 3.0), cls: str | None = None,
             **fields) -> None:
        """A pageview, the reading time, then the engagement ping the tracker sends when the page is hidden."""
        self.event("pageview", path, cls, ref, **fields)
        t = think(*read)
        time.sleep(t)
        self.event("engagement", path, cls, e=int(t * 1000) + random.randint(0, 400), **fields)


class AnonymousReader(Visitor):
    """Lands from a search engine or a campaign, reads a few pages, searches the site, sometimes clicks out
    or downloads a form."""

    weight = 40

    @task
    def visit(self) -> None:
        self.new_browser()
        utm = random.choice(UTMS)
        self.page(random.choice(PAGES) + (f"?{utm}" if utm else ""), ref=random.choice(REFERRERS))
        for _ in range(random.randint(0, 3)):
            self.page(random.choice(PAGES), ref=ORIGIN + "/")
        if random.random() < 0.35:
            term = random.choice(SEARCHES)
            self.page("/search?q=" + term.replace(" ", "+"), ref=ORIGIN + "/")
            self.event("Site Search", "/search", search=term, p={"results": str(random.randint(0, 40))})
        if random.random() < 0.25:
            self.event("Outbound Link: Click", random.choice(PAGES), link=random.choice(OUTBOUND), text="Enroll now")
        if random.random() < 0.2:
            f = random.choice(DOWNLOADS)
            self.event("File Download", "/plans", link=ORIGIN + f, text="Download PDF")


class ReturningReader(Visitor):
    """The same browser (tab id, User-Agent, address) coming back to the blog from the newsletter."""

    weight = 15

    @task
    def visit(self) -> None:
        slug = random.choice(SLUGS)
        self.page(f"/blog/{slug}?utm_source=newsletter&utm_medium=email", ref="", read=(1.0, 5.0))
        if random.random() < 0.5:
            self.page("/blog/" + random.choice(SLUGS), ref=ORIGIN + f"/blog/{slug}")
        if random.random() < 0.3:
            self.event("Newsletter Signup", f"/blog/{slug}", p={"list": "weekly"})


class Member(Visitor):
    """Browses anonymously, opens the login page, logs in (the site's backend mints a token signed with
    the site secret), then reads member pages with the token: those events go to the member plane."""

    weight = 10

    @task
    def visit(self) -> None:
        self.new_browser()
        self.page("/", ref=random.choice(REFERRERS))
        self.page("/member/login", cls="member", read=(0.5, 1.5))  # an authenticated path: member plane
        if not SECRET:
            return
        token = mint(SECRET, SITE, f"member-{random.randrange(1, 200_000)}", ["analytics_linking"], 3600)
        for path in random.sample(MEMBER_PAGES, random.randint(1, 4)):
            self.page(path, cls="member", identity=token)
        if random.random() < 0.3:
            self.event("Claim Submitted", "/member/claims", cls="member", identity=token, p={"type": "dental"})
        self.page(random.choice(PAGES), cls="member", identity=token)  # still logged in: linked, member plane


class PrivacyConscious(Visitor):
    """Browsers sending Global Privacy Control: the header, and the tracker's ``gpc`` field."""

    weight = 8

    @task
    def visit(self) -> None:
        self.new_browser()
        self.extra_headers = {"Sec-GPC": "1"}
        body_gpc = {"gpc": True} if random.random() < 0.5 else {}
        for _ in range(random.randint(1, 3)):
            self.page(random.choice(PAGES), ref=random.choice(REFERRERS), **body_gpc)


class Bot(Visitor):
    """Crawlers and scripts: the collector answers them like anyone and drops their events (reason ``bot``)."""

    weight = 5
    cls = "bot"
    wait_time = between(0.2 * THINK, 1.0 * THINK)

    @task
    def crawl(self) -> None:
        self.ua = random.choice(BOT_UAS)
        for _ in range(random.randint(1, 5)):
            self.event("pageview", random.choice(PAGES + ("/blog/" + random.choice(SLUGS),)))


class AppUser(Visitor):
    """A mobile app posting the events it collected in batches to ``/api/batch`` (JSON, common fields
    outside ``events``, a resettable installation id); a fifth of the sessions are logged in."""

    weight = 10
    wait_time = between(1.0 * THINK, 4.0 * THINK)

    def on_start(self) -> None:
        super().on_start()
        self.platform, self.ua, models = random.choice(APP_UAS)
        self.model = random.choice(models)
        self.device_id = str(uuid.uuid4()).upper()
        self.place = random.choice(APP_PLACES)

    @task
    def sync(self) -> None:
        n = random.randint(5, 30)
        markers = ledger().markers(n)
        now = int(time.time() * 1000)
        evs = []
        for i, m in enumerate(markers):
            screen = random.choice(APP_SCREENS)
            ev = {"name": "pageview", "screen": screen, "ts": now - (n - i) * 1500, "props": {"m": m}}
            if i % 4 == 3:
                ev.update(name="engagement", engagement_ms=random.randint(800, 60000))
            evs.append(ev)
        common = {"domain": SITE, "platform": self.platform, "app_version": "3.2.1", "device_model": self.model,
                  "device_id": self.device_id, "events": evs}
        if self.place[0]:
            common.update(country=self.place[0], region=self.place[1])
        cls = "anon"
        if SECRET and random.random() < 0.2:
            # the backend minted the token just before: events timed before it would not link
            common["identity"] = mint(SECRET, SITE, f"member-{random.randrange(1, 200_000)}", ["analytics_linking"],
                                      3600, now=now / 1000 - n * 1.5 - 1)
            cls = "member"
        h = self.headers("application/json")
        h.pop("Origin")
        self.send("/api/batch", cls, markers, "POST", "/api/batch", data=orjson.dumps(common), headers=h)


class PixelOnly(Visitor):
    """Pages without JavaScript (an e-mail landing page, a static microsite) with the ``/p.gif`` pixel."""

    weight = 7

    @task
    def view(self) -> None:
        self.new_browser()
        [m] = ledger().markers(1)
        path = random.choice(PAGES)
        params = {"d": SITE, "u": ORIGIN + path, "p": orjson.dumps({"m": m}).decode()}
        h = self.headers(None)
        h.pop("Origin")
        h["Referer"] = ORIGIN + path
        self.send("/p.gif", "anon", [m], "GET", "/p.gif", params=params, headers=h)


class ForeignEmbed(Visitor):
    """The tracker copied onto a site the collector's site does not allow: dropped (reason ``origin``)."""

    weight = 4 if FOREIGN_ORIGIN else 0
    cls = "origin"

    def headers(self, content_type: str | None = "text/plain") -> dict[str, str]:
        return {**super().headers(content_type), "Origin": FOREIGN_ORIGIN}

    @task
    def visit(self) -> None:
        self.new_browser()
        self.page(random.choice(PAGES), ref=FOREIGN_ORIGIN + "/")


if not FOREIGN_ORIGIN:
    del ForeignEmbed  # a user class with weight 0 is still picked up by locust's class discovery

"""Traffic with exactly known answers, and bulk traffic for benchmarks.

``known_set()`` builds the rows the loader stores in ``events`` (JSONEachRow objects) from a list of
visit specifications, so every number the analyst views should show follows from the specification
by plain arithmetic: visits, bounces, entry and exit pages, sources per visit, durations, time on
page, transitions, funnel levels and goals. It includes visits whose events arrive out of order and
in several batches, visits split by the timeout and visits kept whole across five-minute slices,
GPC (count-only) events, and groups too small to be shown, which must fold into "(other)": a rare
page, a rare source, and five invented client ids behind one network.

``insert_bulk(store, n)`` inserts *n* generated events straight into the store with one
``INSERT ... SELECT FROM numbers()`` per chunk (the materialized views run as for loader inserts):
a few million events take seconds, for the dashboard benchmark.

    python -m loadtests.known_traffic --events 2000000 --data-dir /tmp/bench-data
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterable

import orjson

SITE = "example.org"
DAY0 = 1_764_288_000  # 2025-11-28 00:00:00 UTC
GOALS = (("Signup", "event", "Signup"), ("Quote page", "page", "/quote"))
FUNNEL = ("/", "/plans", "/quote", "Signup")


@dataclass
class Visit:
    """One visit: pageviews and custom events at offsets (seconds) from ``start``."""

    visitor: str
    network: str
    start: float
    pages: list[tuple[float, str]]
    source: dict[str, str] = field(default_factory=dict)  # referrer_source/referrer_host/utm_* of the landing
    events: list[tuple[float, str, dict]] = field(default_factory=list)  # (offset, name, props)
    engagement: list[tuple[float, str, int]] = field(default_factory=list)  # (offset, path, ms)
    client: dict[str, str] = field(default_factory=dict)  # device, browser, os, country, region, ...

    # -- the truth, by construction -----------------------------------------------------------
    @property
    def interactions(self) -> int:
        return len(self.pages) + len(self.events)

    @property
    def bounce(self) -> bool:
        return self.interactions == 1

    @property
    def entry(self) -> str:
        return min(self.pages)[1] if self.pages else ""

    @property
    def exit(self) -> str:
        return max(self.pages)[1] if self.pages else ""

    @property
    def duration_s(self) -> float:
        offs = [o for o, _ in self.pages] + [o for o, _, _ in self.events] + [o for o, _, _ in self.engagement]
        return max(offs) - min(offs)

    @property
    def source_name(self) -> str:
        return self.source.get("referrer_source") or self.source.get("utm_source") or "Direct"

    def sequence(self) -> list[str]:
        """Pageview paths and custom event names in time order (what funnels and goals match)."""
        items = [(o, p) for o, p in self.pages] + [(o, n) for o, n, _ in self.events]
        return [x for _, x in sorted(items)]

    def transitions(self) -> list[tuple[str, str]]:
        paths = [p for _, p in sorted(self.pages)]
        return list(zip(paths, paths[1:]))

    def funnel_level(self, steps: tuple[str, ...] = FUNNEL) -> int:
        level = 0
        for x in self.sequence():
            if level < len(steps) and x == steps[level]:
                level += 1
        return level

    # -- rows ------------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        out = []
        landing = min(self.pages)[0] if self.pages else None
        for off, path in self.pages:
            # the tracker repeats document.referrer on every event of a single-page app; internal
            # full-page navigations have no external referrer. Only the landing carries UTM.
            src = self.source if off == landing else {k: v for k, v in self.source.items() if k.startswith("referrer")}
            out.append(self._row(off, "pageview", path, **src))
        for off, name, props in self.events:
            out.append(self._row(off, name, self.entry or "/", props=props,
                                 **{k: v for k, v in self.source.items() if k.startswith("referrer")}))
        for off, path, ms in self.engagement:
            out.append(self._row(off, "engagement", path, engagement_ms=ms))
        return out

    def _row(self, off: float, name: str, path: str, **extra) -> dict:
        row = {"event_id": str(uuid.UUID(int=random.getrandbits(128))), "site": SITE,
               "ts": round(self.start + off, 3), "name": name, "visitor_id": self.visitor, "key_id": "k1",
               "network_id": self.network, "privacy": "standard", "host": SITE, "path": path, **self.client}
        row.update(extra)
        return row


def gpc_row(ts: float, path: str, name: str = "pageview", engagement_ms: int = 0) -> dict:
    """A count-only event (GPC/DNT): no visitor or network pseudonym."""
    return {"event_id": str(uuid.UUID(int=random.getrandbits(128))), "site": SITE, "ts": ts, "name": name,
            "visitor_id": "", "key_id": "", "network_id": "", "privacy": "gpc", "host": SITE, "path": path,
            "engagement_ms": engagement_ms, "country": "US", "region": "MA", "device": "desktop",
            "browser": "Chrome", "os": "Windows"}


DESKTOP_US = {"device": "desktop", "browser": "Chrome", "browser_version": "124", "os": "Windows",
              "os_version": "10", "country": "US", "region": "MA", "asn": 7922, "isp": "Comcast Cable"}
MOBILE_GB = {"device": "mobile", "browser": "Safari", "browser_version": "17", "os": "iOS", "os_version": "17",
             "country": "GB", "region": "ENG", "asn": 20712, "isp": "Andrews & Arnold Ltd"}
RARE_CLIENT = {"device": "tablet", "browser": "Firefox", "browser_version": "115", "os": "Linux",
               "os_version": "", "country": "IS", "region": "1", "asn": 64512, "isp": "Tiny Net"}


@dataclass
class KnownSet:
    visits: list[Visit]
    gpc: list[dict]
    batches: list[list[dict]]  # the rows in insertion order: several batches, some out of order

    @property
    def rows(self) -> list[dict]:
        return [r for b in self.batches for r in b]


def known_set(seed: int = 7) -> KnownSet:
    """The known traffic of one day (2025-11-28 UTC) on example.org, for a threshold of k = 5."""
    random.seed(seed)
    t0 = DAY0 + 9 * 3600
    visits: list[Visit] = []
    google = {"referrer_source": "Google", "referrer_host": "google.com"}
    news = {"referrer_source": "", "referrer_host": "", "utm_source": "newsletter", "utm_medium": "email",
            "utm_campaign": "spring"}

    # A: 8 visitors from Google through the funnel pages; 3 of them sign up. Engagement closes each page.
    for i in range(8):
        pages = [(0, "/"), (60, "/plans"), (150, "/quote")]
        events = [(200, "Signup", {"plan": "gold" if i < 2 else "silver"})] if i < 3 else []
        visits.append(Visit(f"vA{i}", f"nA{i}", t0 + i * 100, pages, dict(google), events,
                            [(59, "/", 55_000), (149, "/plans", 80_000), (240, "/quote", 40_000)], dict(DESKTOP_US)))
    # B: 6 direct visitors bouncing on /plans (one pageview, no event), 2 of them on mobile in GB.
    for i in range(6):
        visits.append(Visit(f"vB{i}", f"nB{i}", t0 + 1800 + i * 50, [(0, "/plans")], {}, [],
                            [(30, "/plans", 30_000)], dict(MOBILE_GB if i < 2 else DESKTOP_US)))
    # C: 5 newsletter visitors with two visits each: 45 minutes apart, so the timeout splits them. The
    # first visit spans several five-minute slices (gaps of 4, 12 and 25 minutes, none over 30).
    for i in range(5):
        start = t0 + 3600 + i * 30
        visits.append(Visit(f"vC{i}", f"nC{i}", start,
                            [(0, "/blog"), (240, "/blog/dental"), (960, "/plans"), (2460, "/quote")], dict(news), [],
                            [(2500, "/quote", 20_000)], dict(DESKTOP_US)))
        visits.append(Visit(f"vC{i}", f"nC{i}", start + 2500 + 2700, [(0, "/plans")], {}, [], [], dict(DESKTOP_US)))
    # D: timeout edges. A gap of exactly 30 minutes stays in the visit; 30 minutes and 1 ms starts a
    # new one. An engagement event 40 minutes after the last pageview (a tab left open) closes that
    # visit instead of opening another.
    visits.append(Visit("vD0", "nD0", t0 + 7200, [(0, "/faq"), (1800, "/contact")], {}, [], [], dict(DESKTOP_US)))
    visits.append(Visit("vD1", "nD1", t0 + 7200, [(0, "/faq")], {}, [], [], dict(DESKTOP_US)))
    visits.append(Visit("vD1", "nD1", t0 + 7200 + 1800.001, [(0, "/contact")], {}, [], [], dict(DESKTOP_US)))
    visits.append(Visit("vD2", "nD2", t0 + 7200, [(0, "/faq")], {}, [], [(2400, "/faq", 2_400_000)], dict(DESKTOP_US)))
    # E: small groups that must fold into "(other)": one visitor on a rare page from a rare source on
    # a rare client; two visitors from another rare source.
    visits.append(Visit("vE0", "nE0", t0 + 9000, [(0, "/rare-condition"), (30, "/plans")],
                        {"referrer_source": "rare.example", "referrer_host": "rare.example"}, [],
                        [(90, "/plans", 60_000)], dict(RARE_CLIENT)))
    for i in range(2):
        visits.append(Visit(f"vE{i + 1}", f"nE{i + 1}", t0 + 9100 + i * 10, [(0, "/")],
                            {"referrer_source": "Bing", "referrer_host": "bing.com"}, [], [], dict(DESKTOP_US)))
    # F: five invented client ids behind one network: five visitors, one network, on a page no one else
    # visits. Visible by visitors alone, so only the network count keeps it folded.
    for i in range(5):
        visits.append(Visit(f"vF{i}", "nF", t0 + 9500 + i * 5, [(0, "/sybil")], {"referrer_source": "Sybil",
                            "referrer_host": "sybil.example"}, [], [], dict(DESKTOP_US)))

    gpc = [gpc_row(t0 + 100 + i, "/plans") for i in range(3)] + [gpc_row(t0 + 140, "/plans", "engagement", 90_000)]

    # Batches: A in time order; B reversed; C's events shuffled and dealt over three batches (so both
    # visits of a visitor, and single visits, span batches); the rest in one batch, last rows first.
    rows_by_group: dict[str, list[dict]] = {}
    for v in visits:
        rows_by_group.setdefault(v.visitor[1], []).extend(v.rows())
    a = sorted(rows_by_group["A"], key=lambda r: r["ts"])
    b = list(reversed(rows_by_group["B"]))
    c = rows_by_group["C"][:]
    random.shuffle(c)
    rest = list(reversed(rows_by_group["D"] + rows_by_group["E"] + rows_by_group["F"] + gpc))
    batches = [c[0::3], a, c[1::3], b, rest, c[2::3]]
    return KnownSet(visits, gpc, batches)


def encode(rows: Iterable[dict]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows)


def insert_known(store, ks: KnownSet | None = None, goals: bool = True) -> KnownSet:
    """Insert the known set batch by batch (one token each, as the loader does) and the goals."""
    ks = ks or known_set()
    for i, batch in enumerate(ks.batches):
        store.insert_json("events", encode(batch), token=f"known:{i}")
    if goals:
        for goal, kind, match in GOALS:
            store.command("INSERT INTO goals (site, goal, kind, match) VALUES ({s:String}, {g:String}, {k:String}, "
                          "{m:String})", parameters={"s": SITE, "g": goal, "k": kind, "m": match})
    return ks


# -- bulk traffic for benchmarks ---------------------------------------------------------------------

_PAGES = ["/", "/plans", "/plans/dental", "/plans/vision", "/quote", "/blog", "/blog/dental", "/faq",
          "/contact", "/find-a-doctor", "/pharmacy", "/members", "/about", "/careers", "/search"]
_SOURCES = ["", "", "", "Google", "Google", "Bing", "DuckDuckGo", "Facebook", "LinkedIn", "newsletter"]
_COUNTRIES = ["US", "US", "US", "US", "GB", "CA", "DE", "FR", "IN", "MX"]
_BROWSERS = ["Chrome", "Chrome", "Safari", "Edge", "Firefox", "Samsung Internet"]
_DEVICES = ["desktop", "desktop", "mobile", "mobile", "tablet"]


def _arr(xs: list[str]) -> str:
    return "[" + ", ".join("'" + x.replace("'", "\\'") + "'" for x in xs) + "]"


def bulk_sql(offset: int, count: int, days: int, site: str = SITE, start: int | None = None) -> str:
    """One INSERT of ``count`` events numbered from ``offset``: visitors of 8 event slots (pageviews,
    engagement, a custom event, a search) 20-120 s apart, one to three visits per visitor per day."""
    start = DAY0 if start is None else start
    return f"""
INSERT INTO events (event_id, site, ts, name, visitor_id, key_id, network_id, privacy, host, path, query,
                    referrer_host, referrer_source, utm_source, search_term, engagement_ms, props,
                    browser, browser_version, os, device, country, region, asn, isp)
SELECT generateUUIDv4(number) AS event_id, '{site}' AS site,
       toDateTime64({start}, 3, 'UTC')
         + toIntervalMillisecond(toInt64(v % {days}) * 86400000 + toInt64(cityHash64(v, 1) % 80000000)
                                 + toInt64(slot) * (20000 + toInt64(cityHash64(v, 2) % 100000))
                                 + if(slot IN (5, 6) AND cityHash64(v, 3) % 3 = 0, 3600000, 0)) AS ts,
       multiIf(slot = 7, 'engagement', slot = 6 AND cityHash64(v, 4) % 4 = 0, 'Signup',
               slot = 3 AND cityHash64(v, 5) % 5 = 0, 'Outbound Link: Click', 'pageview') AS name,
       if(cityHash64(v, 6) % 50 = 0, '', hex(cityHash64(v, 7))) AS visitor_id,
       'bench' AS key_id,
       if(visitor_id = '', '', hex(cityHash64(intDiv(v, 3), 8))) AS network_id,
       if(visitor_id = '', 'gpc', 'standard') AS privacy, '{site}' AS host,
       {_arr(_PAGES)}[1 + cityHash64(v, slot, 9) % {len(_PAGES)}] AS path,
       '' AS query,
       if(referrer_source = '', '', lower(src) || '.com') AS referrer_host,
       if(slot = 0 AND src != 'newsletter', src, '') AS referrer_source,
       if(slot = 0 AND src = 'newsletter', 'newsletter', '') AS utm_source,
       if(slot = 2 AND cityHash64(v, 11) % 6 = 0, 'dental plan ' || toString(cityHash64(v, 12) % 40), '') AS search_term,
       if(slot = 7, toUInt32(5000 + cityHash64(v, 13) % 120000), 0) AS engagement_ms,
       if(name = 'Signup', map('plan', ['gold', 'silver', 'bronze'][1 + cityHash64(v, 14) % 3]), map()) AS props,
       {_arr(_BROWSERS)}[1 + cityHash64(v, 15) % {len(_BROWSERS)}] AS browser,
       toString(120 + cityHash64(v, 16) % 6) AS browser_version,
       if(browser = 'Safari', 'iOS', ['Windows', 'macOS', 'Android', 'Linux'][1 + cityHash64(v, 17) % 4]) AS os,
       {_arr(_DEVICES)}[1 + cityHash64(v, 18) % {len(_DEVICES)}] AS device,
       {_arr(_COUNTRIES)}[1 + cityHash64(v, 19) % {len(_COUNTRIES)}] AS country,
       if(country = 'US', ['MA', 'NY', 'CA', 'TX', 'RI'][1 + cityHash64(v, 20) % 5], '') AS region,
       toUInt32(64500 + cityHash64(intDiv(v, 3), 21) % 200) AS asn,
       'AS ' || toString(asn) AS isp
FROM (SELECT number, intDiv(number, 8) AS v, number % 8 AS slot,
             {_arr(_SOURCES)}[1 + cityHash64(v, 10) % {len(_SOURCES)}] AS src
      FROM numbers({offset}, {count}))
WHERE slot < 2 + cityHash64(v, 22) % 7 OR slot = 7
"""


def insert_bulk(store, n_events: int, days: int = 30, chunk: int = 1_000_000, start: int | None = None) -> int:
    """Insert about ``n_events`` generated events (the WHERE keeps about 70 % of the numbered slots, so
    more numbers are drawn); returns the number of events the table gained."""
    before = store.query_rows("SELECT count() FROM events")[0][0]
    numbered = int(n_events / 0.70) + 8
    for off in range(0, numbered, chunk):
        store.command(bulk_sql(off, min(chunk, numbered - off), days, start=start))
    return store.query_rows("SELECT count() FROM events")[0][0] - before


def main(argv: list[str] | None = None) -> int:
    from pathlib import Path

    from collector.settings import Settings
    from collector.storage import migrate
    from collector.storage.store import Store

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--data-dir", default="./bench-data")
    args = ap.parse_args(argv)
    settings = Settings(data_dir=Path(args.data_dir))
    store = Store(settings.dsn, settings.database)
    migrate.apply(store, settings)
    t = time.perf_counter()
    n = insert_bulk(store, args.events, days=args.days, start=int(time.time()) - args.days * 86400)
    print(f"inserted {n} events in {time.perf_counter() - t:.1f} s")
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

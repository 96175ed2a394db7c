"""Visits and the analyst views on real chDB, against traffic whose answers are known by construction
(loadtests/known_traffic.py): visits, bounces, entry and exit pages, sources per visit, durations,
time on page, transitions, funnels, goals, "(other)" folding, out-of-order and multi-batch visits."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict

import pytest

from collector.settings import ConfigError
from collector.storage import migrate
from collector.storage.store import Store
from collector.testing import make_settings
from loadtests import known_traffic as kt

K = 5
DAY = "2025-11-28"


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("visits") / "data", min_group_visitors=K)
    store = Store(settings.dsn)
    migrate.apply(store, settings)
    ks = kt.insert_known(store)
    yield store, settings, ks
    store.close()


def q(store, sql: str) -> list[dict]:
    return [json.loads(x) for x in store.query_raw(sql, "JSONEachRow").decode().splitlines() if x]


def spec_visits(ks) -> list[kt.Visit]:
    return sorted(ks.visits, key=lambda v: (v.visitor, v.start))


def fold(visits, key, k=K) -> dict[str, dict]:
    """The "(other)" folding of the views, computed from the specification."""
    groups = defaultdict(list)
    for v in visits:
        groups[key(v)].append(v)
    out: dict[str, dict] = defaultdict(lambda: {"visits": 0, "visitors": set(), "bounces": 0})
    for value, vs in groups.items():
        visible = len({v.visitor for v in vs}) >= k and len({v.network for v in vs}) >= k
        g = out[value if visible else "(other)"]
        g["visits"] += len(vs)
        g["visitors"] |= {v.visitor for v in vs}
        g["bounces"] += sum(v.bounce for v in vs)
    return {name: {"visits": g["visits"], "visitors": len(g["visitors"]), "bounces": g["bounces"]}
            for name, g in out.items()}


def test_every_visit_matches_its_specification(known):
    store, _, ks = known
    got = q(store, "SELECT visitor_id, start_ts, duration_s, pageviews, interactions, bounce, entry_page, exit_page, "
                   "source, utm_campaign, device, country, region, pages FROM visits ORDER BY visitor_id, start_ts")
    want = spec_visits(ks)
    assert len(got) == len(want) == 36
    for g, v in zip(got, want):
        assert g["visitor_id"] == v.visitor
        start = dt.datetime.fromisoformat(g["start_ts"]).replace(tzinfo=dt.timezone.utc).timestamp()
        assert start == pytest.approx(v.start, abs=0.001)
        assert g["duration_s"] == pytest.approx(v.duration_s, abs=0.001), v.visitor
        assert (g["pageviews"], g["interactions"], g["bounce"]) == (len(v.pages), v.interactions, int(v.bounce))
        assert (g["entry_page"], g["exit_page"]) == (v.entry, v.exit)
        assert g["source"] == v.source_name and g["utm_campaign"] == v.source.get("utm_campaign", "")
        assert (g["device"], g["country"], g["region"]) == (v.client["device"], v.client["country"],
                                                            v.client["region"])
        assert g["pages"] == [p for _, p in sorted(v.pages)]


def test_timeout_edges_and_slices(known):
    store, _, _ = known
    rows = {(r["visitor_id"], r["visit_no"]): r for r in q(
        store, "SELECT visitor_id, visit_no, pageviews, duration_s FROM visits WHERE visitor_id LIKE 'vD%' "
               "OR visitor_id = 'vC0'")}
    assert rows[("vD0", 1)]["pageviews"] == 2 and rows[("vD0", 1)]["duration_s"] == 1800  # a gap of exactly 30 min
    assert {k for k in rows if k[0] == "vD1"} == {("vD1", 1), ("vD1", 2)}  # 30 min and 1 ms: two visits
    assert [k for k in rows if k[0] == "vD2"] == [("vD2", 1)]  # late engagement closes, never opens
    assert rows[("vD2", 1)]["duration_s"] == 2400
    # three five-minute slices (gaps of 4, 12 and 25 minutes) make one visit; 45 minutes later a second
    assert rows[("vC0", 1)]["pageviews"] == 4 and rows[("vC0", 1)]["duration_s"] == 2500
    assert rows[("vC0", 2)]["pageviews"] == 1
    assert store.query_rows("SELECT count() FROM visit_slices FINAL WHERE visitor_id = 'vC0'")[0][0] == 3 + 1


def test_order_and_batches_do_not_change_visits(known, tmp_path):
    store, settings, ks = known
    before = q(store, "SELECT * EXCEPT (visit_no) FROM visits ORDER BY visitor_id, start_ts")
    # merging the parts (one row per slice on disk) changes nothing either
    store.command("OPTIMIZE TABLE visit_slices FINAL")
    assert q(store, "SELECT * EXCEPT (visit_no) FROM visits ORDER BY visitor_id, start_ts") == before
    # a retried batch (same deduplication token) is not counted twice, in events nor in visits
    store.insert_json("events", kt.encode(ks.batches[1]), token="known:1")
    assert q(store, "SELECT * EXCEPT (visit_no) FROM visits ORDER BY visitor_id, start_ts") == before
    assert store.query_rows("SELECT count() FROM events")[0][0] == len(ks.rows)


def test_traffic_totals(known):
    store, _, ks = known
    day = q(store, "SELECT * FROM traffic_daily")
    assert len(day) == 1 and day[0]["day"] == DAY
    d = day[0]
    pageviews = sum(len(v.pages) for v in ks.visits) + 3  # three GPC pageviews count in totals
    assert d["pageviews"] == pageviews == 72
    assert d["visitors"] == len({v.visitor for v in ks.visits}) == 30  # GPC: no visitor
    assert (d["visits"], d["bounces"]) == (36, 21)
    assert d["bounce_rate"] == round(21 / 36, 4)
    assert d["visit_duration_s"] == pytest.approx(round(sum(v.duration_s for v in ks.visits) / 36, 3))
    assert d["events"] == pageviews + 3  # + the three Signup events
    hours = {r["hour"]: r for r in q(store, "SELECT * FROM traffic_hourly")}
    assert sum(r["visits"] for r in hours.values()) == 36 and sum(r["pageviews"] for r in hours.values()) == 72
    assert hours["2025-11-28 09:00:00"]["visits"] == 14  # A (8) and B (6) start between 09:00 and 10:00


def test_sources_are_attributed_to_the_visit(known):
    store, _, ks = known
    got = {r["source"]: r for r in q(store, "SELECT * FROM sources_daily")}
    want = fold(ks.visits, lambda v: v.source_name)
    assert {s: {k: got[s][k] for k in ("visits", "visitors", "bounces")} for s in got} == want
    # Google: eight visits though their SPA pageviews repeat the referrer (24 pageviews)
    assert got["Google"]["visits"] == 8 and got["Google"]["pageviews"] == 24
    assert got["Direct"]["visits"] == 15 and got["Direct"]["visitors"] == 14
    # Bing (2 visitors), rare.example (1) and Sybil (5 client ids, one network) fold into (other)
    assert got["(other)"]["visits"] == 8 and "Sybil" not in got and "Bing" not in got
    assert sum(r["visits"] for r in got.values()) == 36
    utm = {r["utm_campaign"]: r["visits"] for r in q(store, "SELECT * FROM utm_campaigns_daily")}
    assert utm == {"spring": 5, "": 31}


def test_entry_and_exit_pages(known):
    store, _, ks = known
    entry = {r["entry_page"]: r for r in q(store, "SELECT * FROM entry_pages_daily")}
    exit_ = {r["exit_page"]: r for r in q(store, "SELECT * FROM exit_pages_daily")}
    assert {p: (r["visits"], r["visitors"], r["bounces"]) for p, r in entry.items()} == {
        p: (g["visits"], g["visitors"], g["bounces"]) for p, g in fold(ks.visits, lambda v: v.entry).items()}
    assert {p: r["visits"] for p, r in entry.items()} == {"/": 10, "/plans": 11, "/blog": 5, "(other)": 10}
    assert {p: r["visits"] for p, r in exit_.items()} == {"/quote": 13, "/plans": 12, "(other)": 11}
    assert entry["/plans"]["bounce_rate"] == round(11 / 11, 4)


def test_pages_with_time_on_page(known):
    store, _, ks = known
    pages = {r["path"]: r for r in q(store, "SELECT * FROM pages_daily")}
    plans = pages["/plans"]
    # pageviews and engagement both count GPC traffic, so their ratio is not biased
    assert plans["pageviews"] == 8 + 6 + 5 + 5 + 1 + 3 == 28
    eng = 8 * 80_000 + 6 * 30_000 + 60_000 + 90_000
    assert plans["engagement_ms"] == eng and plans["time_on_page_s"] == round(eng / 1000 / 28, 3)
    assert plans["visitors"] == 8 + 6 + 5 + 1 == 20
    assert "/rare-condition" not in pages and "/sybil" not in pages  # folded: one visitor; one network
    other = pages["(other)"]
    total = sum(len(v.pages) for v in ks.visits) + 3
    assert sum(r["pageviews"] for r in pages.values()) == total
    assert other["host"] == "(other)"


def test_transitions_are_the_click_stream(known):
    store, _, ks = known
    got = {(r["from_path"], r["to_path"]): r["transitions"] for r in q(store, "SELECT * FROM transitions_daily")}
    pairs = Counter(t for v in ks.visits for t in v.transitions())
    assert got[("/", "/plans")] == 8 and got[("/plans", "/quote")] == 13 and got[("/blog", "/blog/dental")] == 5
    assert sum(got.values()) == sum(pairs.values()) == 33
    # /faq -> /contact (1 visitor) and /rare-condition -> /plans (1) fold
    assert got[("(other)", "(other)")] == 2


def test_funnel_levels(known):
    store, _, ks = known
    rows = q(store, "SELECT * FROM funnel(steps = ['/', '/plans', '/quote', 'Signup'], since = '2025-11-28', "
                    "until = '2025-11-28') ORDER BY level")
    levels = [sum(v.funnel_level() >= n for v in ks.visits) for n in (1, 2, 3, 4)]
    assert levels == [10, 8, 8, 3]  # Bing's two visits stop at level 1
    assert [(r["level"], r["step"]) for r in rows] == [(1, "/"), (2, "/plans"), (3, "/quote"), (4, "Signup")]
    assert [r["visits"] for r in rows] == [10, 8, 8, 0]  # three signups are fewer than k: suppressed
    assert [r["suppressed"] for r in rows] == [0, 0, 0, 1]
    assert rows[1]["conversion_rate"] == 0.8
    assert q(store, "SELECT * FROM funnel(steps = ['/'], since = '2025-11-29', until = '2025-12-31')") == []
    at_three = q(store, "SELECT * FROM funnel(steps = ['/plans', '/quote'], since = '2025-11-28', "
                        "until = '2025-11-28') ORDER BY level")
    assert [r["visits"] for r in at_three] == [8 + 6 + 10 + 1, 8 + 5]


def test_goals_and_conversion_rate(known):
    store, settings, ks = known
    got = {r["goal"]: r for r in q(store, "SELECT * FROM goals_daily")}
    quote = sum("/quote" in [p for _, p in v.pages] for v in ks.visits)
    assert quote == 13 and got["Quote page"]["conversions"] == 13 and got["Quote page"]["visitors"] == 13
    assert got["Quote page"]["visits"] == 36 and got["Quote page"]["conversion_rate"] == round(13 / 36, 4)
    assert "Signup" not in got and got["(other)"]["conversions"] == 3  # three visitors: folded
    # with k = 3 the signup goal shows
    migrate.apply(store, settings.with_(min_group_visitors=3))
    try:
        got = {r["goal"]: r for r in q(store, "SELECT * FROM goals_daily")}
        assert got["Signup"]["conversions"] == 3 and got["Signup"]["conversion_rate"] == round(3 / 36, 4)
    finally:
        migrate.apply(store, settings)


def test_one_dimension_per_view_and_totals_add_up(known):
    store, _, ks = known
    total = sum(len(v.pages) for v in ks.visits) + 3
    countries = {r["country"]: r for r in q(store, "SELECT * FROM countries_daily")}
    assert set(countries) == {"US", "(other)"}  # Great Britain: two visitors, Iceland: one
    assert countries["(other)"]["visitors"] == 3
    for view in ("countries_daily", "regions_daily", "isps_daily", "browsers_daily", "browser_versions_daily",
                 "os_daily", "os_versions_daily", "devices_daily", "platforms_daily", "cities_daily"):
        rows = q(store, f"SELECT * FROM {view}")
        assert sum(r["pageviews"] for r in rows) == total, view
    # the country question keeps every US visitor although US regions, ISPs and devices differ
    us_visitors = {v.visitor for v in ks.visits if v.client["country"] == "US"}
    assert countries["US"]["visitors"] == len(us_visitors) == 27
    isps = {r["isp"]: r["asn"] for r in q(store, "SELECT * FROM isps_daily")}
    assert isps == {"Comcast Cable": 7922, "(other)": 0}  # GB (2 visitors) and IS (1) are small networks


def test_timeout_and_time_zone_are_settings(known):
    store, settings, _ = known
    try:
        migrate.apply(store, settings.with_(session_timeout_min=60, site_timezone="America/New_York"))
        # C's second visits come 45 minutes after the first: with a 60-minute timeout they are one visit
        assert store.query_rows("SELECT count() FROM visits")[0][0] == 36 - 5 - 1  # and vD1's two
        hours = {r["hour"] for r in q(store, "SELECT hour FROM traffic_hourly")}
        assert min(hours) == "2025-11-28 04:00:00"  # 09:00 UTC in New York
        with pytest.raises(ConfigError, match="SESSION_TIMEOUT_MIN"):
            migrate.apply(store, settings.with_(session_timeout_min=4))
        with pytest.raises(ConfigError, match="SITE_TIMEZONE"):
            migrate.apply(store, settings.with_(site_timezone="UTC'; DROP TABLE events; --"))
    finally:
        migrate.apply(store, settings)
    assert store.query_rows("SELECT count() FROM visits")[0][0] == 36

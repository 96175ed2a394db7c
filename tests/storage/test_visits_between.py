"""The parameterized visit views on real chDB: ``visits_between(since, until)`` and every
``<view>_between(since, until)`` give exactly the rows of ``visits`` and of the plain views for those
days, on the known traffic, on generated traffic, in another time zone, and on visits built to cross
the range's edges (a visit that started the day before, one that goes on after the range, an
engagement event long after the last pageview); the dashboard's panels read the twins and answer what
the plain views answer."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pytest

from collector.errors import QueryRefused
from collector.http import dashboard
from collector.storage import cluster, migrate
from collector.storage.store import Store
from collector.testing import make_settings
from loadtests import known_traffic as kt

SITE = "range.example"  # the visits built around the edges; the known and generated traffic are on kt.SITE
D = kt.DAY0  # 2025-11-28 00:00 UTC
DAY = "2025-11-28"
BEFORE, AFTER = "2025-11-27", "2025-11-29"


def ev(visitor: str, ts: float, name: str = "pageview", path: str = "/", **extra) -> dict:
    return {"event_id": str(uuid.uuid4()), "site": SITE,
            "ts": ts, "name": name, "visitor_id": visitor, "key_id": "k1", "network_id": "n" + visitor,
            "privacy": "standard", "host": SITE, "path": path, **extra}


EDGES = [
    # R1: 23:50 the day before, then 00:10: one visit of 20 minutes that started the day before
    ev("R1", D - 600, path="/a"), ev("R1", D + 600, path="/b"),
    # R2: a pageview at 23:00, the page hidden 80 minutes later (an engagement event never opens a visit),
    # then a pageview a minute after that in the same five-minute slice: all one visit from 23:00
    ev("R2", D - 3600, path="/c"), ev("R2", D + 1200, "engagement", "/c", engagement_ms=60_000),
    ev("R2", D + 1260, path="/d"),
    # R3: two visits on the day, the first through the funnel; R4: one visit; R5: the day after
    ev("R3", D + 36000, path="/"), ev("R3", D + 36060, path="/plans"), ev("R3", D + 36300, "Signup", "/plans"),
    ev("R3", D + 43200, path="/plans"),
    ev("R4", D + 39600, path="/"), ev("R4", D + 39700, path="/quote"),
    ev("R5", D + 86400 + 32400, path="/"), ev("R5", D + 86400 + 32500, path="/plans"),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("between") / "data", min_group_visitors=1)
    store = Store(settings.dsn)
    migrate.apply(store, settings)
    kt.insert_known(store)
    kt.insert_bulk(store, 20_000, days=4, start=D - 2 * 86400, chunk=10_000)
    store.insert_json("events", kt.encode(EDGES[:6]), token="edges:1")
    store.insert_json("events", kt.encode(EDGES[6:]), token="edges:2")
    yield store, settings
    store.close()


def q(store, sql: str) -> list[dict]:
    return [json.loads(x) for x in store.query_raw(sql, "JSONEachRow").decode().splitlines() if x]


def ordered(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


def same_rows(got: list[dict], want: list[dict]) -> bool:
    """The same rows, fractional values (averages, rounded to 3 decimals by the views) within one unit of
    their last place: the engine adds a group's values in no fixed order, which can move the rounding."""
    def key(r):
        return json.dumps({k: v for k, v in r.items() if not isinstance(v, float)}, sort_keys=True)

    if len(got) != len(want):
        return False
    def full(r):
        return key(r), json.dumps(r, sort_keys=True)

    for a, b in zip(sorted(got, key=full), sorted(want, key=full)):
        if key(a) != key(b) or a.keys() != b.keys():
            return False
        if any(abs(a[k] - b[k]) > 0.0011 for k in a if isinstance(a[k], float) or isinstance(b[k], float)):
            return False
    return True


RANGES = [(DAY, DAY), (BEFORE, BEFORE), (BEFORE, AFTER), ("2025-11-26", "2025-11-30"), ("2025-11-01", "2025-11-25"),
          ("2025-12-05", "2025-12-31")]


def test_the_horizon_is_a_pseudonym_lifetime():
    settings = make_settings("/tmp/unused")
    assert migrate.visit_horizon_s(settings) == 86400 + 48 * 3600 + 2 * 300
    assert migrate.visit_horizon_s(settings.with_(key_period_s=3600, clock_skew_s=60)) == 3600 + 48 * 3600 + 120


def test_visits_between_is_visits_of_its_days(env):
    store, _ = env
    total = 0
    for since, until in RANGES:
        want = q(store, f"SELECT * FROM visits WHERE toDate(start_ts) BETWEEN '{since}' AND '{until}'")
        got = q(store, f"SELECT * FROM visits_between(since = '{since}', until = '{until}')")
        assert ordered(got) == ordered(want), (since, until)
        total += len(got)
    assert total > 1000
    assert q(store, "SELECT count() AS n FROM visits_between(since = '2025-12-05', until = '2025-12-31')") == [{"n": 0}]


def test_every_twin_has_the_rows_of_its_plain_view(env):
    store, _ = env
    for view in sorted(dashboard.VISIT_VIEWS):
        day = "toDate(hour)" if view == "traffic_hourly" else "day"
        for since, until in RANGES[:4]:
            want = q(store, f"SELECT * FROM {view} WHERE {day} BETWEEN '{since}' AND '{until}'")
            got = q(store, f"SELECT * FROM {view}_between(since = '{since}', until = '{until}')")
            assert same_rows(got, want), (view, since, until, ordered(got), ordered(want))
            assert got or since == "2025-12-05", view


def test_the_same_in_another_time_zone(env):
    store, settings = env
    try:
        migrate.apply(store, settings.with_(site_timezone="Pacific/Kiritimati"))  # UTC+14
        for since, until in ((DAY, DAY), (BEFORE, BEFORE)):
            assert ordered(q(store, f"SELECT * FROM visits_between(since = '{since}', until = '{until}')")) == ordered(
                q(store, f"SELECT * FROM visits WHERE toDate(start_ts, 'Pacific/Kiritimati') BETWEEN '{since}' AND '{until}'"))
            for view in ("sources_daily", "traffic_daily", "traffic_hourly"):
                day = "toDate(hour)" if view == "traffic_hourly" else "day"
                assert ordered(q(store, f"SELECT * FROM {view}_between(since = '{since}', until = '{until}')")) == ordered(
                    q(store, f"SELECT * FROM {view} WHERE {day} BETWEEN '{since}' AND '{until}'")), view
        # there the 28th is 10:00 UTC on the 27th to 10:00 UTC on the 28th: R1 (23:50) and R2 (23:00) start on
        # it, R3 (10:00, 12:00), R4 (11:00) and R5 (09:00 on the 29th: 23:00 there) on the 29th
        def starts(day):
            got = q(store, f"SELECT visitor_id FROM visits_between(since = '{day}', until = '{day}') WHERE site = '{SITE}'")
            return sorted(r["visitor_id"] for r in got)

        assert (starts(BEFORE), starts(DAY), starts(AFTER)) == ([], ["R1", "R2"], ["R3", "R3", "R4", "R5"])
    finally:
        migrate.apply(store, settings)


def test_a_visit_that_started_the_day_before_and_goes_on_after_the_range(env):
    store, _ = env
    day_before = {r["visitor_id"]: r for r in q(
        store, f"SELECT visitor_id, start_ts, end_ts, duration_s, pageviews, entry_page, exit_page, pages "
               f"FROM visits_between(since = '{BEFORE}', until = '{BEFORE}') WHERE site = '{SITE}'")}
    assert set(day_before) == {"R1", "R2"}
    r1 = day_before["R1"]
    assert (r1["start_ts"], r1["end_ts"]) == ("2025-11-27 23:50:00.000", "2025-11-28 00:10:00.000")
    assert (r1["duration_s"], r1["pageviews"], r1["entry_page"], r1["exit_page"]) == (1200, 2, "/a", "/b")
    assert r1["pages"] == ["/a", "/b"]
    # the engagement 80 minutes later and the pageview after it belong to the visit of 23:00
    r2 = day_before["R2"]
    assert (r2["duration_s"], r2["pageviews"], r2["exit_page"], r2["pages"]) == (4860, 2, "/d", ["/c", "/d"])
    day = q(store, f"SELECT visitor_id, visit_no, pageviews FROM visits_between(since = '{DAY}', until = '{DAY}') "
                   f"WHERE site = '{SITE}' ORDER BY visitor_id, visit_no")
    assert [(r["visitor_id"], r["visit_no"], r["pageviews"]) for r in day] == [("R3", 1, 2), ("R3", 2, 1), ("R4", 1, 2)]


def test_traffic_transitions_and_funnel_over_a_range(env):
    store, _ = env
    traffic = {r["day"]: r for r in q(store, f"SELECT day, pageviews, visitors, visits, bounces, visit_duration_s "
                                             f"FROM traffic_daily_between(since = '{BEFORE}', until = '{DAY}') "
                                             f"WHERE site = '{SITE}'")}
    assert traffic[BEFORE] == {"day": BEFORE, "pageviews": 2, "visitors": 2, "visits": 2, "bounces": 0,
                               "visit_duration_s": (1200 + 4860) / 2}
    assert traffic[DAY] == {"day": DAY, "pageviews": 7, "visitors": 4, "visits": 3, "bounces": 1,
                            "visit_duration_s": round((300 + 0 + 100) / 3, 3)}
    pairs = {(r["from_path"], r["to_path"]): r["transitions"] for r in q(
        store, f"SELECT from_path, to_path, transitions FROM transitions_daily_between(since = '{BEFORE}', "
               f"until = '{BEFORE}') WHERE site = '{SITE}'")}
    assert pairs == {("/a", "/b"): 1, ("/c", "/d"): 1}  # the second pageviews are on the 28th, the visits on the 27th

    def funnel(since, until):
        return [(r["level"], r["visits"], r["visitors"], r["conversion_rate"], r["suppressed"]) for r in q(
            store, f"SELECT * FROM funnel(steps = ['/', '/plans', 'Signup'], since = '{since}', until = '{until}') "
                   f"WHERE site = '{SITE}' ORDER BY level")]

    assert funnel(DAY, DAY) == [(1, 2, 2, 1.0, 0), (2, 1, 1, 0.5, 0), (3, 1, 1, 0.5, 0)]
    assert funnel(BEFORE, DAY) == funnel(DAY, DAY)  # R1 and R2 never pass '/'
    assert funnel(DAY, AFTER) == [(1, 3, 3, 1.0, 0), (2, 2, 2, 0.6667, 0), (3, 1, 1, 0.3333, 0)]
    # R1's and R2's visits are the day's only ones: no visitor reaches a level, so every level reads suppressed
    assert funnel(BEFORE, BEFORE) == [(1, 0, 0, 0, 1), (2, 0, 0, 0, 1), (3, 0, 0, 0, 1)]


def _plain(sql: str) -> str:
    """The same statement over the plain views (their day and hour filters stay in it)."""
    return re.sub(r"\b(\w+)_between\(since = '[0-9-]+', until = '[0-9-]+'\)", r"\1", sql)


def test_dashboard_panels_answer_what_the_plain_views_answer(env):
    store, _ = env
    p = dashboard.Params(kt.SITE, dt.date(2025, 11, 27), dt.date(2025, 11, 29), 50, kt.FUNNEL)
    twins = 0
    for name in dashboard.PANELS:
        for params in (p, p.previous(), dashboard.Params(SITE, dt.date(2025, 11, 28), dt.date(2025, 11, 28), 50,
                                                         ("/", "/plans"))):
            sql, result = dashboard.run_panel(store, name, params)
            if "_between(" not in sql:
                continue
            twins += 1
            plain = store.run_sandboxed(_plain(sql), "analyst", "JSONCompact")
            assert dashboard.decode_json_compact(result.body)[2] == dashboard.decode_json_compact(plain.body)[2], name
    assert twins == 3 * 14  # summary, daily, hourly, the 9 visit breakdowns, goals, transitions


def test_analysts_call_the_twins_never_visits_between(env):
    store, _ = env
    body = store.run_sandboxed(f"SELECT sum(visits) FROM sources_daily_between(since = '{DAY}', until = '{DAY}') "
                               f"WHERE site = '{SITE}'", "analyst").body
    assert body == b"3\n"
    with pytest.raises(QueryRefused):
        store.run_sandboxed(f"SELECT count() FROM visits_between(since = '{DAY}', until = '{DAY}')", "analyst")
    assert store.run_sandboxed(f"SELECT count() FROM visits_between(since = '{DAY}', until = '{DAY}') "
                               f"WHERE site = '{SITE}'", "admin").body == b"3\n"


def test_the_cluster_builds_visits_between_on_every_shard():
    stmts = cluster.statements(make_settings("/tmp/unused"), "c1", "analytics")
    local = next(s for s in stmts if s.startswith("CREATE OR REPLACE VIEW `analytics`.visits_between_local ON"))
    assert "FROM visit_slices_local" in local and "{since:Date}" in local and "{until:Date}" in local
    dist = next(s for s in stmts if s.startswith("CREATE OR REPLACE VIEW `analytics`.visits_between ON"))
    assert dist.endswith("SELECT * FROM cluster('c1', view(SELECT * FROM `analytics`.visits_between_local"
                         "(since = {since:Date}, until = {until:Date})))")
    twin = next(s for s in stmts if s.startswith("CREATE OR REPLACE VIEW `analytics`.sources_daily_between ON"))
    assert "FROM visits_between(since = {since:Date}, until = {until:Date})" in twin

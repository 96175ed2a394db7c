"""Small groups under GPC traffic, and the bulk generator's traffic, on real chDB (each test its own
store: chDB opens one data path per process)."""

from __future__ import annotations

import json

from collector.storage import migrate
from collector.storage.store import Store
from collector.testing import make_settings
from loadtests import known_traffic as kt


def q(store, sql: str) -> list[dict]:
    return [json.loads(x) for x in store.query_raw(sql, "JSONEachRow").decode().splitlines() if x]


def test_gpc_events_never_make_a_group_visible(tmp_path):
    settings = make_settings(tmp_path / "data", min_group_visitors=2)
    store = Store(settings.dsn)
    try:
        migrate.apply(store, settings)
        rows = [kt.gpc_row(kt.DAY0 + 3600 + i, "/private") for i in range(10)]
        store.insert_json("events", kt.encode(rows), token="gpc")
        assert q(store, "SELECT path, pageviews FROM pages_daily") == [{"path": "(other)", "pageviews": 10}]
        assert q(store, "SELECT count() AS n FROM visits") == [{"n": 0}]
        t = q(store, "SELECT pageviews, visitors, visits FROM traffic_daily")
        assert t == [{"pageviews": 10, "visitors": 0, "visits": 0}]
    finally:
        store.close()


def test_bulk_generator_feeds_consistent_views(tmp_path):
    settings = make_settings(tmp_path / "data")
    store = Store(settings.dsn)
    try:
        migrate.apply(store, settings)
        n = kt.insert_bulk(store, 20_000, days=3, chunk=10_000)
        assert 15_000 <= n <= 30_000
        visits = store.query_rows("SELECT count(), sum(bounce) FROM visits")[0]
        assert visits[0] > 1000
        for view in ("sources_daily", "entry_pages_daily", "utm_sources_daily"):
            assert store.query_rows(f"SELECT sum(visits), sum(bounces) FROM {view}")[0] == visits, view
        pv = store.query_rows("SELECT countIf(name = 'pageview') FROM events")[0][0]
        assert store.query_rows("SELECT sum(pageviews) FROM traffic_daily")[0][0] == pv
        assert store.query_rows("SELECT sum(pageviews) FROM countries_daily")[0][0] == pv
        assert store.query_rows("SELECT sum(visits) FROM traffic_daily")[0][0] == visits[0]
    finally:
        store.close()

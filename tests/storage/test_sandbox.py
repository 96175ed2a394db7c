"""The SQL sandbox on real chDB: the escape corpus is refused for both roles, the documented queries
run, limits come back as 4xx errors, and a slow query never holds the loader back."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from collector.errors import CollectorError, QueryBusy, QueryLimit, QueryRefused
from collector.storage import migrate, sandbox
from collector.storage.sandbox import Limits, Role
from collector.storage.store import Store
from collector.testing import make_settings

CORPUS = Path(__file__).with_name("sql_escapes.sql")
NOW = int(time.time()) - 3600
SECRET = "KEYMATERIAL-6b1f0c"  # what the key file holds; no answer may contain it


def escapes(data_dir: Path) -> list[str]:
    text = CORPUS.read_text().replace("KEYFILE", str(data_dir / "keys" / "*.key")).replace("DATADIR", str(data_dir))
    out = []
    for chunk in text.split("\n-- next\n"):
        lines = [ln for ln in chunk.splitlines() if ln.strip() and not ln.startswith("-- ")]
        if lines:
            out.append("\n".join(lines))
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("sandbox")
    data = root / "data"
    settings = make_settings(data, min_group_visitors=1)
    (data / "keys").mkdir(parents=True, exist_ok=True)
    (data / "keys" / "visitor.key").write_text(SECRET)
    store = Store(f"chdb://{data}/clickhouse?database=analytics", "analytics",
                  sandbox_limits={Role.ANALYST: Limits(max_execution_time=2, max_result_rows=1000, queue_seconds=0.2),
                                  Role.ADMIN: Limits(max_execution_time=2, max_result_rows=1000, queue_seconds=0.2)})
    migrate.apply(store, settings)
    rows = "\n".join(json.dumps({"site": "example.org", "ts": NOW + i * 60, "name": "pageview",
                                 "host": "example.org", "path": f"/p{i % 3}", "visitor_id": f"v{i % 5}",
                                 "member_id": ""}) for i in range(30))
    store.insert_json("events", rows.encode(), "seed-1")
    yield store, data
    store.close()


def test_corpus_is_large_and_covers_the_review():
    text = CORPUS.read_text()
    assert len(escapes(Path("/d"))) >= 60
    for needle in ("file(", "url(", "s3(", "hdfs(", "remote(", "remoteSecure(", "cluster(", "executable(",
                   "input(", "mysql(", "postgresql(", "jdbc(", "odbc(", "sqlite(", "azureBlobStorage(",
                   "dictGet", "joinGet", "sleepEachRow", "INTO OUTFILE", "SETTINGS", "SET ", "system.",
                   "INFORMATION_SCHEMA", "CREATE", "INSERT", "ALTER", "OPTIMIZE", "KILL", "SYSTEM ", "GRANT",
                   "ATTACH", "EXPLAIN", "SHOW", "DESCRIBE", "EXISTS", "USE ", "; ", "FORMAT", "`", '"',
                   "/*", "WITH ", "UNION", "JOIN", "view(", "merge(", "numbers(", "arrayMap", "x ->"):
        assert needle in text, needle


@pytest.mark.parametrize("role", [Role.ANALYST, Role.ADMIN])
def test_every_escape_attempt_is_refused(env, role):
    store, data = env
    for sql in escapes(data):
        with pytest.raises(QueryRefused):  # by the parse-tree check alone, before anything runs
            store.check_sandboxed(sql, role)
        with pytest.raises(QueryRefused) as info:
            result = store.run_sandboxed(sql, role, "TabSeparated")
            assert SECRET.encode() not in result.body, sql  # pragma: no cover - shown only on a failure
        assert info.value.status == 403, sql
        assert SECRET not in info.value.message
    # the engine is unharmed: nothing was created, dropped or written
    assert not list(data.glob("x*")) and not list(Path.cwd().glob("x.pth"))
    assert store.query_rows("SELECT count() FROM events")[0][0] == 30


ADMIN_ONLY = [
    "SELECT * FROM events",
    "SELECT member_id FROM member_events",
    "SELECT * FROM consent_ledger",
    "SELECT * FROM schema_migrations",
    "SELECT * FROM analytics.events",
    "SELECT count() FROM pages_daily WHERE path IN events",
    "SELECT count() FROM pages_daily WHERE path IN (SELECT path FROM events)",
    "SELECT path FROM pages_daily UNION ALL SELECT path FROM member_events",
    "SELECT p.path FROM pages_daily AS p JOIN member_events AS m ON p.path = m.path",
    # a WITH name never covers the table of the same name inside its own body or outside its scope
    "WITH member_events AS (SELECT * FROM member_events) SELECT * FROM member_events",
    "SELECT * FROM (WITH member_events AS (SELECT 1) SELECT * FROM member_events) AS a, member_events",
    "WITH x AS (SELECT * FROM pages_daily) SELECT * FROM x WHERE 1 IN (SELECT 1 FROM events)",
    "SELECT (SELECT count() FROM events)",
]


def test_analyst_reads_only_the_views(env):
    store, _ = env
    for sql in ADMIN_ONLY:
        with pytest.raises(QueryRefused):
            store.run_sandboxed(sql, Role.ANALYST)
        store.check_sandboxed(sql, Role.ADMIN)
    assert store.run_sandboxed("SELECT count() FROM events", Role.ADMIN).body == b"30\n"
    assert store.run_sandboxed("SELECT count() FROM analytics.member_events", "admin").body == b"0\n"


def test_views_come_from_the_views_file():
    text = (migrate.MIGRATIONS / "R_views.sql").read_text()
    views = sandbox.analyst_views()
    assert "pages_daily" in views and "searches_daily" in views
    assert all(f"VIEW {v}" in text for v in views)
    assert text.count("CREATE OR REPLACE VIEW") == len(views)
    assert "events" not in views and "member_events" not in views
    assert {"events", "member_events", "consent_ledger", "schema_migrations", *views} <= set(sandbox.admin_tables())


DOCUMENTED = [
    "SELECT day, path, pageviews, visitors FROM pages_daily ORDER BY day DESC LIMIT 20",
    "SELECT path, sum(pageviews) AS views, max(visitors) FROM pages_daily GROUP BY path ORDER BY views DESC",
    "WITH top AS (SELECT path, sum(pageviews) AS v FROM pages_daily GROUP BY path) "
    "SELECT path, v, round(v / (SELECT sum(v) FROM top), 3) AS share FROM top ORDER BY v DESC",
    "select day, countIf(pageviews > 1), uniqExact(path), quantile(0.5)(visitors) from pages_daily group by day",
    "SELECT p.day, p.path, e.events FROM pages_daily AS p LEFT JOIN events_daily AS e ON p.day = e.day AND p.site = e.site",
    "SELECT path FROM pages_daily WHERE path IN (SELECT path FROM pages_daily WHERE visitors > 0) AND path LIKE '/p%'",
    "SELECT toStartOfWeek(day) AS w, arrayStringConcat(groupArray(path), ',') FROM pages_daily GROUP BY w",
    "SELECT path, row_number() OVER (ORDER BY pageviews DESC) AS r FROM pages_daily",
    "SELECT `path`, \"visitors\" FROM pages_daily /* a comment */ -- and another\n LIMIT 5",
    "SELECT arrayMap(x -> x * 2, [1, 2, 3]), tupleElement((1, 'a'), 2), map('k', 1)['k'], toString(now()) != ''",
    "SELECT JSONExtractString('{\"a\": \"b\"}', 'a'), cityHash64('x') > 0, multiIf(1 > 2, 'a', 'b'), CAST(1 AS String)",
    "SELECT path FROM pages_daily UNION ALL SELECT search_term FROM searches_daily",
]


def test_documented_queries_run(env):
    store, _ = env
    for sql in DOCUMENTED:
        for role in Role:
            store.run_sandboxed(sql, role)
    out = store.run_sandboxed("SELECT day, path, pageviews, visitors FROM pages_daily ORDER BY path LIMIT 20 "
                              "FORMAT JSONEachRow", Role.ANALYST)
    rows = [json.loads(x) for x in out.body.decode().splitlines()]
    assert out.format == "JSONEachRow"
    assert rows and set(rows[0]) == {"day", "path", "pageviews", "visitors"}
    assert sum(r["pageviews"] for r in rows) == 30  # every seeded pageview, in visible or folded groups
    assert store.run_sandboxed("SELECT count() FROM pages_daily", Role.ANALYST, "JSON").format == "JSON"
    assert b'"c":' in store.run_sandboxed("SELECT count() AS c FROM pages_daily", "analyst", "JSONEachRow").body


def test_format_is_allow_listed(env):
    store, _ = env
    with pytest.raises(QueryRefused):
        store.run_sandboxed("SELECT 1", Role.ANALYST, "Template")
    with pytest.raises(QueryRefused):
        store.run_sandboxed("SELECT 1 FORMAT TabSeparatedRawWithNames; SELECT 2", Role.ANALYST)
    # FORMAT is taken off the statement and handed to the driver; the rest is checked as usual
    checked = store.check_sandboxed("SELECT count() FROM pages_daily FORMAT CSV", Role.ANALYST)
    assert checked.format == "CSV" and "FORMAT" not in checked.sql.upper()


def test_long_and_deep_queries_are_refused(env):
    store, _ = env
    for sql in ("SELECT " + "(" * 5000 + "1" + ")" * 5000,
                "SELECT " + " + ".join(["1"] * 40000),
                "SELECT 1 FROM pages_daily WHERE path IN (" + ", ".join(f"'{i}'" for i in range(20000)) + ")",
                "SELECT " + "arrayMap(x -> " * 400 + "x" + ", [1])" * 400):
        with pytest.raises(QueryRefused):
            store.run_sandboxed(sql, Role.ANALYST)


def test_limits_are_4xx_errors(env):
    store, _ = env
    with pytest.raises(QueryLimit) as info:  # more rows than the role may receive
        store.run_sandboxed("SELECT arrayJoin(range(5000)) FROM pages_daily", Role.ANALYST)
    assert 400 <= info.value.status < 500
    with pytest.raises(QueryLimit):  # more memory than the role may use
        store.run_sandboxed("SELECT length(groupArray(repeat('x', 100000))) FROM pages_daily "
                            "ARRAY JOIN range(10000) AS i", Role.ANALYST)
    # the session's limits cannot be changed from SQL, even if the parse check let it through
    assert store.run_sandboxed("SELECT getSetting('readonly'), getSetting('max_execution_time')",
                               Role.ANALYST).body == b"1\t2\n"


SLOW = ("WITH r AS (SELECT arrayJoin(range(3000)) AS x FROM pages_daily LIMIT 3000) "
        "SELECT count() FROM r AS a, r AS b, r AS c WHERE cityHash64(a.x, b.x, c.x) % 7 = 1")


def test_a_slow_query_is_cut_and_never_blocks_inserts(env):
    store, _ = env
    done = threading.Event()
    outcome: dict = {}

    def slow():
        t0 = time.monotonic()
        try:
            store.run_sandboxed(SLOW, Role.ANALYST)
        except CollectorError as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - t0
        done.set()

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.3)
    inserted_while_running = []
    for i in range(5):
        store.insert_json("events", json.dumps({"site": "example.org", "ts": NOW, "name": "pageview",
                                                "path": "/slow", "visitor_id": "vx"}).encode(), f"slow-{i}")
        inserted_while_running.append(not done.is_set())
    busy = None
    try:  # the role's connection is taken: a second analyst query is turned away, not queued forever
        store.run_sandboxed("SELECT 1", Role.ANALYST)
    except QueryBusy as exc:
        busy = exc
    worker.join(30)
    assert all(inserted_while_running), "an insert waited for the analyst query"
    assert isinstance(outcome.get("error"), QueryLimit), outcome
    assert busy is not None and busy.status == 429
    assert store.query_rows("SELECT count() FROM events WHERE path = '/slow'")[0][0] == 5
    # the admin's connection is its own, and the analyst's is usable again afterwards
    assert store.run_sandboxed("SELECT 1", Role.ADMIN).body == b"1\n"
    assert store.run_sandboxed("SELECT 1", Role.ANALYST).body == b"1\n"


def test_functions_are_deny_by_default(env):
    store, _ = env
    store.check_sandboxed("SELECT 1", Role.ANALYST)
    fns = store._functions  # the engine's own list, read through the sandbox connection
    assert fns.allowed("count") and fns.allowed("COUNT") and fns.allowed("uniqExactIf")
    assert fns.allowed("quantilesMergeState") and fns.allowed("toStartOfHour") and fns.allowed("lambda")
    for name in ("file", "FILE", "sleep", "sleepEachRow", "dictGet", "dictGetString", "joinGet", "url",
                 "s3", "remote", "getServerSetting", "aiGenerate", "hostName", "version", "no_such_function",
                 "fileIf", "sleepEachRowIf", "addressToLine", "__getScalar", "formatQuery", "parseQueryToJSON"):
        assert not fns.allowed(name), name


def test_parameterized_views_are_callable_and_only_they(env):
    store, _ = env
    sql = ("SELECT level, step, visits FROM funnel(steps = ['/', '/plans'], since = toDate('2026-01-01'), "
           "until = toDate('2027-01-01')) FORMAT JSONEachRow")
    for role in ("analyst", "admin"):
        assert store.run_sandboxed(sql, role, "TSV").format == "JSONEachRow"
    from collector.storage import sandbox

    assert "funnel" in sandbox.parameterized_views() and "pages_daily" not in sandbox.parameterized_views()


def test_a_failed_query_leaves_nothing_for_the_next_one(env):
    """A statement that fails after its output started (a JSON header, rows before a limit) must not
    leave those bytes on the role's connection: chDB would hand them out ahead of the next answer, and
    the next check would read them as the parse tree ("the query is nested too deeply")."""
    store, _ = env
    heavy = "SELECT length(groupArray(repeat('x', 100000))) FROM pages_daily ARRAY JOIN range(10000) AS i"
    count = store.run_sandboxed("SELECT count() FROM pages_daily", Role.ANALYST).body
    pageviews = store.run_sandboxed("SELECT sum(pageviews) AS n FROM pages_daily", Role.ANALYST, "JSONCompact").body
    assert int(json.loads(pageviews)["data"][0][0]) in (30, 35)  # the seed, and the slow test's rows
    for fmt in ("JSONCompact", "JSON", "CSVWithNames", "TabSeparated"):
        with pytest.raises(QueryLimit):
            store.run_sandboxed(heavy, Role.ANALYST, fmt)
        with pytest.raises(QueryLimit):  # more rows than the role may receive, after some were written
            store.run_sandboxed("SELECT arrayJoin(range(5000)) FROM pages_daily", Role.ANALYST, fmt)
        for _ in range(3):
            assert store.run_sandboxed("SELECT count() FROM pages_daily", Role.ANALYST).body == count
            body = store.run_sandboxed("SELECT sum(pageviews) AS n FROM pages_daily", Role.ANALYST, "JSONCompact").body
            assert json.loads(body)["data"] == json.loads(pageviews)["data"]
    # an engine error on the statement (not a limit) is followed by clean answers too
    with pytest.raises(CollectorError):
        store.run_sandboxed("SELECT no_such_column FROM pages_daily", Role.ANALYST, "JSON")
    assert store.check_sandboxed("SELECT 1", Role.ANALYST).sql == "SELECT 1"
    # the fresh connection carries the role's limits
    assert store.run_sandboxed("SELECT getSetting('readonly'), getSetting('max_execution_time')",
                               Role.ANALYST).body == b"1\t2\n"

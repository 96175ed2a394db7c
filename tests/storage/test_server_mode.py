"""Server mode, proven over HTTP: ``collector serve`` with an ``http://`` DSN against the ClickHouse HTTP
fixture (``collector.testing_clickhouse``, real chDB behind ClickHouse's HTTP interface), through
clickhouse-connect's HTTP client: migrations, ingest, erasure, the analyst views and the sandbox, and
the fault drills (server errors, a connection dropped mid-insert, a slow server, a retried insert
deduplicated by its token)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from collector.testing import ROOT, CollectorProcess
from collector.testing_clickhouse import ClickHouseHTTP
from tests.faults.harness import (Ledger, Load, assert_exactly_once, assert_quiescent_conservation, fault_settings,
                                  metrics, send_batch, stored_markers, wait_for)
from tests.privacy.test_forget_inventory import link_and_consent

REF = "MBR0000333"


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "collector", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def start(tmp_path, **overrides):
    server = ClickHouseHTTP(tmp_path / "clickhouse").start()
    settings = fault_settings(tmp_path / "data", clickhouse_dsn=server.dsn(), **overrides)
    return server, CollectorProcess(settings, tmp_path).start()


def server_count(server: ClickHouseHTTP, sql: str) -> int:
    return int(server.query(sql).strip())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp("server_mode")
    server, proc = start(d)
    yield server, proc
    try:
        assert proc.stop() == 0
    finally:
        server.stop()


def test_migrations_run_on_the_server(served):
    server, proc = served
    from collector.storage import migrate

    assert server_count(server, "SELECT count() FROM schema_migrations") == len(migrate.migrations())
    tables = set(server.query("SELECT name FROM system.tables WHERE database = 'analytics'").split())
    assert {"events", "member_events", "visit_slices", "visit_slices_mv", "visits", "pages_daily", "funnel"} <= tables
    assert not (proc.settings.data_dir / "clickhouse").exists()  # nothing embedded
    assert "ClickHouse over HTTP" in proc.log_path.read_text()


def test_ingest_lands_on_the_server_exactly_once(served):
    server, proc = served
    ledger = Ledger()
    with httpx.Client() as c:
        for _ in range(20):
            assert send_batch(c, proc.url, ledger, "ing") == 202
    proc.flush()
    stored = assert_exactly_once(proc, ledger)
    assert len(stored) == len(ledger.acked) == 200
    assert server_count(server, "SELECT count() FROM events WHERE startsWith(props['m'], 'ing')") == 200
    assert server.stats()["inserts"] >= 1


def test_analyst_views_and_the_sandbox_over_http(served):
    server, proc = served
    ledger = Ledger()
    with httpx.Client() as c:
        send_batch(c, proc.url, ledger, "view")
    proc.flush()
    analyst = (proc.settings.data_dir / "analyst.token").read_text().strip()
    r = proc.internal("POST", "/api/query", token=analyst,
                      json={"sql": "SELECT sum(pageviews) AS pv FROM pages_daily", "format": "JSONEachRow"})
    assert r.status_code == 200, r.text
    assert int(json.loads(r.text)["pv"]) == server_count(server, "SELECT count() FROM events WHERE name = 'pageview'")
    visits = proc.internal("POST", "/api/query", token=analyst,
                           json={"sql": "SELECT sum(visits) AS v FROM traffic_daily", "format": "JSONEachRow"})
    assert visits.status_code == 200 and int(json.loads(visits.text)["v"]) >= 1
    # the analyst cannot read the raw plane, nor reach files or settings, on a server either
    for sql in ("SELECT visitor_id FROM events", "SELECT * FROM file('/etc/passwd')", "SET readonly = 0",
                "SELECT * FROM url('http://127.0.0.1/', CSV, 'a String')"):
        refused = proc.internal("POST", "/api/query", token=analyst, json={"sql": sql})
        assert refused.status_code == 403, (sql, refused.text)
    # the limits ride with every query to the server
    slow = proc.internal("POST", "/api/query", token=analyst,
                         json={"sql": "SELECT count() FROM pages_daily, numbers(10000000000) AS n"})
    assert slow.status_code in (403, 422), slow.text
    out = cli(proc.env, "query", "--format", "TSV", "SELECT count() FROM events")
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == server_count(server, "SELECT count() FROM events")


def test_forget_erases_on_the_server(served):
    server, proc = served
    link_and_consent(proc, REF)
    proc.flush()
    assert server_count(server, "SELECT count() FROM member_events") >= 2
    out = cli(proc.env, "forget", "--site", "example.org", "--member-ref", REF)
    assert out.returncode == 0, out.stderr
    assert "member_events: 2 removed" in out.stdout and "consent_ledger: 1 removed" in out.stdout
    wait_for(lambda: server_count(server, "SELECT count() FROM member_events") == 0, 30,
             what="the deletion on the server")
    assert server_count(server, "SELECT count() FROM consent_ledger") == 0
    assert server_count(server, "SELECT count() FROM erasures") == 1


def test_server_errors_then_recovery(tmp_path):
    server, proc = start(tmp_path)
    try:
        server.faults(fail=6, code=210, only="insert")  # NETWORK_ERROR, HTTP 500
        ledger = Ledger()
        with Load(proc.url, ledger, "err", threads=2, pause_s=0.02):
            wait_for(lambda: server.stats()["failed"] >= 6, 60, what="the injected errors")
        assert ledger.acked and not ledger.refused
        c = assert_quiescent_conservation(proc)
        assert c["accepted"] == len(ledger.acked)
        assert len(assert_exactly_once(proc, ledger)) == len(ledger.acked)
        assert metrics(proc)["collector_storage_healthy"] == 1
        assert "cannot" in proc.log_path.read_text().lower() or "fail" in proc.log_path.read_text().lower()
    finally:
        assert proc.stop() == 0
        server.stop()


@pytest.mark.parametrize("apply", [True, False])
def test_connection_dropped_mid_insert(tmp_path, apply):
    """The server reads the whole insert, (applies it,) and closes the connection without answering:
    the loader cannot know, retries the same batch with the same token, and the server keeps one copy."""
    server, proc = start(tmp_path)
    try:
        ledger = Ledger()
        server.faults(drop=3, apply=apply)
        with Load(proc.url, ledger, "drop", threads=2, pause_s=0.02):
            wait_for(lambda: server.stats()["dropped"] >= 3, 60, what="three dropped inserts")
        c = assert_quiescent_conservation(proc)
        stored = assert_exactly_once(proc, ledger)
        assert len(stored) == len(ledger.acked) == c["accepted"]
        total = server_count(server, "SELECT count() FROM events")
        assert total == len(ledger.acked)  # no duplicate row on the server: the retried blocks were dropped
    finally:
        assert proc.stop() == 0
        server.stop()


def test_retried_insert_is_deduplicated_by_its_token(tmp_path):
    """The same block under the same token, twice over HTTP: ClickHouse keeps one; another token is new."""
    from collector.storage.store import Store

    server = ClickHouseHTTP(tmp_path / "clickhouse").start()
    store = Store(server.dsn("dedup"))
    try:
        store.command("CREATE TABLE t (x UInt32) ENGINE = MergeTree ORDER BY x "
                      "SETTINGS non_replicated_deduplication_window = 100")
        rows = b'{"x": 1}\n{"x": 2}\n{"x": 3}'
        store.insert_json("t", rows, "7:0:100:t")
        store.insert_json("t", rows, "7:0:100:t")
        assert store.query_rows("SELECT count() FROM t")[0][0] == 3
        store.insert_json("t", rows, "7:100:200:t")
        assert store.query_rows("SELECT count() FROM t")[0][0] == 6
    finally:
        store.close()
        server.stop()


def test_slow_server_does_not_slow_the_beacons(tmp_path):
    server, proc = start(tmp_path)
    try:
        server.faults(delay_s=2.0, delay_count=6)
        ledger = Ledger()
        latencies = []
        with httpx.Client(timeout=5) as c:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                t = time.monotonic()
                assert send_batch(c, proc.url, ledger, "slow") == 202
                latencies.append(time.monotonic() - t)
                time.sleep(0.02)
        latencies.sort()
        assert latencies[len(latencies) // 2] < 0.2 and latencies[-1] < 1.5, latencies[-5:]
        c = assert_quiescent_conservation(proc)
        assert len(assert_exactly_once(proc, ledger)) == len(ledger.acked) == c["accepted"]
    finally:
        assert proc.stop() == 0
        server.stop()


def test_fixture_speaks_clickhouse_http(tmp_path):
    """What clickhouse-connect relies on: /ping, SELECT 1 by GET, the headers, the codes and statuses."""
    server = ClickHouseHTTP(tmp_path / "clickhouse").start()
    try:
        auth = (server.user, server.password)
        assert httpx.get(server.url + "/ping").text == "Ok.\n"
        r = httpx.get(server.url + "/", params={"query": "SELECT 1"}, auth=auth)
        assert r.status_code == 200 and r.text == "1\n"
        assert r.headers["X-ClickHouse-Format"] == "TabSeparated" and r.headers["X-ClickHouse-Query-Id"]
        assert json.loads(r.headers["X-ClickHouse-Summary"])["read_rows"] == "1"
        assert r.headers["X-ClickHouse-Timezone"] == "UTC" and r.headers["X-ClickHouse-Server-Display-Name"]
        bad = httpx.post(server.url + "/", content=b"SELEC 1", auth=auth)
        assert bad.status_code == 400 and bad.headers["X-ClickHouse-Exception-Code"] == "62"
        assert bad.text.startswith("Code: 62. DB::Exception:") and "(SYNTAX_ERROR)" in bad.text
        missing = httpx.post(server.url + "/", content=b"SELECT * FROM nope", auth=auth)
        assert missing.status_code == 404 and missing.headers["X-ClickHouse-Exception-Code"] == "60"
        denied = httpx.get(server.url + "/", params={"query": "SELECT 1"}, auth=("collector", "wrong"))
        assert denied.status_code == 403 and denied.headers["X-ClickHouse-Exception-Code"] == "516"
        ro = httpx.get(server.url + "/", params={"query": "CREATE TABLE x (a UInt8) ENGINE = Memory"}, auth=auth)
        assert ro.status_code == 403 and ro.headers["X-ClickHouse-Exception-Code"] == "164"
        # settings as URL parameters apply to the query and only to it
        r = httpx.get(server.url + "/", params={"query": "SELECT getSetting('max_threads')", "max_threads": "3"},
                      auth=auth)
        assert r.text == "3\n"
        assert httpx.get(server.url + "/", params={"query": "SELECT getSetting('max_threads') = 3"}, auth=auth
                         ).text == "0\n"
        r = httpx.get(server.url + "/", params={"query": "SELECT {n:UInt8} + 1", "param_n": "41"}, auth=auth)
        assert r.text == "42\n"
        r = httpx.get(server.url + "/", params={"query": "SELECT 1 AS a", "default_format": "JSONEachRow"}, auth=auth)
        assert r.text == '{"a":1}\n' and r.headers["X-ClickHouse-Format"] == "JSONEachRow"
        # a compressed insert body, as clickhouse-connect sends it (lz4 frame), and gzip
        import gzip

        import lz4.frame

        httpx.post(server.url + "/", content=b"CREATE TABLE default.c (a UInt8) ENGINE = MergeTree ORDER BY a",
                   auth=auth).raise_for_status()
        for enc, data in (("lz4", lz4.frame.compress(b'{"a":1}\n')), ("gzip", gzip.compress(b'{"a":2}\n'))):
            r = httpx.post(server.url + "/", params={"query": "INSERT INTO default.c FORMAT JSONEachRow"},
                           content=data, headers={"Content-Encoding": enc}, auth=auth)
            assert r.status_code == 200, r.text
        assert server.query("SELECT groupArray(a) FROM (SELECT a FROM c ORDER BY a)", "default") == "[1,2]\n"
        server.faults(fail=1, code=252, status=500)
        r = httpx.get(server.url + "/", params={"query": "SELECT 1"}, auth=auth)
        assert r.status_code == 500 and r.headers["X-ClickHouse-Exception-Code"] == "252"
        assert "(TOO_MANY_PARTS)" in r.text
        assert httpx.get(server.url + "/", params={"query": "SELECT 1"}, auth=auth).status_code == 200
    finally:
        server.stop()

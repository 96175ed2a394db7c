"""The cluster schema (``collector schema --cluster NAME``): every statement parses in ClickHouse's own
parser, every table is a replicated local table with a Distributed table over it whose sharding key keeps
a visitor's and a member's rows on one shard, and the visit views work per shard."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from collector.storage import cluster, migrate
from collector.storage.store import Store
from collector.testing import ROOT, make_settings


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    store = Store(f"chdb://{tmp_path_factory.mktemp('parser')}/clickhouse?database=analytics", "analytics")
    yield store
    store.close()


@pytest.fixture
def parser(engine):
    return lambda sql: engine.query_rows("SELECT formatQuerySingleLine({q:String})", {"q": sql})[0][0]


def printed(tmp_path, *args) -> list[str]:
    env = {"COLLECTOR_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "collector", "schema", *args], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith(";\n\n")
    return [s.strip() for s in out.stdout.split(";\n\n") if s.strip()]


def test_every_cluster_statement_parses_and_is_on_the_cluster(tmp_path, parser):
    digest = "ab" * 32
    stmts = printed(tmp_path, "--cluster", "analytics_cluster", "--roles", "--analyst-password-sha256", digest)
    assert len(stmts) > 100
    for stmt in stmts:
        formatted = parser(stmt)
        assert formatted.split()[0] == stmt.split()[0], stmt[:120]
        assert "ON CLUSTER analytics_cluster" in formatted, stmt[:120]
    assert "GRANT ON CLUSTER analytics_cluster REMOTE ON *.* TO collector_view_definer" in map(parser, stmts)


def test_every_plain_statement_parses(tmp_path, parser):
    stmts = printed(tmp_path, "--roles")
    names = set()
    for stmt in stmts:
        assert parser(stmt).split()[0] == stmt.split()[0]
        m = re.match(r"CREATE (?:TABLE|MATERIALIZED VIEW|OR REPLACE VIEW) (?:IF NOT EXISTS )?(\w+)", stmt)
        if m:
            names.add(m.group(1))
    assert {"events", "member_events", "visit_slices", "visit_slices_mv", "visits", "pages_daily"} <= names
    assert any(s.startswith("GRANT SELECT ON `analytics`.`pages_daily` TO `collector_analyst`") for s in stmts)


def test_tables_are_replicated_and_distributed_with_person_local_sharding(tmp_path):
    stmts = cluster.statements(make_settings(tmp_path / "data"), "c1", "analytics")
    local = {m.group(1): s for s in stmts
             if (m := re.match(r"CREATE TABLE IF NOT EXISTS `analytics`\.(\w+)_local ON CLUSTER", s))}
    dist = {m.group(1): s for s in stmts
            if (m := re.match(r"CREATE TABLE IF NOT EXISTS `analytics`\.(\w+) ON CLUSTER `c1` AS", s))}
    assert set(local) == set(dist) == set(cluster.SHARDING_KEYS)
    for name, stmt in local.items():
        assert re.search(rf"ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/{{shard}}/{{database}}/{name}_local', "
                         r"'{replica}'", stmt), stmt
        assert "non_replicated" not in stmt and "replicated_deduplication_window = 10000" in stmt
    assert "ReplicatedAggregatingMergeTree" in local["visit_slices"]
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/goals_local', '{replica}', created_at)" \
        in local["goals"]
    for name, stmt in dist.items():
        assert f"Distributed('c1', 'analytics', '{name}_local', {cluster.SHARDING_KEYS[name]})" in stmt
    # a visitor's events and slices share a shard; a member's events and consent rows share a shard
    assert "visitor_id" in cluster.SHARDING_KEYS["events"] and "visitor_id" in cluster.SHARDING_KEYS["visit_slices"]
    assert cluster.SHARDING_KEYS["member_events"] == cluster.SHARDING_KEYS["consent_ledger"]
    assert not any("rand()" in k for k in cluster.SHARDING_KEYS.values())  # a retried batch splits the same way
    # the visit slices are built per shard from the shard's own events
    mv = next(s for s in stmts if s.startswith("CREATE MATERIALIZED VIEW"))
    assert "TO `analytics`.visit_slices_local" in mv and "FROM events_local" in mv and "FROM events\n" not in mv
    visits_local = next(s for s in stmts if s.startswith("CREATE OR REPLACE VIEW `analytics`.visits_local"))
    assert "FROM visit_slices_local" in visits_local and "FROM visit_slices\n" not in visits_local
    visits = next(s for s in stmts if s.startswith("CREATE OR REPLACE VIEW `analytics`.visits ON"))
    assert "cluster('c1', 'analytics', 'visits_local')" in visits
    # every migration's backfill is left out; ALTERs reach the local and the distributed table
    assert not any(s.startswith("INSERT") for s in stmts)
    alters = [s for s in stmts if s.startswith("ALTER TABLE")]
    assert alters and {a.split()[2] for a in alters} == {"`analytics`.events_local", "`analytics`.events"}


def test_the_sharding_key_computes_and_keeps_a_visitor_on_one_shard(engine, tmp_path):
    """The keys are real ClickHouse expressions over the tables' columns: evaluate them on rows."""
    store = engine
    if True:
        for stmt in migrate.migrations()[0].statements(migrate._params(make_settings(tmp_path / "d"))):
            store.command(stmt)
        store.command("INSERT INTO events (event_id, site, visitor_id, ts) SELECT generateUUIDv4(), 'example.org', "
                      "if(number % 10 = 0, '', concat('v', toString(number % 7))), now64(3) FROM numbers(700)")
        key = cluster.SHARDING_KEYS["events"]
        rows = store.query_rows(f"SELECT visitor_id, uniqExact(({key}) % 4) FROM events GROUP BY visitor_id")
        assert all(n == 1 for v, n in rows if v), rows  # each visitor on one of 4 shards
        assert dict(rows)[""] == 4  # events without a visitor spread over every shard


def test_cluster_names_are_checked():
    with pytest.raises(ValueError):
        cluster.statements(make_settings("/tmp/unused"), "c1`; DROP", "analytics")

"""The server roles' SQL: every statement parses in ClickHouse's own parser, and the analyst is granted
the views and nothing else."""

from __future__ import annotations

import hashlib

import pytest

from collector.storage import sandbox
from collector.storage.roles import roles_sql
from collector.storage.store import Store


@pytest.fixture
def parser(tmp_path):
    store = Store(f"chdb://{tmp_path}/clickhouse?database=analytics", "analytics")
    yield store
    store.close()


def test_every_statement_parses(parser):
    digest = hashlib.sha256(b"pw").hexdigest()
    stmts = roles_sql("analytics", list(sandbox.analyst_views()), analyst_password_sha256=digest,
                      admin_password_sha256=digest)
    for stmt in stmts:
        formatted = parser.query_rows("SELECT formatQuerySingleLine({q:String})", {"q": stmt})[0][0]
        assert formatted.split()[0] == stmt.split()[0], stmt


def test_analyst_gets_the_views_only():
    views = list(sandbox.analyst_views())
    stmts = roles_sql("analytics", views)
    grants = [s for s in stmts if s.startswith("GRANT") and "`collector_analyst`" in s.split(" TO ")[-1]]
    assert sorted(grants) == sorted(f"GRANT SELECT ON `analytics`.`{v}` TO `collector_analyst`" for v in views)
    assert any("readonly = 1 CONST" in s for s in stmts if "collector_analyst_limits" in s)
    assert sum("MODIFY SQL SECURITY DEFINER" in s for s in stmts) == len(views)
    assert not any("CREATE USER IF NOT EXISTS `collector_analyst_user`" in s for s in stmts)
    with pytest.raises(ValueError):
        roles_sql("analytics`; DROP", views)

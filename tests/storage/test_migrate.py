from collector.storage.store import Store
from collector.storage import migrate
from collector.testing import make_settings


def test_migrations_apply_once_with_ttl_and_dedup_settings(tmp_path):
    s = make_settings(tmp_path)
    store = Store(s.dsn)
    try:
        assert migrate.apply(store, s) == [m.name for m in migrate.migrations()]
        assert migrate.apply(store, s) == []
        ddl = {name: q for name, q in store.query_rows(
            "SELECT name, create_table_query FROM system.tables WHERE database = currentDatabase()")}
        for table in ("events", "member_events", "consent_ledger"):
            assert "non_replicated_deduplication_window = 10000" in ddl[table]
        assert "PARTITION BY toYYYYMM(ts)" in ddl["events"] and "DateTime64(3, 'UTC')" in ddl["events"]
        assert "LowCardinality(String)" in ddl["events"]
        assert migrate.retention_months(store, "events") == 25
        assert migrate.retention_months(store, "member_events") == 13
        migrate.apply(store, s.with_(retention_anonymous_months=6, retention_member_months=3))
        assert migrate.retention_months(store, "events") == 6
        assert migrate.retention_months(store, "member_events") == 3
    finally:
        store.close()


def test_deduplication_token_discards_a_repeated_batch(tmp_path):
    s = make_settings(tmp_path)
    store = Store(s.dsn)
    try:
        migrate.apply(store, s)
        cols = ("site", "member_id", "purpose", "action", "policy_version", "ts")
        rows = [["example.org", "m", "email", "grant", "v1", 1764300000000]]
        store.insert("consent_ledger", rows, cols, token="1:0:100:consent_ledger")
        store.insert("consent_ledger", rows, cols, token="1:0:100:consent_ledger")
        store.insert("consent_ledger", rows, cols, token="1:100:200:consent_ledger")
        assert store.query_rows("SELECT count() FROM consent_ledger")[0][0] == 2
    finally:
        store.close()

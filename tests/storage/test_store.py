"""The store on the embedded engine: a failed statement never poisons the next answer."""

from __future__ import annotations

import pytest

from collector.errors import StorageError
from collector.storage import migrate
from collector.storage.store import Store
from collector.testing import make_settings


@pytest.mark.parametrize("fmt", ["JSONEachRow", "TabSeparated", "JSON"])
def test_a_statement_failing_half_way_leaves_nothing_for_the_next_one(tmp_path, fmt):
    s = make_settings(tmp_path / "data")
    store = Store(s.dsn, s.database)
    try:
        migrate.apply(store, s)
        with pytest.raises(StorageError):
            # rows are already on their way when the error comes
            store.query_raw("SELECT number, throwIf(number = 70000) FROM numbers(100000) "
                            "SETTINGS max_block_size = 1000", fmt)
        assert store.query_rows("SELECT 1") == [(1,)]
        assert store.query_raw("SELECT 2 AS x", "JSONEachRow") == b'{"x":2}\n'
        assert store.query_rows("SELECT count() FROM events") == [(0,)]
    finally:
        store.close()

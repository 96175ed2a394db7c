"""ClickHouse through clickhouse-connect: the embedded chDB engine by default, or a server over HTTP(S).

The sink interface is small: ``insert`` a batch idempotently, report ``healthy``, run SQL. chDB has
no async client and allows one process per data path, so every call goes through one lock.

The driver's errors are translated here and nowhere else: every failure leaves this module as a
``StorageError`` whose ``kind`` says whether retrying can help and whose message names no password.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import parse_qs, urlsplit, urlunsplit

from clickhouse_connect.driver.exceptions import ClickHouseError, DataError, OperationalError

from collector.errors import BUSY, PERMANENT, TRANSIENT, StorageError

# ClickHouse error codes that mean the data itself is unacceptable (parse, type and range errors)
PERMANENT_CODES = {6, 25, 26, 27, 32, 38, 41, 53, 69, 70, 72, 117, 130, 131, 321, 376, 377, 441, 442}
_CODE = re.compile(r"Code: (\d+)")


def is_permanent(exc: BaseException) -> bool:
    """A rejection that retrying cannot fix (bad data), as opposed to storage being unreachable."""
    if isinstance(exc, DataError):
        return True
    m = _CODE.search(str(exc))
    return bool(m) and int(m.group(1)) in PERMANENT_CODES


# server errors about load, not about the statement: retrying later can succeed
TRANSIENT_CODES = {159, 160, 202, 209, 210, 241, 242, 252, 285, 319, 425, 999}


def translate(exc: BaseException, dsn: str, *, inserting: bool = False) -> StorageError:
    """The product's error for a driver (or engine) failure. For an insert, *permanent* means the
    rows themselves are unacceptable; for any other statement, that the statement is."""
    if isinstance(exc, StorageError):
        return exc
    text = str(exc)
    code = _CODE.search(text)
    if "Cannot lock file" in text or "EmbeddedServer" in text:
        kind = BUSY
    elif not isinstance(exc, ClickHouseError) or isinstance(exc, OperationalError):
        kind = TRANSIENT
    elif inserting:
        kind = PERMANENT if is_permanent(exc) else TRANSIENT
    elif isinstance(exc, DataError) or (code and int(code.group(1)) not in TRANSIENT_CODES):
        kind = PERMANENT
    else:
        kind = TRANSIENT
    return StorageError(describe(exc, dsn), kind)


def describe(exc: BaseException, dsn: str) -> str:
    text = str(exc)
    if "Cannot lock file" in text or "EmbeddedServer" in text:
        return (f"the embedded ClickHouse data at {dsn_path(dsn)} is in use by another process "
                "(chDB allows one process per data path); run the command through the running collector")
    if isinstance(exc, OperationalError) or "Connection refused" in text or "Max retries" in text:
        return f"cannot reach ClickHouse at {redact(dsn)}: connection failed"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:500]


def redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn


def dsn_path(dsn: str) -> str:
    return urlsplit(dsn).path


class Store:
    def __init__(self, dsn: str, database: str = "analytics", connect_timeout: float = 3.0):
        self.dsn = dsn
        self.database = database
        self.embedded = dsn.startswith("chdb:")
        self.connect_timeout = connect_timeout
        self._client = None
        self._lock = threading.RLock()

    # -- connection ------------------------------------------------------------------------
    def _connect(self):
        import clickhouse_connect

        try:
            if self.embedded:
                path = dsn_path(self.dsn)
                Path(path).mkdir(parents=True, exist_ok=True)
                client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
            else:
                parts = urlsplit(self.dsn)
                q = parse_qs(parts.query)
                self.database = q.get("database", [parts.path.strip("/") or self.database])[0]
                base = urlunsplit(parts._replace(path="", query=""))
                client = clickhouse_connect.get_client(dsn=base, connect_timeout=self.connect_timeout,
                                                       send_receive_timeout=30, autogenerate_session_id=False)
            client.command(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
            client.database = self.database
        except (ClickHouseError, OSError, RuntimeError) as exc:
            err = translate(exc, self.dsn)
            if err.kind == PERMANENT:  # a refused connection is not a verdict on any statement
                err.kind = TRANSIENT
            raise err from exc
        return client

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _call(self, fn, *args, inserting: bool = False, **kwargs):
        with self._lock:
            client = self.client
            try:
                return fn(client, *args, **kwargs)
            except (ClickHouseError, OSError, RuntimeError) as exc:
                if not self.embedded and isinstance(exc, (OperationalError, OSError)):
                    self._client = None
                raise translate(exc, self.dsn, inserting=inserting) from exc

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
                self._client = None

    # -- operations ------------------------------------------------------------------------
    def healthy(self) -> bool:
        try:
            return self._call(lambda c: c.command("SELECT 1")) == 1
        except StorageError:
            return False

    def command(self, sql: str, parameters: dict | None = None) -> Any:
        return self._call(lambda c: c.command(sql, parameters=parameters))

    def query_rows(self, sql: str, parameters: dict | None = None) -> list[tuple]:
        return self._call(lambda c: c.query(sql, parameters=parameters).result_rows)

    def query_raw(self, sql: str, fmt: str = "TabSeparated") -> bytes:
        return self._call(lambda c: c.raw_query(sql, fmt=fmt))

    def insert_json(self, table: str, data: bytes, token: str) -> None:
        """Insert newline-separated JSON objects (JSONEachRow) as one idempotent block. Keys that are
        not columns are ignored; times are Unix seconds with milliseconds as the fraction."""
        settings = {"insert_deduplication_token": token, "async_insert": 0, "input_format_skip_unknown_fields": 1}
        if self.embedded:
            # one parsing thread is faster in-process: the engine shares the machine with the collector
            settings["input_format_parallel_parsing"] = 0
        self._call(lambda c: c.raw_insert(f"`{self.database}`.`{table}`", None, data, settings=settings,
                                          fmt="JSONEachRow"), inserting=True)

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str], token: str) -> None:
        settings = {"insert_deduplication_token": token, "async_insert": 0}
        self._call(lambda c: c.insert(f"`{self.database}`.`{table}`", rows, column_names=list(columns),
                                      settings=settings), inserting=True)

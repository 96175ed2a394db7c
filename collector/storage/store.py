"""ClickHouse through clickhouse-connect: the embedded chDB engine by default, or a server over HTTP(S).

The sink interface is small: ``insert`` a batch idempotently, report ``healthy``, run SQL. chDB has
no async client and allows one process per data path, so every call of the product's own connection
goes through one lock.

Analyst and admin SQL (``run_sandboxed``) does not: each role has its own connection (on chDB, a
second handle on the same engine) and its own lock, so a slow query never holds the loader back.
chDB runs queries of different handles concurrently: measured, inserts on the product's connection
took 3-13 ms each while another handle ran a 129 s scan or a ``sleepEachRow`` query.

The driver's errors are translated here and nowhere else: every failure leaves this module as a
``StorageError`` whose ``kind`` says whether retrying can help and whose message names no password.
"""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import parse_qs, urlsplit, urlunsplit

from clickhouse_connect.driver.exceptions import ClickHouseError, DataError, OperationalError

from collector.errors import BUSY, PERMANENT, TRANSIENT, QueryBusy, QueryLimit, QueryRefused, StorageError

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


# ClickHouse error codes that mean a sandboxed query ran into its role's limits
LIMIT_CODES = {158, 159, 160, 161, 162, 163, 191, 197, 201, 202, 241, 290, 307, 396, 397, 398, 399, 733}
READONLY_CODES = {164}


class Store:
    def __init__(self, dsn: str, database: str = "analytics", connect_timeout: float = 3.0,
                 sandbox_limits: dict | None = None):
        from collector.storage import sandbox

        self.dsn = dsn
        self.database = database
        self.embedded = dsn.startswith("chdb:")
        self.connect_timeout = connect_timeout
        self._client = None
        self._lock = threading.RLock()
        self.sandbox_limits = {**sandbox.DEFAULT_LIMITS,
                               **{sandbox.role_of(k): v for k, v in (sandbox_limits or {}).items()}}
        self._sandbox_clients: dict = {}
        self._sandbox_locks = {role: threading.Lock() for role in sandbox.Role}
        self._functions = None

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
                if self.embedded:
                    # a failed statement leaves its partial output on an embedded connection, where it
                    # would come back ahead of the next answer: never reuse it
                    self._discard()
                elif isinstance(exc, (OperationalError, OSError)):
                    self._client = None
                raise translate(exc, self.dsn, inserting=inserting) from exc

    def _discard(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    def close(self) -> None:
        for role, lock in self._sandbox_locks.items():
            with lock:
                client = self._sandbox_clients.pop(role, None)
                if client is not None:
                    try:
                        client.close()
                    except Exception:  # noqa: BLE001 - closing is best effort
                        pass
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

    # -- sandboxed SQL (analyst and admin queries) ------------------------------------------------
    def run_sandboxed(self, sql: str, role, default_format: str = "TabSeparated"):
        """Run analyst or admin SQL within the role's sandbox; returns ``sandbox.Result(body, format)``,
        ``format`` being the query's own ``FORMAT`` or ``default_format``.

        Raises ``QueryRefused`` (403) when the sandbox refuses the statement, ``QueryLimit`` (422) when
        it exceeds the role's limits, ``QueryBusy`` (429) when the role's previous query still runs,
        ``StorageError`` for anything else the engine reports (400 for a bad statement, 503 when
        storage is unreachable). Never waits on the product's own connection (the loader's)."""
        from collector.storage import sandbox

        role = sandbox.role_of(role)
        if default_format not in sandbox.FORMATS:
            raise QueryRefused(f"output format {default_format!r} is not allowed")
        with self._sandbox_session(role) as (scalar, run):
            checked = sandbox.check(sql, role, self.database, scalar=scalar, functions=self._function_list(scalar),
                                    default_format=default_format)
            return sandbox.Result(run(checked.sql, checked.format), checked.format)

    def check_sandboxed(self, sql: str, role, default_format: str = "TabSeparated"):
        """The sandbox's verdict without running the statement: ``sandbox.Checked`` or ``QueryRefused``."""
        from collector.storage import sandbox

        role = sandbox.role_of(role)
        with self._sandbox_session(role) as (scalar, _run):
            return sandbox.check(sql, role, self.database, scalar=scalar, functions=self._function_list(scalar),
                                 default_format=default_format)

    def _function_list(self, scalar):
        from collector.storage import sandbox

        if self._functions is None:
            import json

            text = scalar(f"SELECT toJSONString(groupArray(tuple(*))) FROM ({sandbox.FUNCTIONS_SQL})")
            self._functions = sandbox.functions_from_rows(json.loads(text))
        return self._functions

    @contextlib.contextmanager
    def _sandbox_session(self, role):
        limits = self.sandbox_limits[role]
        lock = self._sandbox_locks[role]
        if not lock.acquire(timeout=limits.queue_seconds):
            raise QueryBusy(f"another {role.value} query is still running; retry shortly",
                            retry_after=max(1, int(limits.max_execution_time)))
        try:
            client = self._sandbox_clients.get(role)
            if client is None:
                client = self._sandbox_clients[role] = self._connect_sandbox(role)
            # a server connection has no session: the limits ride with every query
            per_query = None if self.embedded else limits.settings()

            def call(sql: str, fmt: str) -> bytes:
                try:
                    return client.raw_query(sql, fmt=fmt, settings=per_query)
                except (ClickHouseError, OSError, RuntimeError) as exc:
                    # On chDB a failed statement leaves what it had already written (a JSON header, the
                    # rows before the failure) in the handle's output buffer, and the engine hands it out
                    # ahead of the next answer on that handle: the next check would read garbage. The
                    # handle is never reused after a failure; the next query opens a fresh one.
                    if self.embedded or isinstance(exc, (OperationalError, OSError)):
                        self._drop_sandbox_client(role, client)
                    raise _sandbox_error(exc, self.dsn) from exc

            def scalar(sql: str) -> str:
                return call(sql, "RawBLOB").decode()

            yield scalar, call
        finally:
            lock.release()

    def _drop_sandbox_client(self, role, client) -> None:
        """Forget the role's connection (called with the role's lock held) and close it."""
        if self._sandbox_clients.get(role) is client:
            del self._sandbox_clients[role]
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass

    def _connect_sandbox(self, role):
        """The role's own connection. On chDB a second handle on the engine whose session carries the
        role's limits, ``readonly=1`` applied last so no statement can change them afterwards."""
        import clickhouse_connect

        self.client  # the product's connection creates the database and, on a server, reads its name
        limits = self.sandbox_limits[role]
        try:
            if self.embedded:
                client = clickhouse_connect.get_client(dsn=f"chdb://{dsn_path(self.dsn)}")
                client.database = self.database
                for key, value in limits.settings().items():
                    literal = str(value) if isinstance(value, int) else "'" + str(value).replace("'", "") + "'"
                    client.command(f"SET {key} = {literal}")
            else:
                parts = urlsplit(self.dsn)
                base = urlunsplit(parts._replace(path="", query=""))
                client = clickhouse_connect.get_client(dsn=base, connect_timeout=self.connect_timeout,
                                                       send_receive_timeout=int(limits.max_execution_time) + 10,
                                                       autogenerate_session_id=False)
                client.database = self.database
        except (ClickHouseError, OSError, RuntimeError) as exc:
            err = translate(exc, self.dsn)
            if err.kind == PERMANENT:
                err.kind = TRANSIENT
            raise err from exc
        return client


def _sandbox_error(exc: BaseException, dsn: str):
    """A sandboxed query's failure: limits and read-only refusals are the caller's, not storage's."""
    m = _CODE.search(str(exc))
    code = int(m.group(1)) if m else None
    if code in LIMIT_CODES:
        return QueryLimit(f"the query exceeded its limits: {describe(exc, dsn)}")
    if code in READONLY_CODES:
        return QueryRefused(f"refused: the query needs more than read-only access: {describe(exc, dsn)}")
    return translate(exc, dsn)

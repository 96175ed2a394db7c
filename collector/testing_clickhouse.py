"""A ClickHouse HTTP interface in front of a real chDB engine, for tests, drills and benchmarks.

There is no modern ClickHouse server package on these machines; this fixture speaks enough of the
server's HTTP protocol for clickhouse-connect's HTTP client (and ``curl``), and every statement runs
in chDB, so the SQL, the formats, the deduplication and the errors are ClickHouse's own:

- ``GET|HEAD /ping`` answers ``Ok.``; ``GET|POST /?query=...``: the statement is the ``query``
  parameter followed by the body (for an ``INSERT ... FORMAT F`` the body is the data), or the body
  alone. The body may be compressed (``Content-Encoding: lz4`` (frame), ``zstd``, ``br``, ``gzip``,
  ``deflate``), and sent with ``Content-Length`` or chunked.
- ``database``, ``default_format``, ``query_id``, ``session_id`` (a session keeps its ``SET``s and
  temporary tables), ``param_<name>`` (server-side parameters ``{name:Type}``); every other URL
  parameter is a setting of the query (``insert_deduplication_token``, ``async_insert``,
  ``readonly``, ``max_execution_time``, ...). Transport parameters the fixture accepts and ignores:
  ``wait_end_of_query``, ``compress``, ``decompress``, ``enable_http_compression``, ``buffer_size``,
  ``session_timeout``, ``session_check``, ``client_protocol_version`` (answers are plain Native, so
  clickhouse-connect's protocol probe falls back to version 0, as behind a proxy).
- Users: HTTP Basic, ``X-ClickHouse-User``/``X-ClickHouse-Key`` or ``user``/``password`` parameters,
  against the configured users (``default`` with no password when none are configured).
- Answers carry ``X-ClickHouse-Query-Id``, ``X-ClickHouse-Format``, ``X-ClickHouse-Timezone``,
  ``X-ClickHouse-Server-Display-Name`` and ``X-ClickHouse-Summary``; a failure is
  ``Code: N. DB::Exception: ... (NAME) (version V)`` with ``X-ClickHouse-Exception-Code: N`` and the
  status ClickHouse gives that code (400 syntax and bad data, 401/403 authentication and access, 404
  unknown table or database, 500 otherwise, ...). Responses are never compressed (valid HTTP: the
  ``Accept-Encoding`` offer is declined).

Fault switches, set with ``POST /_fixture/faults`` (JSON) and read with ``GET /_fixture/stats``:

- ``{"fail": N, "code": C, "status": S, "only": "insert"|"any"}``: the next N matching requests
  answer S with ClickHouse exception C without running anything;
- ``{"drop": N, "apply": true|false}``: the next N inserts read the whole body, then (after running
  the insert when ``apply``) close the connection without an answer: the client cannot know whether
  the insert landed;
- ``{"delay_s": X, "delay_count": N}``: sleep X seconds before answering the next N requests (all
  requests when N is omitted; ``{"delay_s": 0}`` clears it);
- ``{"reset": true}`` clears every switch.

Run it as a process (``python -m collector.testing_clickhouse --path DIR --port N [--user u:p]``), or
``ClickHouseHTTP(path).start()`` from a test, which does exactly that (chDB allows one data path per
process, so the engine never shares the test process).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

DISPLAY_NAME = "chdb-http-fixture"
# URL parameters that are transport options, not settings of the statement
TRANSPORT = {"query", "database", "default_format", "query_id", "session_id", "session_timeout", "session_check",
             "user", "password", "quota_key", "compress", "decompress", "buffer_size", "wait_end_of_query",
             "client_protocol_version", "role", "enable_http_compression", "send_progress_in_http_headers",
             "http_headers_progress_interval_ms", "http_wait_end_of_query", "add_http_cors_header"}
_CODE = re.compile(r"Code: (\d+)\.")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*$")
_FORMAT_TAIL = re.compile(r"\bFORMAT\s+([A-Za-z0-9]+)\s*;?\s*$", re.IGNORECASE)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s", re.IGNORECASE)
_INSERT_FORMAT = re.compile(r"^(?P<head>\s*INSERT\s+INTO\s.*?)\bFORMAT\s+(?P<fmt>[A-Za-z0-9]+)[ \t]*\r?\n?", re.IGNORECASE | re.DOTALL)
_SET = re.compile(r"^\s*SET\s", re.IGNORECASE)
_WRITES = re.compile(r"^\s*(INSERT|CREATE|ALTER|DROP|RENAME|TRUNCATE|OPTIMIZE|DELETE|UPDATE|SYSTEM|GRANT|REVOKE)\b",
                     re.IGNORECASE)
_BINARY_INPUT = {"Native", "RowBinary", "RowBinaryWithNames", "RowBinaryWithNamesAndTypes", "Parquet", "Arrow",
                 "ArrowStream", "ORC", "Avro", "Protobuf", "MsgPack", "BSONEachRow"}

# ClickHouse's own mapping of exception codes to HTTP statuses (src/Server/HTTP/exceptionCodeToHTTPStatus)
_STATUS = {
    194: 401,  # REQUIRED_PASSWORD
    192: 403, 193: 403, 516: 403, 497: 403, 164: 403, 2001: 403,  # UNKNOWN_USER, WRONG_PASSWORD, AUTH, ACCESS_DENIED, READONLY
    62: 400, 27: 400, 6: 400, 25: 400, 26: 400, 38: 400, 41: 400, 53: 400, 69: 400, 70: 400, 72: 400, 117: 400,
    130: 400, 131: 400, 321: 400, 376: 400, 377: 400, 441: 400, 442: 400, 36: 400, 47: 400, 43: 400, 44: 400,
    46: 400, 115: 400, 32: 400, 33: 400, 34: 400, 35: 400, 42: 400, 57: 400, 452: 400, 456: 400, 457: 400,
    60: 404, 81: 404, 46: 404,  # UNKNOWN_TABLE, UNKNOWN_DATABASE, UNKNOWN_FUNCTION
    82: 400, 101: 400, 48: 501, 1000: 500, 159: 504, 202: 503, 203: 503, 209: 503, 210: 503, 241: 500, 252: 500,
}
_CODE_NAMES = {210: "NETWORK_ERROR", 202: "TOO_MANY_SIMULTANEOUS_QUERIES", 241: "MEMORY_LIMIT_EXCEEDED",
               252: "TOO_MANY_PARTS", 999: "KEEPER_EXCEPTION", 1000: "POCO_EXCEPTION", 159: "TIMEOUT_EXCEEDED",
               516: "AUTHENTICATION_FAILED", 242: "TABLE_IS_READ_ONLY", 319: "UNKNOWN_STATUS_OF_INSERT"}


def status_for(code: int) -> int:
    return _STATUS.get(code, 500)


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.fail = 0
        self.fail_code = 210
        self.fail_status = 500
        self.fail_only = "any"
        self.drop = 0
        self.drop_apply = True
        self.delay_s = 0.0
        self.delay_count: int | None = None

    def set(self, spec: dict) -> None:
        with self.lock:
            if spec.get("reset"):
                self.reset()
            if "fail" in spec:
                self.fail = int(spec["fail"])
                self.fail_code = int(spec.get("code", 210))
                self.fail_status = int(spec.get("status", status_for(self.fail_code)))
                self.fail_only = spec.get("only", "any")
            if "drop" in spec:
                self.drop = int(spec["drop"])
                self.drop_apply = bool(spec.get("apply", True))
            if "delay_s" in spec:
                self.delay_s = float(spec["delay_s"])
                self.delay_count = None if spec.get("delay_count") is None else int(spec["delay_count"])

    def take_delay(self) -> float:
        with self.lock:
            if not self.delay_s:
                return 0.0
            if self.delay_count is not None:
                if self.delay_count <= 0:
                    return 0.0
                self.delay_count -= 1
            return self.delay_s

    def take_failure(self, inserting: bool) -> tuple[int, int] | None:
        with self.lock:
            if self.fail > 0 and (self.fail_only == "any" or inserting):
                self.fail -= 1
                return self.fail_code, self.fail_status
            return None

    def take_drop(self) -> bool | None:
        """None: answer normally; True/False: drop the connection, after applying the insert or not."""
        with self.lock:
            if self.drop > 0:
                self.drop -= 1
                return self.drop_apply
            return None


class Engine:
    """chDB behind the fixture. Each request gets a fresh connection (a second handle on the engine),
    so its settings die with it, as settings in a server's HTTP query do; a ``session_id`` keeps its
    connection."""

    def __init__(self, path: str):
        import chdb

        self._chdb = chdb
        self.path = path
        Path(path).mkdir(parents=True, exist_ok=True)
        self.main = chdb.connect(path)  # keeps the engine up between requests
        self.version = self.main.query("SELECT version()", "TabSeparated").bytes().decode().strip()
        self.sessions: dict[str, tuple[object, threading.Lock]] = {}
        self.lock = threading.Lock()

    def connection(self, session_id: str | None):
        if not session_id:
            return self._chdb.connect(self.path), None
        with self.lock:
            if session_id not in self.sessions:
                self.sessions[session_id] = (self._chdb.connect(self.path), threading.Lock())
            return self.sessions[session_id]


class ChError(Exception):
    def __init__(self, code: int, message: str, name: str = ""):
        super().__init__(message)
        self.code, self.message, self.name = code, message, name


def _literal(value: str) -> str:
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _binary_literal(data: bytes) -> str:
    return "'" + "".join(f"\\x{b:02X}" for b in data) + "'"


def decode_body(data: bytes, encoding: str) -> bytes:
    enc = (encoding or "").strip().lower()
    if not enc or enc == "identity":
        return data
    if enc == "gzip":
        return gzip.decompress(data)
    if enc == "deflate":
        return zlib.decompress(data)
    if enc == "lz4":
        import lz4.frame

        return lz4.frame.decompress(data)
    if enc == "zstd":
        try:
            from backports import zstd
        except ImportError:  # Python 3.14+
            from compression import zstd  # type: ignore[no-redef]
        return zstd.decompress(data)
    if enc == "br":
        import brotli

        return brotli.decompress(data)
    raise ChError(1000, f"Unknown Content-Encoding: {encoding}", "UNKNOWN_ENCODING")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ClickHouse"
    sys_version = ""

    # -- plumbing --------------------------------------------------------------------------------
    def log_message(self, fmt, *args):  # quiet; the stats endpoint counts
        pass

    @property
    def fixture(self) -> "Fixture":
        return self.server.fixture  # type: ignore[attr-defined]

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                line = self.rfile.readline(65537).strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline(65537).strip():
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, code: int, message: str, name: str = "", status: int | None = None,
               query_id: str = "") -> None:
        name = name or _CODE_NAMES.get(code, "")
        text = f"Code: {code}. DB::Exception: {message}" + (f" ({name})" if name and f"({name})" not in message else "")
        text += f" (version {self.fixture.engine.version})\n"
        self._send(status or status_for(code), text.encode(), {
            "Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(code),
            "X-ClickHouse-Server-Display-Name": DISPLAY_NAME, "X-ClickHouse-Query-Id": query_id or str(uuid.uuid4())})

    # -- verbs -----------------------------------------------------------------------------------
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self._handle(b"")

    def do_POST(self):
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        self._handle(body)

    def _handle(self, body: bytes) -> None:
        fx = self.fixture
        url = urlsplit(self.path)
        with fx.stats_lock:
            fx.stats["requests"] += 1
        if url.path == "/ping":
            self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        if url.path == "/_fixture/faults" and self.command == "POST":
            fx.faults.set(json.loads(body or b"{}"))
            self._send(200, b"{}", {"Content-Type": "application/json"})
            return
        if url.path == "/_fixture/stats":
            with fx.stats_lock:
                self._send(200, json.dumps(fx.stats).encode(), {"Content-Type": "application/json"})
            return
        if url.path not in ("/", ""):
            self._error(1000, f"There is no handle {url.path}", "HTTP_HANDLER_NOT_FOUND", status=404)
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        if not self._authenticated(params):
            self._error(516, "default: Authentication failed: password is incorrect, or there is no user with such "
                        "name.", "AUTHENTICATION_FAILED", query_id=query_id)
            return
        try:
            body = decode_body(body, self.headers.get("Content-Encoding", ""))
        except ChError as exc:
            self._error(exc.code, exc.message, exc.name, query_id=query_id)
            return
        except Exception as exc:  # noqa: BLE001 - a corrupt compressed body
            self._error(432, f"Cannot decompress the request body: {exc}", "UNKNOWN_CODEC", status=400,
                        query_id=query_id)
            return
        query = params.get("query", "")
        if query and body:
            raw = query.encode() + b"\n" + body
        else:
            raw = query.encode() or body
        if not raw.strip():
            self._error(62, "Empty query", "SYNTAX_ERROR", query_id=query_id)
            return
        if self.command in ("GET", "HEAD") and _WRITES.match(raw[:200].decode("utf-8", "replace")):
            self._error(164, "Cannot execute query in readonly mode. For queries over HTTP, method GET implies "
                        "readonly. You should use method POST for modifying queries", "READONLY",
                        query_id=query_id)
            return
        inserting = bool(_INSERT.match(raw[:200].decode("utf-8", "replace")))
        delay = fx.faults.take_delay()
        if delay:
            time.sleep(delay)
        failure = fx.faults.take_failure(inserting)
        if failure:
            code, status = failure
            with fx.stats_lock:
                fx.stats["failed"] += 1
            self._error(code, "Injected fault of the HTTP fixture", _CODE_NAMES.get(code, "FIXTURE_FAULT"),
                        status=status, query_id=query_id)
            return
        drop = fx.faults.take_drop() if inserting else None
        if drop is False:  # the body was read; the connection goes before the insert runs
            self._drop()
            return
        try:
            out, fmt, summary = self._run(raw, params, inserting)
        except ChError as exc:
            if drop is not None:
                self._drop()
                return
            self._error(exc.code, exc.message, exc.name, query_id=query_id)
            return
        if drop:  # the insert ran; the answer never comes
            self._drop()
            return
        self._send(200, out, {
            "Content-Type": "application/octet-stream" if fmt in _BINARY_INPUT else "text/plain; charset=UTF-8",
            "X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Format": fmt, "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Server-Display-Name": DISPLAY_NAME, "X-ClickHouse-Summary": json.dumps(summary)})

    def _drop(self) -> None:
        with self.fixture.stats_lock:
            self.fixture.stats["dropped"] += 1
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _authenticated(self, params: dict[str, str]) -> bool:
        users = self.fixture.users
        user, password = "default", ""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return False
        elif self.headers.get("X-ClickHouse-User"):
            user, password = self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
        elif "user" in params:
            user, password = params["user"], params.get("password", "")
        if not users:
            return user == "default" and not password
        return users.get(user) == password

    def _run(self, raw: bytes, params: dict[str, str], inserting: bool):
        fx = self.fixture
        settings = {k: v for k, v in params.items() if k not in TRANSPORT and not k.startswith("param_")}
        qparams = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        fmt = params.get("default_format") or "TabSeparated"
        sql: str
        if inserting:
            m = _INSERT_FORMAT.match(raw.decode("utf-8", "surrogateescape"))
            if m:
                head, in_fmt = m.group("head").rstrip(), m.group("fmt")
                data = raw[len(m.group(0).encode("utf-8", "surrogateescape")):]
                if in_fmt in _BINARY_INPUT:
                    head = re.sub(r"\bVALUES\s*$", "", head, flags=re.IGNORECASE)
                    sql = f"{head} SELECT * FROM format({in_fmt}, {_binary_literal(data)})"
                else:
                    sql = f"{head} FORMAT {in_fmt}\n" + data.decode("utf-8")
            else:
                sql = raw.decode("utf-8")
            fmt = "TabSeparated"
        else:
            sql = raw.decode("utf-8")
            m = _FORMAT_TAIL.search(sql)
            if m:
                fmt = m.group(1)
        conn, lock = fx.engine.connection(params.get("session_id"))
        started = time.monotonic_ns()
        try:
            with lock or _nolock:
                if lock is None or params.get("database"):
                    db = params.get("database") or fx.default_database
                    self._exec(conn, f"USE `{db}`")
                for key, value in settings.items():
                    self._exec(conn, f"SET {key} = {_literal(value)}")
                res = self._exec(conn, sql, fmt, qparams or None)
        finally:
            if lock is None:
                conn.close()
        out = res.bytes() or b""
        with fx.stats_lock:
            fx.stats["queries"] += 1
            if inserting:
                fx.stats["inserts"] += 1
        summary = {"read_rows": str(res.rows_read()), "read_bytes": str(res.bytes_read()),
                   "written_rows": str(getattr(res, "rows_written", lambda: 0)()),
                   "written_bytes": str(getattr(res, "bytes_written", lambda: 0)()),
                   "total_rows_to_read": str(res.rows_read()), "result_rows": "0", "result_bytes": str(len(out)),
                   "elapsed_ns": str(time.monotonic_ns() - started)}
        return out, fmt, summary

    def _exec(self, conn, sql: str, fmt: str = "TabSeparated", params=None):
        try:
            return conn.query(sql, fmt, params=params) if params else conn.query(sql, fmt)
        except Exception as exc:  # noqa: BLE001 - chDB raises ChdbError (a RuntimeError) with ClickHouse's text
            text = str(exc)
            m = _CODE.search(text)
            code = int(m.group(1)) if m else 1000
            msg = text.split("DB::Exception: ", 1)[-1].strip()
            n = _NAME.search(msg)
            raise ChError(code, msg, n.group(1) if n else "") from None


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


_nolock = _NoLock()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class Fixture:
    def __init__(self, path: str, host: str = "127.0.0.1", port: int = 0, users: dict[str, str] | None = None,
                 database: str = "default"):
        self.engine = Engine(path)
        self.users = users or {}
        self.default_database = database
        self.faults = Faults()
        self.stats_lock = threading.Lock()
        self.stats = {"requests": 0, "queries": 0, "inserts": 0, "failed": 0, "dropped": 0}
        self.httpd = Server((host, port), Handler)
        self.httpd.fixture = self  # type: ignore[attr-defined]

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m collector.testing_clickhouse",
                                description="ClickHouse HTTP interface over chDB (tests and drills only)")
    p.add_argument("--path", required=True, help="chDB data directory")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8123)
    p.add_argument("--user", action="append", default=[], help="user:password (repeatable)")
    args = p.parse_args(argv)
    users = dict(u.split(":", 1) for u in args.user)
    fx = Fixture(args.path, args.host, args.port, users)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=fx.httpd.shutdown, daemon=True).start())
    print(f"listening on http://{args.host}:{fx.port}", flush=True)
    fx.serve_forever()
    return 0


class ClickHouseHTTP:
    """The fixture as a child process on a free loopback port, with its fault switches."""

    def __init__(self, path: Path, user: str = "collector", password: str = "s3cret-pass", port: int = 0):
        self.path = Path(path)
        self.user, self.password = user, password
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.log_path = self.path.parent / (self.path.name + ".log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def dsn(self, database: str = "analytics") -> str:
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.port}/?database={database}"

    def start(self, timeout: float = 60) -> "ClickHouseHTTP":
        import httpx

        from collector.testing import ROOT, free_port

        self.port = self.port or free_port()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "collector.testing_clickhouse", "--path", str(self.path),
                                          "--port", str(self.port), "--user", f"{self.user}:{self.password}"],
                                         cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         env={k: v for k, v in os.environ.items() if not k.startswith("COLLECTOR_")})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fixture exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/ping", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the ClickHouse HTTP fixture did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def faults(self, **spec) -> None:
        import httpx

        httpx.post(self.url + "/_fixture/faults", json=spec, timeout=5).raise_for_status()

    def stats(self) -> dict:
        import httpx

        return httpx.get(self.url + "/_fixture/stats", timeout=5).json()

    def query(self, sql: str, database: str = "analytics") -> str:
        """Run SQL as the fixture's user (TabSeparated text)."""
        import httpx

        r = httpx.post(self.url + "/", params={"database": database}, content=sql.encode(),
                       auth=(self.user, self.password), timeout=60)
        if r.status_code != 200:
            raise RuntimeError(r.text)
        return r.text

    def __enter__(self) -> "ClickHouseHTTP":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())

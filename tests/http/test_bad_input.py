"""Hostile and malformed input: each limit answers its exact 4xx, never a 5xx, and the worker stays up.

In process (real chDB in a temporary directory) for the full table of cases, then over real HTTP
against a collector subprocess for the transport-level cases (declared and chunked bodies, raw
sockets, oversized headers).
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from starlette.testclient import TestClient

from collector.http.app import create_app
from tests.conftest import flush, rows
from collector.testing import CHROME_UA, CollectorProcess, make_settings

LIMIT = 64 * 1024
GOOD = {"n": "pageview", "u": "https://example.org/a", "d": "example.org"}


def ev(**changes):
    out = dict(GOOD)
    for k, v in changes.items():
        if v is ...:
            out.pop(k, None)
        else:
            out[k] = v
    return json.dumps(out)


TEXT = {"Content-Type": "text/plain"}
JSON = {"Content-Type": "application/json"}

# (id, path, headers, body, expected status)
CASES = [
    ("declared too large", "/api/event", TEXT, b" " * LIMIT + b"1", 413),
    ("depth over limit", "/api/event", TEXT, json.dumps({**GOOD, "x": json.loads("[" * 9 + "]" * 9)}), 400),
    ("depth 5000", "/api/event", TEXT, "[" * 5000 + "]" * 5000, 400),
    ("depth 5000 objects", "/api/event", TEXT, '{"a":' * 5000 + "1" + "}" * 5000, 400),
    ("too many keys", "/api/event", TEXT, json.dumps({**GOOD, **{f"k{i}": 1 for i in range(70)}}), 400),
    ("array too long", "/api/event", TEXT, json.dumps({**GOOD, "x": list(range(300))}), 400),
    ("url too long", "/api/event", TEXT, ev(u="https://example.org/" + "a" * 2100), 400),
    ("name too long", "/api/event", TEXT, ev(n="x" * 121), 400),
    ("prop value too long", "/api/event", TEXT, ev(p={"k": "v" * 2049}), 400),
    ("prop key too long", "/api/event", TEXT, ev(p={"k" * 65: "v"}), 400),
    ("too many props", "/api/event", TEXT, ev(p={f"k{i}": "v" for i in range(31)}), 400),
    ("nested prop", "/api/event", TEXT, ev(p={"k": {"a": 1}}), 400),
    ("list prop", "/api/event", TEXT, ev(p={"k": [1]}), 400),
    ("props not an object", "/api/event", TEXT, ev(p=[1, 2]), 400),
    ("props bad JSON string", "/api/event", TEXT, ev(p="{nope"), 400),
    ("batch too long", "/api/batch", TEXT, json.dumps([GOOD] * 101), 400),
    ("batch empty", "/api/batch", TEXT, "[]", 400),
    ("batch not a list", "/api/batch", TEXT, json.dumps(GOOD), 400),
    ("batch item not an object", "/api/batch", TEXT, json.dumps([GOOD, 3]), 400),
    ("big integer ts", "/api/event", TEXT, ev(ts=10**30), 400),
    ("huge integer literal", "/api/event", TEXT, ev(ts=...)[:-1] + ',"ts":' + "9" * 5000 + "}", 400),
    ("float overflow", "/api/event", TEXT, ev(ts=...)[:-1] + ',"ts":1e400}', 400),
    ("big integer prop", "/api/event", TEXT, ev(p={"k": 2**64}), 400),
    ("big float prop", "/api/event", TEXT, ev(p={"k": 1e300}), 400),
    ("NaN", "/api/event", TEXT, ev(ts=...)[:-1] + ',"ts":NaN}', 400),
    ("Infinity", "/api/event", TEXT, ev(ts=...)[:-1] + ',"ts":Infinity}', 400),
    ("-Infinity", "/api/event", TEXT, ev(ts=...)[:-1] + ',"ts":-Infinity}', 400),
    ("ts as string", "/api/event", TEXT, ev(ts="now"), 400),
    ("ts as bool", "/api/event", TEXT, ev(ts=True), 400),
    ("engagement as list", "/api/event", TEXT, ev(e=[1]), 400),
    ("invalid UTF-8", "/api/event", TEXT, ev().encode()[:-2] + b'\xff"}', 400),
    ("overlong UTF-8", "/api/event", TEXT, b'{"n":"\xc0\xaf"}', 400),
    ("UTF-8 encoded surrogate", "/api/event", TEXT, ev(n="X").encode().replace(b"X", b"\xed\xa0\x80"), 400),
    ("lone surrogate escape", "/api/event", TEXT, ev(n="X").replace("X", "\\ud800"), 400),
    ("reversed surrogates", "/api/event", TEXT, ev(n="X").replace("X", "\\udc00\\ud800"), 400),
    ("UTF-16 body", "/api/event", TEXT, ev().encode("utf-16"), 400),
    ("empty body", "/api/event", TEXT, b"", 400),
    ("not JSON", "/api/event", TEXT, b"n=pageview&d=example.org", 400),
    ("trailing garbage", "/api/event", TEXT, ev() + "}", 400),
    ("top-level string", "/api/event", TEXT, '"pageview"', 400),
    ("top-level null", "/api/event", TEXT, "null", 400),
    ("top-level number", "/api/event", TEXT, "12", 400),
    ("top-level array", "/api/event", TEXT, json.dumps([GOOD]), 400),
    ("name as number", "/api/event", TEXT, ev(n=1), 400),
    ("name as object", "/api/event", TEXT, ev(n={"a": 1}), 400),
    ("name as null", "/api/event", TEXT, ev(n=None), 400),
    ("domain as list", "/api/event", TEXT, ev(d=["example.org"]), 400),
    ("url as bool", "/api/event", TEXT, ev(u=True), 400),
    ("referrer as number", "/api/event", TEXT, ev(r=5), 400),
    ("identity as object", "/api/event", TEXT, ev(identity={"sub": "x"}), 400),
    ("missing name", "/api/event", TEXT, ev(n=...), 400),
    ("missing domain", "/api/event", TEXT, ev(d=...), 400),
    ("missing url", "/api/event", TEXT, ev(u=...), 400),
    ("relative url", "/api/event", TEXT, ev(u="/a"), 400),
    ("javascript url", "/api/event", TEXT, ev(u="javascript:alert(1)"), 400),
    ("broken IPv6 host", "/api/event", TEXT, ev(u="http://[::1/a"), 400),
    ("bracket host", "/api/event", TEXT, ev(u="https://[example.org]/a"), 400),
    ("lone closing bracket", "/api/event", TEXT, ev(u="https://ex]mple.org/"), 400),
    ("NFKC-unsafe host", "/api/event", TEXT, ev(u="https://example.org\uff03@evil.test/"), 400),
    ("unknown site", "/api/event", TEXT, ev(d="not-configured.test"), 422),
    ("xml", "/api/event", {"Content-Type": "application/xml"}, ev(), 415),
    ("form", "/api/event", {"Content-Type": "application/x-www-form-urlencoded"}, ev(), 415),
    ("multipart", "/api/batch", {"Content-Type": "multipart/form-data; boundary=x"}, ev(), 415),
    ("no content type", "/api/event", {}, ev(), 415),
    ("consent too large", "/api/consent", JSON, b" " * 8193, 413),
    ("consent not JSON", "/api/consent", JSON, b"\xff", 400),
    ("consent unknown site", "/api/consent", JSON, json.dumps({"site": "x.test"}), 422),
    ("consent bad signature", "/api/consent", {**JSON, "X-Collector-Signature": "sha256=00"},
     json.dumps({"site": "example.org", "member_ref": "m", "purpose": "p", "action": "grant"}), 401),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One app for the table of cases: each case must also leave it working for the next."""
    settings = make_settings(tmp_path_factory.mktemp("bad-input-app") / "data")
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as c:
        yield c


@pytest.mark.parametrize(("path", "headers", "body", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_limit_answers_its_status(client, path, headers, body, status):
    app_client = client
    r = app_client.post(path, content=body, headers={"User-Agent": CHROME_UA, **headers})
    assert r.status_code == status, r.text
    doc = r.json()
    assert set(doc) == {"error", "message"} and doc["message"]
    # the worker is still up and still accepts a good event
    assert app_client.post("/api/event", content=ev(), headers=TEXT).status_code == 202


PIXEL_CASES = [
    ("missing domain", {"u": "https://example.org/"}, 400),
    ("ts not a number", {"d": "example.org", "u": "https://example.org/", "ts": "soon"}, 400),
    ("url too long", {"d": "example.org", "u": "https://example.org/" + "a" * 2100}, 400),
    ("relative url", {"d": "example.org", "u": "/x"}, 400),
    ("props not an object", {"d": "example.org", "u": "https://example.org/", "p": "[1]"}, 400),
    ("unknown site", {"d": "nope.test", "u": "https://nope.test/"}, 422),
]


@pytest.mark.parametrize(("params", "status"), [c[1:] for c in PIXEL_CASES], ids=[c[0] for c in PIXEL_CASES])
def test_pixel_limits(client, params, status):
    app_client = client
    r = app_client.get("/p.gif", params=params)
    assert r.status_code == status, r.text
    assert app_client.get("/p.gif", params={"d": "example.org", "u": "https://example.org/"}).status_code == 200


def test_body_at_the_limit_is_accepted_and_stored(client):
    body = ev(u="https://example.org/at-limit").encode()
    body = body + b" " * (LIMIT - len(body))  # JSON allows trailing whitespace
    assert len(body) == LIMIT
    assert client.post("/api/event", content=body, headers=TEXT).status_code == 202
    flush(client)
    assert rows(client, "SELECT count() AS n FROM events WHERE path = '/at-limit'")[0]["n"] == 1


def test_streamed_body_over_the_limit_is_refused(client):
    app_client = client
    def chunks():
        for _ in range(80):
            yield b" " * 1024

    r = app_client.post("/api/event", content=chunks(), headers=TEXT)
    assert r.status_code == 413


def test_refused_bodies_store_nothing(client):
    flush(client)
    before = rows(client, "SELECT count() AS n FROM events")[0]["n"]
    for _, path, headers, body, _status in CASES:
        client.post(path, content=body, headers=headers)
    flush(client)
    assert rows(client, "SELECT count() AS n FROM events")[0]["n"] == before


def test_text_plain_with_charset_is_accepted(client):
    app_client = client
    r = app_client.post("/api/event", content=ev(), headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert r.status_code == 202


# -- over real HTTP, against a collector process ------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad-input")
    proc = CollectorProcess(make_settings(d / "data"), d).start()
    try:
        yield proc
    finally:
        assert proc.stop() == 0


def _raw(port: int, data: bytes, read_timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
                if b"\r\n\r\n" in out and (b"content-length: 0" in out.lower() or out.endswith(b"}") or
                                          out.endswith(b"ok")):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def test_declared_and_chunked_limits_over_http(served):
    url = served.url + "/api/event"
    with httpx.Client(timeout=10) as c:
        r = c.post(url, content=b" " * (LIMIT + 1), headers=TEXT)
        assert r.status_code == 413

        def chunks():
            for _ in range(100):
                yield b" " * 1000

        r = c.post(url, content=chunks(), headers=TEXT)
        assert r.status_code == 413
        assert c.post(url, content=ev(), headers=TEXT).status_code == 202


def test_declared_length_is_refused_before_the_body_is_sent(served):
    port = served.settings.port
    start = time.monotonic()
    head = (b"POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 10000000\r\n\r\n")
    out = _raw(port, head)
    assert out.startswith(b"HTTP/1.1 413"), out[:200]
    assert time.monotonic() - start < 3


def test_malformed_http_is_refused_and_the_worker_stays_up(served):
    port = served.settings.port
    for data in (
        b"POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST /api/event HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello on the plain port
        b"GET /p.gif?d=example.org&u=https%3A%2F%2Fexample.org%2F%FF%FE HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        out = _raw(port, data)
        assert not out.startswith(b"HTTP/1.1 5"), out[:200]
    assert httpx.get(served.url + "/healthz").status_code == 200


def test_endless_headers_are_refused(served):
    # headers that never end would otherwise be buffered by the parser without limit
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 100_000
    out = _raw(served.settings.port, head)
    assert out.startswith(b"HTTP/1.1 431"), out[:200]
    assert httpx.get(served.url + "/healthz").status_code == 200


def test_no_server_error_was_logged(served):
    httpx.post(served.url + "/api/event", content=b"[" * 5000, headers=TEXT)
    log = served.log_path.read_text()
    assert "Exception in ASGI application" not in log
    assert '"level": "error"' not in log

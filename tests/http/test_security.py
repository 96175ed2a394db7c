"""Access control and secrets at the public endpoint: security headers, Cookie/Authorization never
read or kept, the admin token, spoofed X-Forwarded-For, log hygiene, clamped client time, and
slow clients (real sockets on loopback against a collector process)."""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from collector import logs
from collector.counts import Counts
from collector.http import auth
from collector.http.app import create_app
from collector.pipeline.origin import OriginPolicy
from collector.http.security import SecurityMiddleware
from collector.settings import ConfigError
from collector.privacy.tokens import LINKING, mint
from tests.conftest import flush, rows
from collector.testing import CHROME_UA, SECRET, CollectorProcess, make_settings

TEXT = {"Content-Type": "text/plain"}
EVENT = '{"n":"pageview","u":"https://example.org/plans","d":"example.org"}'


# -- security headers -------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "kw"), [
    ("GET", "/healthz", {}), ("GET", "/readyz", {}), ("GET", "/metrics", {}), ("GET", "/openapi.json", {}),
    ("GET", "/t.js", {}), ("GET", "/no-such-page", {}), ("GET", "/api/event", {}),
    ("POST", "/api/event", {"content": "{", "headers": TEXT}), ("POST", "/api/event", {"content": EVENT, "headers": TEXT}),
    ("GET", "/p.gif", {"params": {"d": "example.org", "u": "https://example.org/"}}), ("GET", "/admin/keys", {}),
])
def test_security_headers_on_every_response(app_client, method, path, kw):
    r = app_client.request(method, path, **kw)
    assert r.status_code < 500
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "object-src 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"


def test_route_may_set_its_own_policy():
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-security-policy", b"default-src 'none'")]})
        await send({"type": "http.response.body", "body": b""})

    r = TestClient(SecurityMiddleware(app, OriginPolicy(()), Counts())).get("/page")
    assert r.headers.get_list("content-security-policy") == ["default-src 'none'"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_cookie_and_authorization_are_removed_before_beacon_handlers_run():
    seen = {}

    async def app(scope, receive, send):
        seen[scope["path"]] = {k.decode() for k, _ in scope["headers"]}
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    headers = {"Cookie": "sid=abc", "Authorization": "Bearer t", "User-Agent": "x"}
    c = TestClient(SecurityMiddleware(app, OriginPolicy(()), Counts()))
    for path in ("/api/event", "/api/batch", "/p.gif", "/api/consent", "/t.js"):
        c.get(path, headers=headers)
        assert "cookie" not in seen[path] and "authorization" not in seen[path] and "user-agent" in seen[path]
    c.get("/admin/keys", headers=headers)  # admin needs its Authorization header
    assert "authorization" in seen["/admin/keys"]


# -- admin token --------------------------------------------------------------------------------------

def test_admin_endpoints_require_the_token_compared_in_constant_time(app_client, internal, monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    token = app_client.app.state.collector.admin_token
    analyst = app_client.app.state.collector.analyst_token
    for path in ("/admin/keys", "/admin/spool", "/admin/inventory"):
        assert internal.get(path).status_code == 401
        assert internal.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert internal.get(path, headers={"Authorization": "Bearer"}).status_code == 401
        assert internal.get(path, headers={"Authorization": "Bearer "}).status_code == 401
        assert internal.get(path, headers={"Authorization": f"Bearer {token}x"}).status_code == 401
        assert internal.get(path, headers={"Authorization": f"Basic {token}"}).status_code == 401
        assert internal.get(path, params={"token": token}).status_code == 401
        assert internal.get(path, headers={"Cookie": f"token={token}"}).status_code == 401
        assert internal.get(path, headers={"Authorization": f"Bearer {analyst}"}).status_code == 403
        assert internal.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    r = internal.post("/admin/query", json={"sql": "SELECT 1"})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert calls, "the token must be compared with hmac.compare_digest"


def test_public_listener_serves_no_admin_query_or_metrics(app_client):
    token = app_client.app.state.collector.admin_token
    for method, path in (("GET", "/metrics"), ("GET", "/admin/keys"), ("POST", "/admin/query"), ("POST", "/api/query"),
                         ("GET", "/admin/hello"), ("POST", "/admin/forget"), ("GET", "/admin/spool")):
        r = app_client.request(method, path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code in (404, 405), (path, r.status_code)


def test_tokens_are_refused_when_short_and_created_atomically(tmp_path):
    from collector import credentials

    with pytest.raises(credentials.CredentialError):
        credentials.load_or_create(tmp_path / "admin.token", "short")
    (tmp_path / "admin.token").write_text("")  # what a crash between create and write used to leave
    token = credentials.load_or_create(tmp_path / "admin.token")
    assert credentials.usable(token) and (tmp_path / "admin.token").read_text() == token
    assert (tmp_path / "admin.token").stat().st_mode & 0o777 == 0o600
    (tmp_path / "bad.token").write_text("abc")
    with pytest.raises(credentials.CredentialError):
        credentials.load_or_create(tmp_path / "bad.token")
    assert not list(tmp_path.glob(".*tmp"))


# -- proxies: a spoofed X-Forwarded-For from an untrusted peer ----------------------------------------

def _visit(client, xff: str | None) -> None:
    headers = {**TEXT, "User-Agent": CHROME_UA}
    if xff:
        headers["X-Forwarded-For"] = xff
    assert client.post("/api/event", content=EVENT, headers=headers).status_code == 202


def test_spoofed_forwarded_for_changes_nothing_without_trusted_proxies(tmp_path, geo_dbs):
    city, asn = geo_dbs
    settings = make_settings(tmp_path / "data", geoip_city_db=str(city), geoip_asn_db=str(asn), trusted_proxies=(),
                             rate_exempt=(), rate_per_ip=0.01, rate_burst=4)
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as c:
        _visit(c, None)
        _visit(c, "81.2.69.142")
        _visit(c, "2.125.160.216")
        _visit(c, "81.2.69.142, 2.125.160.216")
        # rate limiting keys on the socket peer too: a fresh spoofed address does not buy a fresh bucket
        r = c.post("/api/event", content=EVENT, headers={**TEXT, "X-Forwarded-For": "1.2.3.4"})
        assert r.status_code == 429
        flush(c)
        got = rows(c, "SELECT country, region, asn, visitor_id FROM events")
    assert len(got) == 4
    assert {(g["country"], g["region"], g["asn"]) for g in got} == {("", "", 0)}
    assert len({g["visitor_id"] for g in got}) == 1  # the pseudonym is the socket peer's


def test_forwarded_for_is_used_from_a_trusted_proxy(tmp_path, geo_dbs):
    city, asn = geo_dbs
    settings = make_settings(tmp_path / "data", geoip_city_db=str(city), geoip_asn_db=str(asn))
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as c:
        _visit(c, "81.2.69.142")
        _visit(c, "6.6.6.6, 2.125.160.216")  # the left-most entry was written by the client: ignored
        flush(c)
        got = rows(c, "SELECT country, visitor_id FROM events ORDER BY country")
    assert [g["country"] for g in got] == ["GB", "US"]
    assert got[0]["visitor_id"] != got[1]["visitor_id"]


@pytest.mark.parametrize("everyone", ["0.0.0.0/0", "::/0", "10.0.0.0/8,0.0.0.0/0"])
def test_trusting_everyone_is_refused_at_startup(tmp_path, everyone):
    with pytest.raises(ConfigError, match="trusts every address"):
        make_settings(tmp_path, trusted_proxies=tuple(everyone.split(",")))


def test_bad_limit_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="RATE_EXEMPT"):
        make_settings(tmp_path, rate_exempt=("not-a-network",))
    with pytest.raises(ConfigError, match="REQUEST_TIMEOUT"):
        make_settings(tmp_path, request_timeout_s=0)


# -- time ----------------------------------------------------------------------------------------------

def test_far_client_time_is_clamped_and_flagged(app_client):
    now_ms = int(time.time() * 1000)
    sent = {"/past": now_ms - 86_400_000, "/future": now_ms + 3_600_000, "/epoch": 0, "/near": now_ms - 60_000}
    for path, ts in sent.items():
        body = json.dumps({"n": "pageview", "u": f"https://example.org{path}", "d": "example.org", "ts": ts})
        assert app_client.post("/api/event", content=body, headers=TEXT).status_code == 202
    flush(app_client)
    got = {r["path"]: r for r in rows(app_client, "SELECT path, toUnixTimestamp64Milli(ts) AS ms, ts_clamped FROM events")}
    for path in ("/past", "/future", "/epoch"):
        assert got[path]["ts_clamped"] == 1
        assert abs(int(got[path]["ms"]) - now_ms) < 60_000  # the receive time, not the client's
    assert got["/near"]["ts_clamped"] == 0 and int(got["/near"]["ms"]) == sent["/near"]


# -- logs ---------------------------------------------------------------------------------------------

def test_log_lines_are_json_capped_and_cannot_be_forged():
    fmt = logs.JsonFormatter()
    forged = 'x\n{"level": "error", "msg": "forged"}\r\x1b[31m\x00' + "A" * 10_000
    rec = logging.LogRecord("collector", logging.WARNING, __file__, 1, "bad value %s then %s", (forged, "tail"), None)
    line = fmt.format(rec)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\x00" not in line
    doc = json.loads(line)
    assert doc["level"] == "warning" and doc["msg"].endswith(" then tail")  # the next value survives
    assert len(doc["msg"]) <= logs.MAX_VALUE + 20
    long = logging.LogRecord("collector", logging.INFO, __file__, 1, "B" * 10_000, None, None)
    assert len(json.loads(fmt.format(long))["msg"]) <= logs.MAX_VALUE * 4


# -- over real HTTP: secrets never kept, slow clients --------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp("security")
    settings = make_settings(d / "data", request_timeout_s=1.0, log_level="debug")
    proc = CollectorProcess(settings, d).start()
    try:
        yield proc
    finally:
        assert proc.stop() == 0


COOKIE = "session=cookie-marker-6f1d2a"
BEARER = "Bearer bearer-marker-93ab7c"
CLIENT_IP = "81.2.69.142"
MEMBER = "MBR-marker-775533"


def _grep_all(root: Path, needles: list[bytes]) -> list[str]:
    found = []
    for f in root.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            found += [f"{n.decode()} in {f}" for n in needles if n in data]
    return found


def test_cookies_authorization_addresses_and_member_refs_are_never_kept(served):
    token = mint(SECRET, "example.org", MEMBER, [LINKING], 600)
    common = {"Cookie": COOKIE, "Authorization": BEARER, "X-Forwarded-For": CLIENT_IP, "User-Agent": CHROME_UA}
    with httpx.Client(base_url=served.url, timeout=10) as c:
        ok = c.post("/api/event", headers={**common, **TEXT},
                    content=json.dumps({"n": "pageview", "u": "https://example.org/member/home", "d": "example.org",
                                        "identity": token, "cid": "cid-1"}))
        assert ok.status_code == 202
        assert c.post("/api/batch", headers={**common, **TEXT}, content=f"[{EVENT},{EVENT}]").status_code == 202
        assert c.get("/p.gif", headers=common, params={"d": "example.org", "u": "https://example.org/"}).status_code == 200
        # failures and rejections are logged too: none may carry the secrets
        assert c.post("/api/event", headers={**common, **TEXT}, content="{" + COOKIE).status_code == 400
        assert c.post("/api/event", headers={**common, "Content-Type": "x/" + MEMBER}, content=EVENT).status_code == 415
        consent = json.dumps({"site": "example.org", "member_ref": MEMBER, "purpose": LINKING, "action": "grant",
                              "ts": time.time(), "nonce": "nonce-for-this-call-0001"})
        sig = "sha256=" + hmac.new(SECRET.encode(), consent.encode(), "sha256").hexdigest()
        assert c.post("/api/consent", headers={**common, "Content-Type": "application/json",
                                               "X-Collector-Signature": sig}, content=consent).status_code == 202
        assert c.post("/api/consent", headers={**common, "Content-Type": "application/json",
                                               "X-Collector-Signature": "sha256=0"}, content=consent).status_code == 401
        # a WebSocket handshake with a tell-tale URL: not served, and nothing of it logged
        ws = c.get("/ws/ssn-123-45-6789?email=jane@example.com", headers={
            **common, "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        assert ws.status_code in (400, 404, 426)
    served.flush()
    tables = served.tables()
    assert "events" in tables and "member_events" in tables
    # every table as stored (TabSeparated: aggregate-state columns are binary, grepped byte for byte)
    stored = b"\n".join(served.query_raw(f"SELECT * FROM `{t}`") for t in tables)
    assert served.query("SELECT member_id FROM member_events WHERE member_id != ''")  # the linked row, pseudonymized
    needles = ["cookie-marker-6f1d2a", "bearer-marker-93ab7c", CLIENT_IP, MEMBER, token]
    assert [n for n in needles if n.encode() in stored] == []
    needles += ["ssn-123-45-6789", "jane@example.com"]
    assert _grep_all(Path(served.settings.data_dir), [n.encode() for n in needles]) == []  # spool, ledger, keys
    log = served.log_path.read_text()
    assert log.strip(), "the collector logs something"
    assert [n for n in needles if n in log] == []
    # the socket peer (loopback, from an ephemeral port) is not logged either; the listen address is
    assert "127.0.0.1" not in log.replace(f"127.0.0.1:{served.settings.port}", "")
    for line in log.splitlines():
        if line.startswith("{"):
            json.loads(line)


def _open(port: int, first: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if first:
        s.sendall(first)
    return s


def test_slow_clients_do_not_starve_normal_ones(served):
    port = served.settings.port
    n = 120
    slow_headers = [_open(port, b"POST /api/event HTTP/1.1\r\nHost: x\r\n") for _ in range(n)]
    slow_bodies = [_open(port, b"POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                               b"Content-Length: 4000\r\n\r\n{\"n\":") for _ in range(n)]
    idle = [_open(port, b"") for _ in range(n)]
    started = time.monotonic()
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            for s in slow_headers:
                try:
                    s.send(b"X-Slow: 1\r\n")
                except OSError:
                    pass
            for s in slow_bodies:
                try:
                    s.send(b" ")
                except OSError:
                    pass
            stop.wait(0.2)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        latencies = []
        with httpx.Client(base_url=served.url, timeout=5) as c:
            while time.monotonic() - started < 1.5:
                t0 = time.monotonic()
                assert c.post("/api/event", content=EVENT, headers=TEXT).status_code == 202
                latencies.append(time.monotonic() - t0)
        assert len(latencies) >= 10
        assert max(latencies) < 1.0, max(latencies)
        # every slow connection is answered 408 and closed by the deadline (1 s here), not held open
        outcomes = {}
        for kind, socks in (("headers", slow_headers), ("body", slow_bodies), ("idle", idle)):
            for s in socks:
                s.settimeout(max(0.1, started + 4.0 - time.monotonic()))
                data = b""
                try:
                    while chunk := s.recv(4096):
                        data += chunk
                except TimeoutError:
                    data += b"<still open>"
                except ConnectionResetError:
                    data += b"<reset>"
                outcomes.setdefault(kind, set()).add(data.split(b"\r\n", 1)[0].decode(errors="replace"))
        assert outcomes["headers"] == {"HTTP/1.1 408 Request Timeout"}
        assert outcomes["body"] == {"HTTP/1.1 408 Request Timeout"}
        assert outcomes["idle"] == {"HTTP/1.1 408 Request Timeout"}
    finally:
        stop.set()
        t.join()
        for s in slow_headers + slow_bodies + idle:
            s.close()
    assert httpx.post(served.url + "/api/event", content=EVENT, headers=TEXT).status_code == 202


def test_spoofed_forwarded_for_is_ignored_by_the_served_process(tmp_path, geo_dbs):
    """The same through uvicorn over real HTTP: the server itself must not rewrite the client address
    from X-Forwarded-For before the collector's own trusted-proxy check."""
    import httpx

    from collector.testing import CollectorProcess

    city, asn = geo_dbs
    settings = make_settings(tmp_path / "data", geoip_city_db=str(city), geoip_asn_db=str(asn), trusted_proxies=())
    proc = CollectorProcess(settings, tmp_path).start()
    try:
        for xff in (None, "81.2.69.142", "2.125.160.216"):
            headers = {**TEXT, "User-Agent": CHROME_UA, **({"X-Forwarded-For": xff} if xff else {})}
            assert httpx.post(proc.url + "/api/event", content=EVENT, headers=headers).status_code == 202
        proc.flush()
        got = proc.query("SELECT country, asn, visitor_id FROM events")
    finally:
        assert proc.stop() == 0
    assert len(got) == 3
    assert {(g["country"], g["asn"]) for g in got} == {("", 0)}
    assert len({g["visitor_id"] for g in got}) == 1


def test_repeated_forwarded_for_lines_are_one_list_and_any_gpc_line_counts(app_client):
    # a client-written line first, the proxy's own line last: the right-most untrusted address wins
    headers = [("Content-Type", "text/plain"), ("User-Agent", CHROME_UA),
               ("X-Forwarded-For", "81.2.69.160"), ("X-Forwarded-For", "2.125.160.216")]
    body = '{"n":"pageview","u":"https://example.org/xff","d":"example.org","cid":"abcdefg.XffClient01"}'
    assert app_client.post("/api/event", content=body, headers=headers).status_code == 202
    gpc = [("Content-Type", "text/plain"), ("User-Agent", CHROME_UA), ("Sec-GPC", "0"), ("Sec-GPC", "1")]
    body = '{"n":"pageview","u":"https://example.org/gpc","d":"example.org","cid":"abcdefg.GpcClient01"}'
    assert app_client.post("/api/event", content=body, headers=gpc).status_code == 202
    flush(app_client)
    got = {r["path"]: r for r in rows(app_client, "SELECT path, country, privacy, visitor_id FROM events")}
    assert got["/xff"]["country"] == "US"
    assert got["/gpc"]["privacy"] == "gpc" and got["/gpc"]["visitor_id"] == ""


def test_idle_keep_alive_connections_are_closed_after_the_keep_alive_timeout(served):
    """After an answer the connection stays open for the next request for uvicorn's keep-alive
    timeout (5 s), then is closed quietly; a request in time reuses it."""
    req = (b"POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
           % len(EVENT) + EVENT.encode())
    reused, idle = _open(served.settings.port, req), _open(served.settings.port, req)
    try:
        for s in (reused, idle):
            assert s.recv(4096).startswith(b"HTTP/1.1 202")
        time.sleep(2.5)
        reused.sendall(req)
        assert reused.recv(4096).startswith(b"HTTP/1.1 202")  # 2.5 s idle: still open
        idle.settimeout(8)
        started = time.monotonic()
        assert idle.recv(4096) == b""  # closed, nothing written
        waited = time.monotonic() - started + 2.5
        assert 4.5 <= waited <= 7.0, waited
    finally:
        reused.close()
        idle.close()

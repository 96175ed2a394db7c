"""Beacons answered inline by the protocol (collector/http/inline.py) against the ASGI route, over real
HTTP on loopback: the same answers byte for byte, pipelined requests answered in order, HTTP/1.0 closed,
and every accepted event stored."""

from __future__ import annotations

import json
import signal
import socket
import time

import httpx
import pytest

from collector.testing import CollectorProcess, MemoryTransport, make_settings

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"


@pytest.fixture(scope="module")
def proc(tmp_path_factory):
    d = tmp_path_factory.mktemp("inline")
    p = CollectorProcess(make_settings(d / "data", rate_burst=10000), d).start()
    yield p
    p.stop()


def request(method: str, path: str, body: bytes = b"", ctype: str = "text/plain", version: str = "1.1",
            extra: str = "") -> tuple[bytes, bytes]:
    head = (f"{method} {path} HTTP/{version}\r\nHost: collector\r\nUser-Agent: {UA}\r\n"
            f"X-Forwarded-For: 81.2.69.142\r\nContent-Type: {ctype}\r\n{extra}")
    if method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode(), body


def read_response(sock: socket.socket, buf: bytearray) -> tuple[int, dict, bytes]:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    length = int(headers["content-length"][0])
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    buf[:] = body[length:]
    return status, {k: sorted(v) for k, v in headers.items()}, bytes(body[:length])


def exchange(proc, parts: list[bytes], pause: float = 0.0, count: int = 1) -> list[tuple[int, dict, bytes]]:
    """Send ``parts`` (each its own packet after ``pause``) on one connection; read ``count`` answers."""
    with socket.create_connection(("127.0.0.1", proc.settings.port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, part in enumerate(parts):
            if i and pause:
                time.sleep(pause)
            s.sendall(part)
        buf = bytearray()
        return [read_response(s, buf) for _ in range(count)]


def event(path: str, domain: str = "example.org") -> bytes:
    return json.dumps({"n": "pageview", "u": f"https://{domain}{path}", "d": domain}).encode()


CASES = {
    "event": request("POST", "/api/event", event("/inline-event")),
    "batch": request("POST", "/api/batch", json.dumps([json.loads(event("/inline-batch-1")),
                                                       json.loads(event("/inline-batch-2"))]).encode()),
    "bad json": request("POST", "/api/event", b"{not json"),
    "content type": request("POST", "/api/event", event("/x"), ctype="application/xml"),
    "unknown site": request("POST", "/api/event", event("/x", "unknown.example")),
    "too large": request("POST", "/api/event", b"{" + b" " * 70000 + b"}"),
    "bad length": (b"POST /api/event HTTP/1.1\r\nHost: c\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                   b"X-Forwarded-For: 81.2.69.142\r\n\r\n{}", b""),
    "with origin": request("POST", "/api/event", event("/inline-origin"), extra="Origin: https://example.org\r\n"),
}


def inline_answers(proc) -> int:
    line = next(x for x in proc.metrics().splitlines() if x.startswith("collector_http_inline_answers_total"))
    return int(float(line.split()[-1]))


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_inline_answer_is_the_asgi_routes_answer(proc, case):
    head, body = CASES[case]
    # whole request in one packet: answered inline; body a packet later: the ASGI route
    before = inline_answers(proc)
    (inline,) = exchange(proc, [head + body])
    assert inline_answers(proc) == before + 1
    if body:
        (routed,) = exchange(proc, [head, body], pause=0.15)
    else:
        (routed,) = exchange(proc, [head[:-2], head[-2:]], pause=0.15)
    assert inline_answers(proc) == before + 1
    assert inline == routed
    assert inline[0] == {"event": 202, "batch": 202, "bad json": 400, "content type": 415,
                         "unknown site": 422, "too large": 413, "bad length": 400, "with origin": 202}[case]


def test_the_pixel_is_answered_inline_like_the_route(proc):
    (answer,) = exchange(proc, [request("GET", "/p.gif?u=https%3A%2F%2Fexample.org%2Finline-pixel&d=example.org")[0]])
    status, headers, body = answer
    assert status == 200 and headers["content-type"] == ["image/gif"] and body.startswith(b"GIF")


def test_pipelined_requests_are_answered_in_order(proc):
    e1 = b"".join(request("POST", "/api/event", event("/inline-pipe-1")))
    health = b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n"
    e2 = b"".join(request("POST", "/api/event", event("/inline-pipe-2")))
    bad = b"".join(request("POST", "/api/event", b"[1,2"))
    before = inline_answers(proc)
    answers = exchange(proc, [e1 + health + e2 + bad + e1], count=5)
    assert [a[0] for a in answers] == [202, 200, 202, 400, 202]
    assert inline_answers(proc) == before + 1  # the first; the others queue behind it as pipelined
    assert json.loads(answers[1][2]) == {"alive": True}


def test_http_1_0_is_answered_and_closed(proc):
    head, body = request("POST", "/api/event", event("/inline-http10"), version="1.0")
    with socket.create_connection(("127.0.0.1", proc.settings.port), timeout=10) as s:
        s.sendall(head + body)
        buf = bytearray()
        status, headers, _ = read_response(s, buf)
        assert status == 202 and headers["connection"] == ["close"]
        assert s.recv(100) == b""  # the server closed the connection


def test_keep_alive_serves_many_inline_requests_on_one_connection(proc):
    one = b"".join(request("POST", "/api/event", event("/inline-keepalive")))
    with socket.create_connection(("127.0.0.1", proc.settings.port), timeout=10) as s:
        buf = bytearray()
        for _ in range(20):
            s.sendall(one)
            assert read_response(s, buf)[0] == 202


def answers(proc, route: str, status: int) -> int:
    prefix = f'collector_http_requests_total{{route="{route}",status="{status}"}}'
    line = next((x for x in proc.metrics().splitlines() if x.startswith(prefix)), None)
    return int(float(line.split()[-1])) if line else 0


def read_until_closed(sock: socket.socket) -> bytes:
    out = bytearray()
    while chunk := sock.recv(65536):
        out += chunk
    return bytes(out)


def test_a_malformed_request_is_answered_after_the_whole_requests_before_it(proc):
    e1 = b"".join(request("POST", "/api/event", event("/inline-before-bad-1")))
    health = b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n"
    e2 = b"".join(request("POST", "/api/event", event("/inline-before-bad-2")))
    with socket.create_connection(("127.0.0.1", proc.settings.port), timeout=10) as s:
        s.sendall(e1 + health + e2 + b"NOT HTTP\x00\r\n\r\n")
        buf = bytearray()
        got = [read_response(s, buf)[0] for _ in range(4)]
        assert got == [202, 200, 202, 400]
        assert bytes(buf) + read_until_closed(s) == b""  # then closed


def test_a_client_that_half_closes_still_gets_every_answer(proc):
    one = b"".join(request("POST", "/api/event", event("/inline-half-close")))
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", proc.settings.port), timeout=10) as s:
            s.sendall(one + one)
            s.shutdown(socket.SHUT_WR)  # nothing more to send; still reading
            buf = bytearray()
            first, second = read_response(s, buf), read_response(s, buf)
            assert (first[0], second[0]) == (202, 202)
            # the last answer says close when the FIN was read before it was written; either way the
            # connection then closes with nothing more sent
            assert second[1].get("connection", ["close"]) == ["close"]
            assert bytes(buf) + read_until_closed(s) == b""


def test_a_beacon_waits_like_any_request_while_the_client_reads_no_answers(proc):
    """Once the answers the client does not read fill the buffers (writing paused), a beacon waits for
    them to drain like an ASGI answer does, instead of buffering its answer without bound."""
    openapi = b"GET /openapi.json HTTP/1.1\r\nHost: collector\r\n\r\n"  # 16 KB answers fill buffers fast
    beacon = b"".join(request("POST", "/api/event", event("/inline-unread")))
    steps = (("/openapi.json", 200, openapi), ("/api/event", 202, beacon))
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(proc.socket_path))) as internal:
        def counts() -> list[int]:
            lines = internal.get("http://collector/metrics").text.splitlines()
            prefixes = [f'collector_http_requests_total{{route="{r}",status="{st}"}}' for r, st, _ in steps]
            return [next((int(float(x.split()[-1])) for x in lines if x.startswith(p)), 0) for p in prefixes]

        def answered(i: int, want: int) -> bool:
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                if counts()[i] >= want:
                    return True
                time.sleep(0.002)
            return False

        expect = counts()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        s.connect(("127.0.0.1", proc.settings.port))
        try:
            stalled = None
            for _ in range(2000):  # each request its own read, sent once the one before is answered
                for i, (route, _, data) in enumerate(steps):
                    s.sendall(data)
                    expect[i] += 1
                    if not answered(i, expect[i]):
                        stalled = route
                        break
                if stalled:
                    break
            assert stalled == "/api/event"
        finally:
            s.close()


def test_a_request_whose_body_never_completes_is_neither_stored_nor_counted(proc):
    body = event("/inline-incomplete") + b"    "  # valid JSON, shorter than declared
    head = request("POST", "/api/event", body + b" " * 32)[0]
    before = answers(proc, "/api/event", 202)
    for half in (False, True):
        with socket.create_connection(("127.0.0.1", proc.settings.port), timeout=10) as s:
            s.sendall(head + body)
            time.sleep(0.1)  # headers and part of the body read: the ASGI route waits for the rest
            if half:
                s.shutdown(socket.SHUT_WR)
                assert read_until_closed(s) == b""  # closed unanswered
    time.sleep(0.3)
    proc.flush()
    assert proc.query("SELECT count() AS n FROM events WHERE path = '/inline-incomplete'") == [{"n": 0}]
    assert answers(proc, "/api/event", 202) == before


def test_every_accepted_event_is_stored(proc):
    exchange(proc, [b"".join(CASES["event"])])
    proc.flush()
    got = {r["path"]: int(r["n"]) for r in proc.query(
        "SELECT path, count() AS n FROM events WHERE path LIKE '/inline-%' GROUP BY path")}
    # sent: each case twice (inline and routed), the pixel once, the pipelined events, 20 keep-alive
    # requests and one more event here; tests run in file order
    assert got["/inline-event"] == 3
    assert got["/inline-batch-1"] == 2 and got["/inline-batch-2"] == 2
    assert got["/inline-origin"] == 2
    assert got["/inline-pixel"] == 1
    assert got["/inline-pipe-1"] == 2 and got["/inline-pipe-2"] == 1
    assert got["/inline-http10"] == 1
    assert got["/inline-keepalive"] == 20
    assert "/x" not in got
    text = proc.metrics()
    assert 'collector_http_requests_total{route="/api/event",status="202"}' in text


def test_every_error_answer_is_counted_once_by_route_and_as_a_rejection(proc):
    # after the tests above: inline and routed error answers, pipelined, half-closed, unread
    by_status: dict[int, float] = {}
    rejected: dict[int, float] = {}
    for line in proc.metrics().splitlines():
        if line.startswith(("collector_http_requests_total{", "collector_requests_rejected_total{")):
            status = int(line.split('status="')[1].split('"')[0])
            into = by_status if line.startswith("collector_http") else rejected
            into[status] = into.get(status, 0) + float(line.split()[-1])
    assert {k: v for k, v in by_status.items() if k >= 400} == rejected
    assert {400, 413, 415, 422} <= set(rejected)
    assert inline_answers(proc) < sum(by_status.values())


def test_while_draining_answers_close_the_connection_like_the_asgi_route(tmp_path):
    p = CollectorProcess(make_settings(tmp_path / "data"), tmp_path).start()
    too_large = request("POST", "/api/event", b"{" + b" " * 70000 + b"}")
    expect = (too_large[0][:-2] + b"Expect: 100-continue\r\n\r\n", too_large[1])  # the ASGI route, whole
    one = b"".join(request("POST", "/api/event", event("/inline-draining")))
    try:
        socks = [socket.create_connection(("127.0.0.1", p.settings.port), timeout=10) for _ in range(3)]
        p.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while httpx.get(p.url + "/readyz").status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.01)
        for s, data in zip(socks, (b"".join(too_large), b"".join(expect), one + one)):
            s.sendall(data)
        bufs = [bytearray() for _ in socks]
        inline, routed, beacon = [read_response(s, buf) for s, buf in zip(socks, bufs)]
        assert inline[0] == routed[0] == 413 and inline == routed
        assert inline[1]["connection"] == ["close"]
        assert beacon[0] == 202 and beacon[1]["connection"] == ["close"]
        for s, buf in zip(socks, bufs):  # closed, and the beacon pipelined behind the first not answered
            assert bytes(buf) + read_until_closed(s) == b""
            s.close()
    finally:
        assert p.stop() == 0


def test_a_full_spool_refuses_inline_beacons_all_or_nothing(tmp_path):
    """Storage down, the spool at its quota: beacons answered inline (several sharing one write, some
    pipelined) get 503 with Retry-After or 202; after recovery every 202 is stored once, no 503 is."""
    from tests.faults.harness import (Ledger, assert_exactly_once, assert_quiescent_conservation, body,
                                      fault_settings, marker, metrics, wait_for)

    flag = tmp_path / "storage-down"
    flag.touch()
    p = CollectorProcess(fault_settings(tmp_path / "data", spool_quota_bytes=48 * 1024, segment_bytes=16 * 1024,
                                        fault_store_file=str(flag)), tmp_path).start()
    ledger, seq = Ledger(), iter(range(10**6))
    try:
        socks = [socket.create_connection(("127.0.0.1", p.settings.port), timeout=10) for _ in range(4)]
        bufs = [bytearray() for _ in socks]
        for round_ in range(40):
            sent = []
            for i, s in enumerate(socks):  # one batch on each connection, pipelined pairs on some
                batches = [[marker("q", next(seq)) for _ in range(1 + (round_ + i + k) % 5)]
                           for k in range(2 if (round_ + i) % 3 == 0 else 1)]
                s.sendall(b"".join(b"".join(request("POST", "/api/batch", body(ms))) for ms in batches))
                sent.append(batches)
            for s, buf, batches in zip(socks, bufs, sent):
                for ms in batches:
                    status, headers, _ = read_response(s, buf)
                    assert status in (202, 503)
                    (ledger.acked if status == 202 else ledger.refused).update(ms)
                    if status == 503:
                        assert headers["retry-after"][0].isdigit()
        for s in socks:
            s.close()
        assert ledger.acked and ledger.refused
        m = metrics(p)
        assert m["collector_events_refused_total{reason=spool_full}"] == len(ledger.refused)
        assert m["collector_http_inline_answers_total"] > 0
        flag.unlink()
        wait_for(lambda: metrics(p)["collector_spool_unstored_records"] == 0, 90, what="the spool to drain")
        c = assert_quiescent_conservation(p)
        assert c["accepted"] == len(ledger.acked)
        assert len(assert_exactly_once(p, ledger)) == len(ledger.acked)
    finally:
        assert p.stop() == 0


def test_under_fsync_always_every_beacon_waits_for_its_fsync_on_the_asgi_route(tmp_path):
    p = CollectorProcess(make_settings(tmp_path / "data", fsync="always"), tmp_path).start()
    try:
        (answer,) = exchange(p, [b"".join(request("POST", "/api/event", event("/inline-always")))])
        assert answer[0] == 202
        assert inline_answers(p) == 0
    finally:
        p.stop()


def rejected(proc, status: int) -> int:
    for line in proc.metrics().splitlines():
        if line.startswith(f'collector_requests_rejected_total{{status="{status}"}}'):
            return int(float(line.split()[-1]))
    return 0


def test_the_protocols_own_error_answers_are_counted(proc):
    bad, big = rejected(proc, 400), rejected(proc, 431)
    with socket.create_connection(("127.0.0.1", proc.settings.port), timeout=10) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", proc.settings.port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: c\r\nX-Filler: " + b"a" * 70000)
        assert s.recv(100).startswith(b"HTTP/1.1 431")
    assert rejected(proc, 400) == bad + 1 and rejected(proc, 431) == big + 1
    text = proc.metrics()
    assert 'collector_http_requests_total{route="(protocol)",status="400"}' in text
    assert 'collector_http_requests_total{route="(protocol)",status="431"}' in text


def test_requests_of_one_turn_share_the_pipeline_each_with_its_own_outcome(tmp_path):
    """Requests arriving in the same event-loop turn on different connections are taken together,
    stage by stage (client and rate limit, body, pipeline); each gets the answer, the drops and the
    stored rows it would get alone, refusals at any stage included."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from collector.http.app import create_app
    from collector.http.inline import protocol_class

    settings = make_settings(tmp_path / "data", rate_burst=10000)
    bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    sent = []
    for i in range(12):
        body = event(f"/turn-{i}")
        ua = bot if i == 3 else UA
        if i == 5:
            body = event("/turn-x", "unknown.example")
        if i == 7:
            body = json.dumps([json.loads(event("/turn-7a")), json.loads(event("/turn-7b"))]).encode()
        if i == 9:
            body = b'{"n": "pageview", "u": '  # not JSON
        ctype = "application/xml" if i == 10 else "text/plain"
        path = "/api/batch" if i == 7 else "/api/event"
        sent.append((f"POST {path} HTTP/1.1\r\nHost: c\r\nUser-Agent: {ua}\r\nX-Forwarded-For: 81.2.69.{i + 1}\r\n"
                     f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)

    async def go():
        app = create_app(settings)
        svc = app.state.collector
        await svc.start()
        try:
            config = uvicorn.Config(app, http=protocol_class(settings.request_timeout_s, app), loop="none",
                                    log_config=None, access_log=False, lifespan="off", proxy_headers=False)
            config.load()
            state = ServerState()
            conns = []
            for raw in sent:
                p, t = config.http_protocol_class(config=config, server_state=state, app_state={}), MemoryTransport()
                p.connection_made(t)
                conns.append((p, t))
            for (p, _), raw in zip(conns, sent):
                p.data_received(raw)  # all before the loop runs: one turn
            for _ in range(20):
                await asyncio.sleep(0)
            assert svc.shared_runs == 9  # every request but the refused ones (no pipeline for them)
            assert svc.loader.flush_wait(30)
            rows = svc.store.query_rows("SELECT path FROM events WHERE path LIKE '/turn-%' ORDER BY path")
            return [t.out for _, t in conns], sorted(r[0] for r in rows), dict(svc.counts.dropped), svc.counts.accepted
        finally:
            await svc.stop()

    outs, paths, dropped, accepted = asyncio.run(go())
    statuses = [int(o.split(b" ", 2)[1]) for o in outs]
    # 422: the unknown site, 400: the body is not JSON, 415: the content type
    assert statuses == [202] * 5 + [422] + [202] * 3 + [400, 415, 202]
    assert paths == sorted([f"/turn-{i}" for i in range(12) if i not in (3, 5, 7, 9, 10)] + ["/turn-7a", "/turn-7b"])
    assert dropped.get("bot") == 1 and accepted == 10


def test_a_whole_beacon_read_skips_the_general_parser_and_keeps_no_header(tmp_path):
    """A read that is one whole beacon request is answered without httptools (collector/http/headparse.py),
    with the answer the parsed path gives the same bytes split over two reads; the beacon's scope holds
    no header at all, so Cookie and Authorization are never in it; anything else still goes to httptools."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from collector.http.app import create_app
    from collector.http.inline import protocol_class

    settings = make_settings(tmp_path / "data", rate_burst=10000)
    body = event("/whole-read")
    raw = (f"POST /api/event HTTP/1.1\r\nHost: c\r\nUser-Agent: {UA}\r\nX-Forwarded-For: 81.2.69.9\r\n"
           f"Cookie: session=s3cr3t-cookie\r\nAuthorization: Bearer s3cr3t-token\r\n"
           f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    class Counting:
        def __init__(self, parser):
            self.parser, self.feeds = parser, 0

        def feed_data(self, data):
            self.feeds += 1
            return self.parser.feed_data(data)

        def __getattr__(self, name):
            return getattr(self.parser, name)

    async def go():
        app = create_app(settings)
        svc = app.state.collector
        await svc.start()
        scopes = []
        inline = app.inline

        def watched(scope, body, respond, req=None):
            scopes.append(repr(scope).encode())
            return inline(scope, body, respond, req)

        app.inline = watched
        try:
            config = uvicorn.Config(app, http=protocol_class(settings.request_timeout_s, app), loop="none",
                                    log_config=None, access_log=False, lifespan="off", proxy_headers=False)
            config.load()
            state = ServerState()
            out = {}
            for name, reads in {"whole": [raw], "split": [raw[:40], raw[40:]],
                                "two in one read": [raw + raw]}.items():
                p, t = config.http_protocol_class(config=config, server_state=state, app_state={}), MemoryTransport()
                p.connection_made(t)
                p.parser = Counting(p.parser)
                for part in reads:
                    p.data_received(part)
                    for _ in range(10):
                        await asyncio.sleep(0)
                out[name] = (p.parser.feeds, t.out)
            return out, scopes
        finally:
            await svc.stop()

    out, scopes = asyncio.run(go())
    assert out["whole"][0] == 0 and out["split"][0] == 2 and out["two in one read"][0] == 1
    assert out["whole"][1] == out["split"][1] and out["whole"][1].startswith(b"HTTP/1.1 202")
    assert out["two in one read"][1].count(b"HTTP/1.1 202") == 2
    whole = scopes[0]  # as the beacon app got it, before anything read it
    assert b"'headers': []" in whole and b"s3cr3t" not in whole

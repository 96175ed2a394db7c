"""An oversized request gets its 413 although the client is still sending its body.

The collector answers as soon as it knows the body is too large, then reads and discards the rest
(up to a bound in bytes and time) before closing, as nginx's lingering close does: closing a socket
with unread data would send a reset, and the client would see that instead of the answer.
"""

from __future__ import annotations

import socket
import time

import pytest

from collector.http import deadlines
from collector.testing import CHROME_UA, CollectorProcess, make_settings

BODY = 800 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp("oversize")
    proc = CollectorProcess(make_settings(d / "data", request_timeout_s=3.0), d).start()
    try:
        yield proc
    finally:
        assert proc.stop() == 0


def head(length: int | None, path: str = "/api/event") -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nUser-Agent: {CHROME_UA}\r\n"
            f"{size}\r\n").encode()


def read_answer(sock: socket.socket) -> bytes:
    got = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            raise AssertionError(f"connection reset after {len(got)} bytes of answer: {got[:200]!r}") from None
        if not chunk:
            return got
        got += chunk


def send_oversized(port: int, chunked: bool = False, chunk: int = 16 * 1024) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)  # the client really is still sending
        s.sendall(head(None if chunked else BODY))
        payload = b"x" * chunk
        for _ in range(BODY // chunk):
            try:
                s.sendall(b"%x\r\n%s\r\n" % (len(payload), payload) if chunked else payload)
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise AssertionError(f"the server dropped the connection while the body was sent: {exc!r}") from None
        if chunked:
            s.sendall(b"0\r\n\r\n")
        return read_answer(s)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_client_still_sending_800_kb_reads_its_413(served, chunked):
    for _ in range(5):
        answer = send_oversized(served.settings.port, chunked)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"connection: close" in answer.lower()
        assert b'"error"' in answer  # the documented JSON body, whole
    assert served.internal("GET", "/healthz").status_code == 200


def test_normal_requests_on_the_same_server_still_work(served):
    with socket.create_connection(("127.0.0.1", served.settings.port), timeout=10) as s:
        body = b'{"n":"pageview","u":"https://example.org/","d":"example.org"}'
        for _ in range(2):  # keep-alive: the connection is reused
            s.sendall(head(len(body)) + body)
            got = b""
            while b"\r\n\r\nok" not in got:
                got += s.recv(65536)
            assert got.startswith(b"HTTP/1.1 202 ")


def test_draining_is_bounded_in_bytes_and_time(served):
    """A client that never stops sending is cut off: after at most the drain budget in bytes, or the
    request deadline in time, whichever comes first."""
    started = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", served.settings.port), timeout=10) as s:
        s.sendall(head(1 << 30))
        chunk = b"y" * 65536
        try:
            while time.monotonic() - started < 30:
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
    elapsed = time.monotonic() - started
    assert elapsed < served.settings.request_timeout_s + 5
    # the drain budget, plus what the kernel buffers on both sides
    assert sent < deadlines.DRAIN_MAX_BYTES + 16 * 1024 * 1024


def test_a_slow_oversized_client_is_cut_off_at_the_deadline(served):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", served.settings.port), timeout=20) as s:
        s.sendall(head(1 << 20) + b"z" * 1024)
        closed = False
        while time.monotonic() - started < 15 and not closed:
            try:
                s.sendall(b"z" * 100)
                time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        assert closed
    assert time.monotonic() - started < served.settings.request_timeout_s + 3

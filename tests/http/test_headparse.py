"""The one-pass reader of whole beacon requests (collector/http/headparse.py) against httptools: whatever
it accepts, httptools reads as the same single request (path, headers, body, keep-alive); what it does
not fully understand it leaves to httptools."""

from __future__ import annotations

import httptools
import pytest
from hypothesis import given, settings, strategies as st

from collector.http import headparse

UA = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
BODY = b'{"n":"pageview","u":"https://example.org/","d":"example.org"}'


def beacon(lines: list[bytes], body: bytes = BODY, line: bytes = b"POST /api/event HTTP/1.1") -> bytes:
    return line + b"\r\n" + b"".join(x + b"\r\n" for x in lines) + b"\r\n" + body


def plain(body: bytes = BODY, *extra: bytes) -> bytes:
    return beacon([b"Host: collector", b"User-Agent: " + UA, b"X-Forwarded-For: 81.2.69.142",
                   b"Content-Type: text/plain", b"Content-Length: %d" % len(body), *extra], body)


class _Reader:
    """httptools' reading of ``data``, as uvicorn takes it (names lower-cased, values right-stripped)."""

    def __init__(self, data: bytes):
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.messages = 0
        self.error = None
        self.parser = httptools.HttpRequestParser(self)
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self.error = exc

    def on_url(self, url):
        self.url += url

    def on_header(self, name, value):
        self.headers.append((name.lower(), value.rstrip(b" \t")))

    def on_headers_complete(self):
        self.keep_alive = self.parser.should_keep_alive()
        self.method = self.parser.get_method()
        self.version = self.parser.get_http_version()

    def on_body(self, body):
        self.body += body

    def on_message_complete(self):
        self.messages += 1


def assert_same_as_httptools(data: bytes) -> None:
    ours = headparse.parse(data)
    if ours is None:
        return
    path, headers, body, keep_alive = ours
    ref = _Reader(data)
    assert ref.error is None, ref.error
    assert ref.messages == 1
    assert (ref.method, ref.version, ref.url.decode()) == (b"POST", "1.1", path)
    assert headers == ref.headers
    assert body == ref.body
    assert keep_alive == ref.keep_alive


def test_a_plain_beacon_is_read_as_httptools_reads_it():
    data = plain()
    path, headers, body, keep_alive = headparse.parse(data)
    assert path == "/api/event" and body == BODY and keep_alive
    assert (b"user-agent", UA) in headers and (b"x-forwarded-for", b"81.2.69.142") in headers
    assert_same_as_httptools(data)
    batch = data.replace(b"/api/event", b"/api/batch", 1)
    assert headparse.parse(batch)[0] == "/api/batch"
    assert_same_as_httptools(batch)


def test_values_lose_surrounding_blanks_and_connection_close_ends_keep_alive():
    data = plain(BODY, b"Connection:  keep-alive, close \t", b"Origin:\t https://example.org ")
    path, headers, body, keep_alive = headparse.parse(data)
    assert not keep_alive and (b"origin", b"https://example.org") in headers
    assert_same_as_httptools(data)


@pytest.mark.parametrize("data", [
    plain(BODY)[:-1],  # body still to come
    plain(BODY) + plain(BODY),  # a second request pipelined behind
    plain(BODY, b"Content-Length: %d" % len(BODY)),  # repeated length
    plain(BODY, b"Transfer-Encoding: chunked"),
    plain(BODY, b"Expect: 100-continue"),
    plain(BODY, b"Upgrade: websocket", b"Connection: Upgrade"),
    plain(BODY, b"Connection: upgrade"),
    plain(BODY, b"X-Folded: a", b" continued"),  # obs-fold
    plain(BODY, b"Bad Name: x"),
    plain(BODY, b"Bad : x"),
    plain(BODY, b": no name"),
    plain(BODY, b"NoColon"),
    plain(BODY, b"X-Ctl: a\x01b"),
    plain(BODY, b"X-Lf: a\nb"),
    plain(BODY, b"X-Cr: a\rb"),
    plain(BODY, "X-Utf8: caf\u00e9".encode()),
    beacon([b"Content-Length: +%d" % len(BODY)]),
    beacon([b"Content-Length: %d" % len(BODY)], line=b"POST /api/event HTTP/1.0"),
    beacon([b"Content-Length: %d" % len(BODY)], line=b"POST /api/event?x=1 HTTP/1.1"),
    beacon([b"Content-Length: %d" % len(BODY)], line=b"PUT /api/event HTTP/1.1"),
    beacon([b"Content-Length: %d" % len(BODY)], line=b"POST /api/eventx HTTP/1.1"),
    beacon([b"Content-Length: %d" % len(BODY)], line=b"POST  /api/event HTTP/1.1"),
    beacon([], b""),  # no header lines at all
    beacon([b"Host: c"], b""),  # no length
    beacon([b"X-Big: " + b"a" * headparse.MAX_HEAD_BYTES, b"Content-Length: 2"], b"{}"),
])
def test_what_it_does_not_fully_understand_goes_to_httptools(data):
    assert headparse.parse(data) is None


_name = st.text("abcXYZ-_.!#0123456789", min_size=0, max_size=12).map(str.encode)
_value = st.binary(max_size=20).map(lambda b: bytes(c for c in b if c not in b"\r\n"))
_line = st.one_of(
    st.tuples(_name, st.sampled_from([b":", b": ", b" :", b"", b":\t"]), _value).map(b"".join),
    st.sampled_from([b"Connection: close", b"Connection: keep-alive", b"Transfer-Encoding: chunked",
                     b"Content-Length: 2", b"Content-Length: 02", b"Expect: 100-continue", b" folded",
                     b"Upgrade: h2c", b"Host: collector"]),
)


@settings(max_examples=600, deadline=None)
@given(lines=st.lists(_line, max_size=8), body=st.sampled_from([b"", b"{}", BODY, b"{}{}"]),
       declared=st.sampled_from([None, 0, 2, len(BODY)]),
       line=st.sampled_from([b"POST /api/event HTTP/1.1", b"POST /api/batch HTTP/1.1", b"POST /api/event HTTP/1.0"]))
def test_whatever_it_accepts_httptools_reads_the_same(lines, body, declared, line):
    if declared is not None:
        lines = [*lines, b"Content-Length: %d" % declared]
    assert_same_as_httptools(beacon(lines, body, line))

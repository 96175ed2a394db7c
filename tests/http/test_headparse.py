"""The one-pass reader of whole beacon requests (collector/http/headparse.py) against httptools: whatever
it accepts, httptools reads as the same single request (path, headers, body, keep-alive); what it does
not fully understand it leaves to httptools."""

from __future__ import annotations

import random
import string

import httptools
import pytest
from hypothesis import event, given, settings, strategies as st

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


NAMES = (b"user-agent", b"x-forwarded-for", b"origin", b"content-type", b"x-a", b"cookie")
read = headparse.Reader(NAMES)


def assert_same_as_httptools(data: bytes) -> bool:
    """Whether ``read`` took ``data``; if it did, httptools reads the same one request from it."""
    ours = read(data)
    if ours is None:
        return False
    path, values, body, keep_alive = ours
    ref = _Reader(data)
    assert ref.error is None, ref.error
    assert ref.messages == 1
    assert (ref.method, ref.version, ref.url.decode()) == (b"POST", "1.1", path)
    sent = [[v for n, v in ref.headers if n == name] for name in NAMES]
    assert all(len(s) <= 1 for s in sent)
    assert values == [s[0] if s else None for s in sent]
    assert body == ref.body
    assert keep_alive == ref.keep_alive
    return True


def test_a_plain_beacon_is_read_as_httptools_reads_it():
    data = plain()
    path, values, body, keep_alive = read(data)
    assert path == "/api/event" and body == BODY and keep_alive
    assert values == [UA, b"81.2.69.142", None, b"text/plain", None, None]
    assert assert_same_as_httptools(data)
    batch = data.replace(b"/api/event", b"/api/batch", 1)
    assert read(batch)[0] == "/api/batch"
    assert assert_same_as_httptools(batch)


def test_values_lose_surrounding_blanks_and_connection_close_ends_keep_alive():
    data = plain(BODY, b"Connection:  keep-alive, close \t", b"Origin:\t https://example.org ", b"x-A:", b"Cookie: s=1")
    path, values, body, keep_alive = read(data)
    assert not keep_alive and values[2:] == [b"https://example.org", b"text/plain", b"", b"s=1"]
    assert assert_same_as_httptools(data)


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
    plain(BODY, b"Origin: https://a.example", b"Origin: https://b.example"),  # a named header repeated
    plain(BODY, b"X-A: 1", b"x-a: 2"),
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
    assert read(data) is None


_name = st.one_of(st.text("abcXYZ-_.!#0123456789", min_size=0, max_size=12).map(str.encode),
                  st.sampled_from(NAMES + (b"User-Agent", b"ORIGIN", b"Content-Length", b"Connection")))
_value = st.binary(max_size=20).map(lambda b: bytes(c for c in b if c not in b"\r\n"))
_printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"), max_size=20).map(str.encode)
_good_line = st.tuples(st.sampled_from(NAMES + (b"Host", b"X-Other", b"ORIGIN", b"Connection")),
                       st.sampled_from([b": ", b":", b":\t", b":  "]), _printable).map(b"".join)
_line = st.one_of(
    _good_line, _good_line, _good_line,
    st.tuples(_name, st.sampled_from([b":", b": ", b" :", b"", b":\t"]), _value).map(b"".join),
    st.sampled_from([b"Connection: close", b"Connection: keep-alive", b"Transfer-Encoding: chunked",
                     b"Content-Length: 2", b"Content-Length: 02", b"Expect: 100-continue", b" folded",
                     b"Upgrade: h2c", b"Host: collector"]),
)


@settings(max_examples=800, deadline=None)
@given(lines=st.lists(_line, max_size=6, unique_by=lambda x: x.partition(b":")[0].lower()), body=st.sampled_from([b"", b"{}", BODY, b"{}{}"]),
       declared=st.sampled_from([None, "exact", "exact", 0, 2]),
       line=st.sampled_from([b"POST /api/event HTTP/1.1", b"POST /api/batch HTTP/1.1", b"POST /api/event HTTP/1.0"]))
def test_whatever_it_accepts_httptools_reads_the_same(lines, body, declared, line):
    if declared is not None:
        lines = [*lines, b"Content-Length: %d" % (len(body) if declared == "exact" else declared)]
    taken = assert_same_as_httptools(beacon(lines, body, line))
    event("taken" if taken else "left to httptools")


def test_the_generated_heads_include_taken_ones():
    # the property above is not vacuous: heads of its shape are taken
    assert assert_same_as_httptools(beacon([b"X-A: 1", b"Content-Length: 2"], b"{}"))


def test_well_formed_heads_are_taken_and_read_as_httptools_reads_them():
    rnd = random.Random(5)
    names = [b"User-Agent", b"x-forwarded-for", b"Origin", b"content-type", b"X-A", b"Cookie", b"Host", b"Accept",
             b"Connection", b"Sec-GPC", b"Referer"]
    taken = 0
    for _ in range(2000):
        lines = []
        for name in rnd.sample(names, rnd.randint(0, len(names))):
            value = "".join(rnd.choice(string.printable[:95] + "\t") for _ in range(rnd.randint(0, 30)))
            lines.append(name + rnd.choice([b":", b": ", b":\t"]) + value.encode())
        body = rnd.choice([b"", b"{}", BODY])
        lines.insert(rnd.randint(0, len(lines)), b"Content-Length: %d" % len(body))
        data = beacon(lines, body, rnd.choice(list(headparse.LINES)))
        upgrade = any(x.lower().startswith(b"connection:") and b"upgrade" in x.lower() for x in lines)
        assert assert_same_as_httptools(data) is not upgrade
        taken += not upgrade
    assert taken > 1900


@pytest.mark.parametrize("line", [
    b"Proxy-Connection: close", b"Proxy-Connection:  \tclose\t", b"Proxy-Connection: x, close",
    b"Connection: closed", b"Connection: xclose", b"Connection: foo-close", b"Connection: close;x",
    b"Connection: close!", b"Connection: keep-alive close", b"Connection: close keep-alive",
    b"Connection: x\tclose", b"Connection: close\tx", b"Connection: ,close", b"Connection: x ,close",
    b"Connection: x,\tclose", b"Connection: CLOSE", b"Connection: \tclose\t", b"Connection: keep-alive",
])
def test_keep_alive_is_decided_by_close_tokens_as_httptools_decides_it(line):
    # llhttp reads Proxy-Connection like Connection, and only a whole comma-separated "close" token counts
    assert assert_same_as_httptools(beacon([b"Host: h", line, b"Content-Length: %d" % len(BODY)]))


def test_a_content_length_too_long_for_an_int_is_left_to_httptools():
    assert read(beacon([b"Content-Length: " + b"0" * 5000 + b"2"], b"{}")) is None


@pytest.mark.parametrize("value", [
    lambda n: b" " * n + b"\x01", lambda n: b"\t" * n + b"\x7f", lambda n: b"a" + b" " * n + b"\x01",
    lambda n: b"a " * (n // 2) + b"\x01", lambda n: b" " * (n // 2) + b"a" + b" " * (n // 2) + b"\x01",
])
def test_a_bad_header_line_is_refused_in_time_linear_in_its_length(value):
    import time

    def seconds(n: int) -> float:
        data = beacon([b"X:" + value(n), b"Content-Length: 2"], b"{}")
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(10):
                assert read(data) is None
            best = min(best, time.perf_counter() - t0)
        return best

    # 8x the line: about 8x the time when linear, 64x when quadratic (an all-blank value was)
    assert seconds(14000) / seconds(1750) < 24

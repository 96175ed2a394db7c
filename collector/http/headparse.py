"""A whole beacon request read in one pass, for the protocol's inline path (``collector.http.inline``).

Most beacons arrive as one read holding one request: ``POST /api/event HTTP/1.1`` (or ``/api/batch``),
a few plain header lines and a body of exactly ``Content-Length`` bytes. ``parse`` takes such a read
apart with a handful of bytes operations, where the general parser calls back into Python for the
message, the URL, every header line and the body, and builds uvicorn's request cycle around them.

It accepts only what it fully understands and answers ``None`` for everything else, which then goes
to httptools exactly as before:

- a request line other than the two exact beacon lines (another method, path, query, HTTP version);
- any byte in the head outside printable ASCII and tab, a CR or LF that is not part of a CRLF;
- a header line that is not ``token ":" value`` (an obs-fold, a space before the colon, no name);
- ``Transfer-Encoding``, ``Expect``, ``Upgrade``, a ``Connection`` that asks for an upgrade;
- no ``Content-Length``, a repeated one, one that is not all digits, or a body of another length
  (part of the body still to come, or a second request pipelined behind the first);
- a head longer than ``MAX_HEAD_BYTES``.

So nothing this accepts is read differently from the general parser: it is the same request, with
header names lower-cased and values stripped of surrounding blanks, as uvicorn gives them.
"""

from __future__ import annotations

LINES = {b"POST /api/event HTTP/1.1": "/api/event", b"POST /api/batch HTTP/1.1": "/api/batch"}
MAX_HEAD_BYTES = 16 * 1024

_HEAD_BYTES = bytes(range(0x20, 0x7F)) + b"\t\r\n"
_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_REFUSED = frozenset({b"transfer-encoding", b"expect", b"upgrade"})
_SPECIAL = _REFUSED | {b"content-length", b"connection"}


def parse(data: bytes) -> tuple[str, list[tuple[bytes, bytes]], bytes, bool] | None:
    """``(path, headers, body, keep_alive)`` of the one whole beacon request ``data`` holds, else None."""
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES)
    if end < 0:
        return None
    first = data.find(b"\r\n")
    path = LINES.get(data[:first])
    if path is None or first == end:
        return None
    block = data[first + 2:end]
    crlf = block.count(b"\r\n")
    if block.translate(None, _HEAD_BYTES) or block.count(b"\r") != crlf or block.count(b"\n") != crlf:
        return None
    headers = []
    length = None
    keep_alive = True
    for line in block.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon or not name or name.translate(None, _TOKEN):
            return None
        name = name.lower()
        value = value.strip(b" \t")
        if name in _SPECIAL:
            if name in _REFUSED:
                return None
            if name == b"content-length":
                if length is not None or not value.isdigit():
                    return None
                length = int(value)
            else:
                tokens = value.lower()
                if b"upgrade" in tokens:
                    return None
                if b"close" in tokens:
                    keep_alive = False
        headers.append((name, value))
    body = data[end + 4:]
    if length is None or len(body) != length:
        return None
    return path, headers, body, keep_alive

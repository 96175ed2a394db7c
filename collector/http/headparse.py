"""A whole beacon request read in one pass, for the protocol's inline path (``collector.http.inline``).

Most beacons arrive as one read holding one request: ``POST /api/event HTTP/1.1`` (or ``/api/batch``),
a few plain header lines and a body of exactly ``Content-Length`` bytes. ``Reader`` checks such a
read with one regular expression and takes out only the header values its caller names, where the
general parser calls back into Python for the message, the URL, every header line and the body, and
builds uvicorn's request cycle around them. Headers it is not asked for (``Cookie``,
``Authorization``, everything else) are never read or kept.

It accepts only what it fully understands and answers ``None`` for everything else, which then goes
to httptools exactly as before:

- a request line other than the two exact beacon lines (another method, path, query, HTTP version);
- a header line that is not ``token ":" value`` with the value in printable ASCII and tab (an
  obs-fold, a space before the colon, no name, a control byte, a lone CR or LF, non-ASCII bytes);
- ``Transfer-Encoding``, ``Expect``, ``Upgrade``, a ``Connection`` (or ``Proxy-Connection``) that
  names an upgrade;
- no ``Content-Length``, a repeated one, one that is not all digits (or longer than 18), or a body of
  another length
  (part of the body still to come, or a second request pipelined behind the first);
- a named header that appears more than once (the general path joins or picks among repeats);
- a head longer than ``MAX_HEAD_BYTES``.

So nothing it accepts is read differently from the general parser: the same request, each value
stripped of surrounding blanks, as uvicorn gives it.
"""

from __future__ import annotations

import re

LINES = {b"POST /api/event HTTP/1.1": "/api/event", b"POST /api/batch HTTP/1.1": "/api/batch"}
MAX_HEAD_BYTES = 16 * 1024

# one header line, from the LF before it to the CRLF that ends it: a token, a colon, then printable
# ASCII and tabs (so a line with anything else, or split by a lone CR or LF, does not match, and the
# count of matches against the count of LFs shows it); the value without the blanks around it
# The blanks before the value are taken possessively, so an all-blank value that ends badly fails in
# one pass (with both blank runs free to trade characters it took time quadratic in its length).
_LINE = re.compile(rb"\n([!#$%&'*+\-.^_`|~0-9A-Za-z]++):[ \t]*+((?:[\x20-\x7e\t]*[\x21-\x7e])?)[ \t]*\r(?=\n)")
_REFUSED = (b"transfer-encoding", b"expect", b"upgrade")
_CONNECTION = (b"connection", b"proxy-connection")  # ``close`` among their comma-separated tokens ends keep-alive


class Reader:
    """Reads whole beacon requests, giving the values of ``names`` (lower-case header names)."""

    def __init__(self, names: tuple[bytes, ...]):
        self.names = tuple(names)

    def __call__(self, data: bytes) -> tuple[str, list[bytes | None], bytes, bool] | None:
        """``(path, values, body, keep_alive)`` of the one whole beacon request ``data`` holds, with the
        value of each of ``names`` (None: not sent), else None."""
        end = data.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES)
        if end < 0:
            return None
        first = data.find(b"\r\n")
        path = LINES.get(data[:first])
        if path is None or first == end:
            return None
        block = data[first:end + 2]  # CRLF, then each header line with its CRLF
        lines = block.count(b"\n") - 1
        pairs = _LINE.findall(block)
        if len(pairs) != lines:
            return None  # a line not of the form, or a lone CR or LF
        heads = {name.lower(): value for name, value in pairs}
        if len(heads) != lines:
            return None  # a repeated name: the general path joins or picks among repeats
        for name in _REFUSED:
            if name in heads:
                return None
        length = heads.get(b"content-length")
        if length is None or len(length) > 18:  # 18 digits: any body length there is, as an int
            return None
        if not length.isdigit() or int(length) != len(data) - end - 4:
            return None
        keep_alive = True
        for name in _CONNECTION:  # llhttp reads Proxy-Connection as it reads Connection
            tokens = heads.get(name)
            if tokens is not None:
                tokens = tokens.lower()
                if b"upgrade" in tokens:
                    return None
                if any(t.strip(b" \t") == b"close" for t in tokens.split(b",")):
                    keep_alive = False
        return path, list(map(heads.get, self.names)), data[end + 4:], keep_alive

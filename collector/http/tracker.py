"""Serves the browser tracker, ``GET /t.js``: compacted once at startup, with an ETag, caching headers and gzip.

The source in ``collector/static/t.js`` is hand-written; serving drops its comment lines and
indentation (nothing else), so the file stays readable and the bytes on the wire stay small.
"""

from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SOURCE = Path(__file__).resolve().parent / "static" / "t.js"
MAX_AGE_S = 3600
VERSIONED_MAX_AGE_S = 365 * 86400


def compact(source: str) -> str:
    """Removes whole-line ``//`` comments, blank lines and leading/trailing spaces of each line."""
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"


class Script:
    def __init__(self, source: str):
        self.body = compact(source).encode()
        self.gzipped = gzip.compress(self.body, compresslevel=9, mtime=0)
        self.version = hashlib.sha256(self.body).hexdigest()[:16]
        self.etag = f'"{self.version}"'


@lru_cache(maxsize=1)
def script() -> Script:
    return Script(SOURCE.read_text(encoding="utf-8"))


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not q.startswith("q=") or q[2:].strip() not in ("0", "0.0", "0.00", "0.000")
    return False


async def tracker(request: Request) -> Response:
    js = script()
    # A URL carrying the current version (?v=...) never changes, so it may be cached for a year.
    versioned = request.query_params.get("v") == js.version
    headers = {
        "ETag": js.etag,
        "Cache-Control": f"public, max-age={VERSIONED_MAX_AGE_S}, immutable" if versioned
        else f"public, max-age={MAX_AGE_S}, must-revalidate",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    inm = request.headers.get("if-none-match", "")
    if inm and (inm.strip() == "*" or js.etag in (t.strip().removeprefix("W/") for t in inm.split(","))):
        return Response(status_code=304, headers=headers)
    body = js.body
    if _accepts_gzip(request.headers.get("accept-encoding", "")):
        body = js.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/javascript; charset=utf-8", headers=headers)


route = Route("/t.js", tracker, methods=["GET", "HEAD"])

"""Bearer credentials of the internal listener's two roles: *admin* (erasure, keys, spool, every table
through the sandbox) and *analyst* (the documented views only, read-only, within limits).

Tokens are compared in constant time; an empty, short or malformed header never matches.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

from collector.credentials import usable
from collector.errors import Forbidden, Unauthorized

ADMIN, ANALYST = "admin", "analyst"


def role_of(request: Request) -> str:
    """The role the request's bearer token grants; Unauthorized when it grants none."""
    svc = request.app.state.collector
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and usable(token):
        given = token.encode()
        if hmac.compare_digest(given, svc.admin_token.encode()):
            return ADMIN
        if hmac.compare_digest(given, svc.analyst_token.encode()):
            return ANALYST
    raise Unauthorized("this endpoint needs Authorization: Bearer <admin or analyst token>")


def require(request: Request, role: str) -> str:
    got = role_of(request)
    if role == ADMIN and got != ADMIN:
        raise Forbidden("this endpoint needs the admin token")
    return got


def proof(token: str, nonce: str) -> str:
    """What the collector answers to a nonce, to show a client it holds the admin token without the
    client sending it first."""
    return hmac.new(token.encode(), b"collector-hello\x1f" + nonce.encode(), "sha256").hexdigest()

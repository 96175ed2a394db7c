"""Identity tokens: a site's backend vouches for a consented member login.

The token is a compact JWS (JWT) with ``alg`` HS256, signed with the site's secret, so any backend
with a JWT library can mint one. Claims:

- ``sub``: the member reference (opaque to us; only its keyed pseudonym is ever stored)
- ``aud``: the site's domain
- ``pur``: the purposes the member consented to (linking needs ``analytics_linking``)
- ``iat``, ``exp``: issue and expiry times, Unix seconds
- ``jti``: a random id for this login session
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

LINKING = "analytics_linking"
MAX_TOKEN_BYTES = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Identity:
    member_ref: str
    site: str
    purposes: tuple[str, ...]
    issued_at: int
    expires_at: int
    token_id: str


class TokenRefused(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# a token links for at most this long after it was issued (a login session, not a standing credential)
MAX_TTL_S = 12 * 3600


def mint(secret: str, site: str, member_ref: str, purposes: list[str], ttl_s: int, now: float | None = None) -> str:
    if not 0 < int(ttl_s) <= MAX_TTL_S:
        raise ValueError(f"ttl must be between 1 and {MAX_TTL_S} seconds")
    now = int(time.time() if now is None else now)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"sub": member_ref, "aud": site, "pur": list(purposes), "iat": now, "exp": now + int(ttl_s),
              "jti": secrets.token_hex(8)}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(sig)}"


def verify(token: str, secret: str, site: str, now: float | None = None, leeway_s: int = 60) -> Identity:
    """The identity the token carries, or TokenRefused with a reason (counted, never shown to clients)."""
    if not secret:
        raise TokenRefused("no_site_secret")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
        raise TokenRefused("malformed")
    header_b64, body_b64, sig_b64 = token.split(".")
    expected = hmac.new(secret.encode(), f"{header_b64}.{body_b64}".encode(), hashlib.sha256).digest()
    try:
        sig = _unb64(sig_b64)
        header = json.loads(_unb64(header_b64))
        claims = json.loads(_unb64(body_b64))
    except (ValueError, TypeError, RecursionError):
        raise TokenRefused("malformed") from None
    if not hmac.compare_digest(sig, expected):
        raise TokenRefused("bad_signature")
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise TokenRefused("malformed")
    now = time.time() if now is None else now
    try:
        sub, aud, pur = claims["sub"], claims["aud"], claims.get("pur", [])
        iat, exp, jti = int(claims["iat"]), int(claims["exp"]), str(claims.get("jti", ""))
    except (KeyError, TypeError, ValueError, OverflowError):
        raise TokenRefused("malformed") from None
    if not isinstance(sub, str) or not sub or not isinstance(pur, list):
        raise TokenRefused("malformed")
    if aud != site:
        raise TokenRefused("wrong_site")
    if exp <= now:
        raise TokenRefused("expired")
    if exp - iat > MAX_TTL_S:
        raise TokenRefused("lifetime_too_long")
    if iat > now + leeway_s:
        raise TokenRefused("not_yet_valid")
    return Identity(sub, site, tuple(str(p) for p in pur), iat, exp, jti)

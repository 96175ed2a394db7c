"""The public beacon endpoints: /api/event, /api/batch, /p.gif, and the server-to-server /api/consent.

``Cookie`` and ``Authorization`` headers on these endpoints are never read.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from starlette.requests import Request
from starlette.responses import Response

from collector.delivery import record
from collector.errors import BadRequest, Conflict, PayloadTooLarge, Unauthorized, UnknownSite, UnsupportedMediaType
from collector.http.decode import decode_events, normalize, parse_json
from collector.pipeline.origin import origin_of_url
from collector.privacy.consent import ACTIONS
from collector.privacy.keys import member_pseudonym

ACCEPTED = Response(b"ok", status_code=202, media_type="text/plain")
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
       b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
CONTENT_TYPES = ("text/plain", "application/json")
CONSENT_WINDOW_S = 300  # a signed consent call is accepted this long around its ts, and only once


def headers_of(request: Request) -> dict[bytes, bytes]:
    """The request's headers as a dict (first value of a repeated name), built once per request."""
    scope = request.scope
    h = scope.get("collector.headers")
    if h is None:
        h = scope["collector.headers"] = dict(reversed(scope["headers"]))
    return h


def client_context(request: Request) -> tuple[str, str, bool]:
    h = headers_of(request)
    peer = request.client.host if request.client else ""
    xff = h.get(b"x-forwarded-for")
    gpc = h.get(b"sec-gpc") == b"1" or h.get(b"dnt") == b"1"
    if xff is not None or not gpc:
        # repeated header lines: X-Forwarded-For is one comma-joined list (RFC 9110), and any GPC/DNT
        # line saying 1 counts
        xff_lines, signals = [], []
        for name, value in request.scope["headers"]:
            if name == b"x-forwarded-for":
                xff_lines.append(value)
            elif name in (b"sec-gpc", b"dnt"):
                signals.append(value.strip())
        if len(xff_lines) > 1:
            xff = b",".join(xff_lines)
        gpc = gpc or b"1" in signals
    ip = request.app.state.client_ip.resolve(peer, xff.decode("latin-1") if xff else None)
    ua = h.get(b"user-agent", b"").decode("latin-1")
    return ip, ua, gpc


async def read_body(request: Request, limit: int) -> bytes:
    declared = headers_of(request).get(b"content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"body larger than {limit} bytes")
        except ValueError:
            raise BadRequest("invalid Content-Length") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_content_type(request: Request) -> None:
    ctype = headers_of(request).get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
    if ctype not in CONTENT_TYPES:
        raise UnsupportedMediaType("Content-Type must be text/plain or application/json")


def site_for(request: Request, domain: str):
    site = request.app.state.collector.settings.site(domain)
    if site is None:
        raise UnknownSite(f"unknown site {domain[:80]!r}: add it to the collector's sites")
    return site


async def _ingest(request: Request, batch: bool) -> Response:
    svc = request.app.state.collector
    ip, ua, gpc = client_context(request)
    request.app.state.ratelimit.check(ip)
    check_content_type(request)
    body = await read_body(request, svc.settings.max_body_bytes)
    payloads = decode_events(body, svc.settings, batch)
    by_site: dict[str, list[dict]] = {}
    for p in payloads:
        by_site.setdefault(p["domain"], []).append(p)
    sites = [(site_for(request, d), ps) for d, ps in by_site.items()]
    origin = headers_of(request).get(b"origin")
    await svc.ingest(sites, ip, ua, gpc, origin.decode("latin-1") if origin is not None else None)
    return ACCEPTED


async def event(request: Request) -> Response:
    return await _ingest(request, batch=False)


async def batch(request: Request) -> Response:
    return await _ingest(request, batch=True)


async def pixel(request: Request) -> Response:
    svc = request.app.state.collector
    ip, ua, gpc = client_context(request)
    request.app.state.ratelimit.check(ip)
    raw = dict(request.query_params)
    raw.setdefault("n", "pageview")
    referer = request.headers.get("referer")
    if "u" not in raw and "url" not in raw and referer:
        raw["u"] = referer
    payload = normalize(raw, svc.settings)
    site = site_for(request, payload["domain"])
    origin = request.headers.get("origin") or (origin_of_url(referer) if referer else None)
    await svc.ingest([(site, [payload])], ip, ua, gpc, origin)
    return Response(GIF, media_type="image/gif", headers={"Cache-Control": "no-store"})


def verify_signature(secret: str, body: bytes, header: str | None) -> None:
    if not secret:
        raise Unauthorized("this site has no secret configured")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not header or not hmac.compare_digest(header.strip(), expected):
        raise Unauthorized("X-Collector-Signature does not match the body signed with the site secret")


async def consent(request: Request) -> Response:
    """Server-to-server: record a grant or withdrawal. Body signed with the site secret."""
    svc = request.app.state.collector
    body = await read_body(request, 8192)
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise BadRequest("body must be a JSON object")
    site = site_for(request, str(doc.get("site", "")))
    verify_signature(site.secret, body, request.headers.get("x-collector-signature"))
    ref, purpose, action = doc.get("member_ref"), doc.get("purpose"), doc.get("action")
    version = doc.get("policy_version", "")
    if not isinstance(ref, str) or not ref or len(ref) > 256:
        raise BadRequest("member_ref must be a non-empty string")
    if not isinstance(purpose, str) or not purpose or len(purpose) > 64:
        raise BadRequest("purpose must be a non-empty string")
    if action not in ACTIONS:
        raise BadRequest("action must be grant or withdraw")
    if not isinstance(version, str) or len(version) > 64:
        raise BadRequest("policy_version must be a string")
    signed_at, nonce = doc.get("ts"), doc.get("nonce")
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
        raise BadRequest("nonce must be a random string of 16 to 128 characters, new for every call")
    if isinstance(signed_at, bool) or not isinstance(signed_at, (int, float)) or \
            abs(signed_at - time.time()) > CONSENT_WINDOW_S:
        raise Unauthorized(f"ts must be the call's Unix time in seconds, within {CONSENT_WINDOW_S} s of the "
                           "collector's clock")
    member_id = member_pseudonym(svc.keys.member_key(), site.domain, ref)
    ts_ms = int(time.time() * 1000)
    if not svc.consent.record(site.domain, member_id, purpose, action, ts_ms, version, nonce):
        raise Conflict("this signed call was recorded before (its nonce was used): nothing recorded")
    row = {"site": site.domain, "member_id": member_id, "purpose": purpose, "action": action,
           "policy_version": version, "ts": ts_ms / 1000}
    await svc.spool_records([record.encode("consent_ledger", row, ts_ms)])
    return Response(b'{"recorded":true}', status_code=202, media_type="application/json")

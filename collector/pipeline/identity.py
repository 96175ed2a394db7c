"""Forward-only linking: a verified, consented identity token moves the event to the member plane.

Refused tokens (missing secret, forged, expired, unconsented, withdrawn, or any token under GPC/DNT)
leave the event anonymous and are counted by reason; the client's answer does not change.
Pages under a site's authenticated path prefixes (or flagged ``auth`` by the page) are member-plane
data as well, without a member pseudonym unless the token links them. Prefixes are matched on the
normalized path (case, repeated slashes, dot segments, ``;params`` and percent-encoding do not hide
a page), with or without its trailing slash.

Nothing timed before the token was issued links (no backward linking, whatever ``ts`` a client sends).

What the member plane keeps is chosen so that its rows cannot be joined back to the visitor's
anonymous events around the login (see docs/privacy.md, "Unlinkable planes"): the login's day plus
the time since the login (order and durations, never the time of day), browser and OS family without
versions, device class, country and platform; no region, city, network, prefix, app version or
device model.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache
from urllib.parse import unquote

from collector.pipeline.event import Event
from collector.privacy.keys import mac, member_pseudonym
from collector.privacy.tokens import LINKING, TokenRefused, verify


class IdentityStep:
    name = "identity"

    def __init__(self, keys, consent, settings):
        self.keys = keys
        self.consent = consent
        self.refused: Counter[str] = Counter()

    def link(self, ev: Event, token: str) -> int | None:
        """Links the event; returns the login time (the token's issue), or None when refused."""
        if ev.gpc:
            self.refused["gpc"] += 1
            return None
        try:
            ident = verify(token, ev.site.secret, ev.site.domain, now=ev.received_ms / 1000)
        except TokenRefused as r:
            self.refused[r.reason] += 1
            return None
        if ev.row["ts"] < ident.issued_at:
            self.refused["before_issue"] += 1
            return None
        if LINKING not in ident.purposes:
            self.refused["unconsented"] += 1
            return None
        mkey = self.keys.member_key()
        member_id = member_pseudonym(mkey, ev.site.domain, ident.member_ref)
        if self.consent.withdrawn_at(ev.site.domain, member_id, LINKING) >= ident.issued_at * 1000:
            self.refused["withdrawn"] += 1
            return None
        ev.row["member_id"] = member_id
        ev.row["session_id"] = mac(mkey, "session", ev.site.domain, ident.member_ref, ident.token_id, str(ident.issued_at))
        return ident.issued_at

    def __call__(self, ev: Event) -> Event:
        token = ev.payload.get("identity")
        login = self.link(ev, token) if token else None
        linked = login is not None
        if linked or ev.payload.get("auth") or authenticated(ev.payload.get("url", ""), ev.site.auth_prefixes):
            ev.table = "member_events"
            if not linked:
                ev.row["member_id"] = ev.row["session_id"] = ""
            coarsen(ev.row, login)
        return ev


# member-plane rows keep these quasi-identifiers empty (see the module docstring)
DROPPED_ON_MEMBER_PLANE = {"browser_version": "", "os_version": "", "region": "", "region_name": "", "city": "", "asn": 0, "isp": "",
                           "ip_prefix": "", "app_version": "", "device_model": ""}


def coarsen(row: dict, login_s: float | None) -> None:
    """Member-plane time is the login's UTC day plus the time since the login: a session keeps its
    order and durations, never the time of day it happened. Rows without a login keep only the day."""
    row.update(DROPPED_ON_MEMBER_PLANE)
    ts = row["ts"]
    if login_s is None:
        row["ts"] = math.floor(ts / 86400) * 86400
    else:
        row["ts"] = math.floor(login_s / 86400) * 86400 + max(0.0, round(ts - login_s, 3))


@lru_cache(maxsize=8192)
def normalized_path(url: str) -> str:
    """The path of a page URL as a server would route it: decoded to a fixed point, lower case,
    ``;params`` removed, repeated slashes and dot segments resolved."""
    path = url
    if "://" in path:
        path = path.split("://", 1)[1]
        path = "/" + path.split("/", 1)[1] if "/" in path else "/"
    path = path.split("?", 1)[0].split("#", 1)[0]
    for _ in range(4):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    path = path.replace("\\", "/").lower()
    out: list[str] = []
    for seg in path.split("/"):
        seg = seg.split(";", 1)[0].strip()
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    return "/" + "/".join(out)


def authenticated(url: str, prefixes: tuple[str, ...]) -> bool:
    if not prefixes:
        return False
    path = normalized_path(url[:2048])
    return any(path == p or path.startswith(p + "/") for p in _prefixes(prefixes))


@lru_cache(maxsize=256)
def _prefixes(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(normalized_path(p).rstrip("/") or "/" for p in prefixes)

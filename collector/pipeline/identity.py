"""Forward-only linking: a verified, consented identity token moves the event to the member plane.

Refused tokens (missing secret, forged, expired, unconsented, withdrawn, or any token under GPC/DNT)
leave the event anonymous and are counted by reason; the client's answer does not change.
Pages under a site's authenticated path prefixes (or flagged ``auth`` by the page) are member-plane
data as well, without a member pseudonym unless the token links them.
"""

from __future__ import annotations

from collections import Counter

from collector.pipeline.event import Event
from collector.privacy.keys import mac, member_pseudonym
from collector.privacy.tokens import LINKING, TokenRefused, verify


class IdentityStep:
    name = "identity"

    def __init__(self, keys, consent, settings):
        self.keys = keys
        self.consent = consent
        self.refused: Counter[str] = Counter()

    def link(self, ev: Event, token: str) -> bool:
        if ev.gpc:
            self.refused["gpc"] += 1
            return False
        try:
            ident = verify(token, ev.site.secret, ev.site.domain, now=ev.received_ms / 1000)
        except TokenRefused as r:
            self.refused[r.reason] += 1
            return False
        if LINKING not in ident.purposes:
            self.refused["unconsented"] += 1
            return False
        mkey = self.keys.member_key()
        member_id = member_pseudonym(mkey, ev.site.domain, ident.member_ref)
        if self.consent.withdrawn_at(ev.site.domain, member_id, LINKING) >= ident.issued_at * 1000:
            self.refused["withdrawn"] += 1
            return False
        ev.row["member_id"] = member_id
        ev.row["session_id"] = mac(mkey, "session", ev.site.domain, ident.member_ref, ident.token_id, str(ident.issued_at))
        return True

    def __call__(self, ev: Event) -> Event:
        token = ev.payload.get("identity")
        linked = bool(token) and self.link(ev, token)
        if linked or ev.payload.get("auth") or any(ev.row["path"].startswith(p) for p in ev.site.auth_prefixes):
            ev.table = "member_events"
            if not linked:
                ev.row["member_id"] = ev.row["session_id"] = ""
        return ev

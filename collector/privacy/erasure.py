"""Erasure of one member: every member-plane, consent-ledger and dead-lettered row of their pseudonym,
and their local consent records."""

from __future__ import annotations

import time

from collector.privacy.keys import member_pseudonym as _pseudonym

TABLES = ("member_events", "consent_ledger")


def member_pseudonym(keys, site: str, member_ref: str) -> str:
    return _pseudonym(keys.member_key(), site, member_ref)


def forget(store, consent, keys, site: str, member_ref: str, dead_letters=None) -> dict[str, int]:
    """Delete and report what was removed, per place. A second run reports zeros."""
    member_id = member_pseudonym(keys, site, member_ref)
    params = {"s": site, "m": member_id}
    removed: dict[str, int] = {}
    for table in TABLES:
        where = "site = {s:String} AND member_id = {m:String}"
        n = store.query_rows(f"SELECT count() FROM {table} WHERE {where}", parameters=params)[0][0]
        if n:
            store.command(f"ALTER TABLE {table} DELETE WHERE {where} SETTINGS mutations_sync = 2", parameters=params)
        removed[table] = int(n)
    removed["consent_state"] = consent.forget(site, member_id, int(time.time() * 1000))
    if dead_letters is not None:
        removed["dead_letters"] = dead_letters.forget(site, member_id)
    return removed

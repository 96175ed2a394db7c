"""Erasing one member everywhere the product wrote their rows: the consent state (so tokens issued
before the erasure never link again), the spool (records blanked in place, stored or not), the dead
letters, and ClickHouse (deleted through tombstones, or pending while storage is unreachable).

Used by the running collector's admin API and by the CLI when no collector runs.
"""

from __future__ import annotations

import time

from collector.delivery import record
from collector.errors import PERMANENT, StorageError, UnknownSite
from collector.privacy import erasure

PENDING = "pending"


def erase_member(settings, site: str, member_ref: str, *, keys, consent, spool, loader_lock, dead_letters, store,
                 pending: erasure.PendingErasures, peers=None) -> dict[str, int | str]:
    """``peers(site, member_id)``: blanks the member's records in the other workers' spools (see
    ``collector.peers``) and reports how many."""
    if settings.site(site) is None:
        raise UnknownSite(f"unknown site {site[:80]!r}: nothing can be erased for it")
    member_id = erasure.member_pseudonym(keys, site, member_ref)
    removed: dict[str, int | str] = {"consent_state": consent.forget(site, member_id, int(time.time() * 1000))}

    def blank(rec: bytes) -> bytes | None:
        return record.blanked(rec) if record.member_of(rec) == member_id else None

    with loader_lock:  # the loader neither reads the spool nor inserts until the member is gone
        removed["spool"] = spool.rewrite(blank)
        removed["dead_letters"] = dead_letters.forget(site, member_id)
        if peers is not None:
            removed.update(peers(site, member_id))
        try:
            stored = erasure.count_stored(store, member_id)
            erasure.delete_stored(store, [erasure.digest(member_id)])
            removed.update(stored)
        except StorageError as exc:
            if exc.kind == PERMANENT:
                raise
            pending.add(erasure.digest(member_id))
            removed.update({table: PENDING for table in erasure.TABLES})
    return removed

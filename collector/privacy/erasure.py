"""Erasure of one member: every member-plane, consent-ledger and dead-lettered row of their pseudonym,
their rows still in the spool, and their local consent records.

The stored rows are named through a tombstone: the SHA-256 of the pseudonym in the ``erasures``
table (``lower(hex(SHA256(member_id))) IN (SELECT digest FROM erasures)``), so no statement, mutation
entry or file ever holds the pseudonym; the tables holding such rows are rebuilt without them. When
storage is unreachable the deletion is kept as pending (``DATA_DIR/erasures.pending``, digests only)
and applied before the loader's next insert; rows still in the spool are blanked at once either way.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

from collector.files import replace_synced
from collector.privacy.keys import member_pseudonym as _pseudonym

TABLES = ("member_events", "consent_ledger")
WHERE = "lower(hex(SHA256(member_id))) IN (SELECT digest FROM erasures)"


def member_pseudonym(keys, site: str, member_ref: str) -> str:
    return _pseudonym(keys.member_key(), site, member_ref)


def digest(member_id: str) -> str:
    return hashlib.sha256(member_id.encode()).hexdigest()


def count_stored(store, member_id: str) -> dict[str, int]:
    params = {"d": digest(member_id)}
    return {t: int(store.query_rows(f"SELECT count() FROM {t} WHERE lower(hex(SHA256(member_id))) = {{d:String}}",
                                    parameters=params)[0][0]) for t in TABLES}


def delete_stored(store, digests: list[str]) -> None:
    """Record the tombstones, then remove every row they name. A table holding such rows is rebuilt
    without them and the old table dropped at once (``DROP … SYNC``): a mutation would leave the
    replaced parts, rows and all, on disk until a background cleanup that may come much later. The
    caller keeps the loader from inserting meanwhile."""
    now = time.time()
    rows = "\n".join(json.dumps({"digest": d, "erased_at": now}) for d in digests).encode()
    store.insert_json("erasures", rows, "erasure:" + ",".join(sorted(digests)))
    for table in TABLES:
        scratch = f"{table}_erasing"
        store.command(f"DROP TABLE IF EXISTS {scratch} SYNC")  # left by an erasure interrupted by a crash
        if not store.query_rows(f"SELECT count() FROM {table} WHERE {WHERE}")[0][0]:
            continue
        store.command(f"CREATE TABLE {scratch} AS {table}")
        store.command(f"INSERT INTO {scratch} SELECT * FROM {table} WHERE NOT ({WHERE})")
        store.command(f"EXCHANGE TABLES {table} AND {scratch}")
        store.command(f"DROP TABLE {scratch} SYNC")


class PendingErasures:
    """Digests whose stored rows could not be deleted yet (storage unreachable), kept on disk."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._digests = [x for x in self.path.read_text().split() if x]
        except FileNotFoundError:
            self._digests = []

    def __bool__(self) -> bool:
        return bool(self._digests)

    def add(self, d: str) -> None:
        with self._lock:
            if d not in self._digests:
                self._digests.append(d)
                self._save()

    def apply(self, store) -> int:
        """Delete what is pending; returns how many erasures completed (raises while storage fails)."""
        with self._lock:
            todo = list(self._digests)
            if not todo:
                return 0
            delete_stored(store, todo)
            self._digests = [d for d in self._digests if d not in todo]
            self._save()
            return len(todo)

    def _save(self) -> None:
        replace_synced(self.path, "".join(d + "\n" for d in self._digests).encode())

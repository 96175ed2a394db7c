"""The consent ledger's gate: the latest withdrawal per (site, member pseudonym, purpose).

Every grant and withdrawal is also stored in ClickHouse (``consent_ledger``) as the durable record;
this local file is what the request path consults, so a withdrawal takes effect at once even while
ClickHouse is unreachable. It holds member pseudonyms only, never member references.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from collector.files import append_synced, replace_synced

ACTIONS = ("grant", "withdraw")


ERASED = "erased"  # marker left by an erasure: tokens issued before it never link again


class ConsentState:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._withdrawn: dict[tuple[str, str, str], int] = {}
        self._erased: dict[tuple[str, str], int] = {}
        self._nonces: dict[str, int] = {}  # digest of a signed call's nonce -> when it was recorded (ms)
        self._load()

    def _load(self) -> None:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                self._apply(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line from a crash

    def _apply(self, rec: dict) -> None:
        if rec.get("nonce"):
            self._nonces[rec["nonce"]] = int(rec["ts_ms"])
        if rec["action"] == ERASED:
            key2 = (rec["site"], rec["member_id"])
            self._erased[key2] = max(self._erased.get(key2, 0), int(rec["ts_ms"]))
            return
        key = (rec["site"], rec["member_id"], rec["purpose"])
        if rec["action"] == "withdraw":
            self._withdrawn[key] = max(self._withdrawn.get(key, 0), int(rec["ts_ms"]))

    def record(self, site: str, member_id: str, purpose: str, action: str, ts_ms: int, policy_version: str,
               nonce: str = "") -> bool:
        """Record a grant or withdrawal; False (nothing recorded) when its nonce was recorded before:
        a replayed signed call."""
        rec = {"site": site, "member_id": member_id, "purpose": purpose, "action": action, "ts_ms": ts_ms,
               "policy_version": policy_version}
        if nonce:
            rec["nonce"] = hashlib.sha256(nonce.encode()).hexdigest()
        with self._lock:
            if nonce and rec["nonce"] in self._nonces:
                return False
            append_synced(self.path, (json.dumps(rec) + "\n").encode())
            self._apply(rec)
            if len(self._nonces) > 100_000:  # older than any accepted call's time window
                cutoff = ts_ms - 3_600_000
                self._nonces = {k: v for k, v in self._nonces.items() if v >= cutoff}
            return True

    def withdrawn_at(self, site: str, member_id: str, purpose: str) -> int:
        """When consent for the purpose was last withdrawn (ms), or the member erased; 0 if never."""
        return max(self._withdrawn.get((site, member_id, purpose), 0), self._erased.get((site, member_id), 0))

    def forget(self, site: str, member_id: str, now_ms: int) -> int:
        """Remove every grant and withdrawal of the member; returns how many were removed. What stays is
        one erasure marker (the pseudonym and a time, no consent data), so that identity tokens issued
        before the erasure never link again; a repeated erasure finds nothing more to remove."""
        with self._lock:
            try:
                lines = self.path.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            keep, removed = [], 0
            for line in lines:
                try:
                    rec = json.loads(line)
                    if rec["site"] == site and rec["member_id"] == member_id and rec["action"] != ERASED:
                        removed += 1
                        continue
                except (ValueError, KeyError, TypeError):
                    continue
                keep.append(line)
            if (site, member_id) not in self._erased:
                marker = {"site": site, "member_id": member_id, "purpose": "*", "action": ERASED, "ts_ms": now_ms}
                keep.append(json.dumps(marker))
                self._apply(marker)
            replace_synced(self.path, "".join(x + "\n" for x in keep).encode())
            for key in [k for k in self._withdrawn if k[0] == site and k[1] == member_id]:
                del self._withdrawn[key]
            return removed

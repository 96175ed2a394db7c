"""The consent ledger's gate: the latest withdrawal per (site, member pseudonym, purpose).

Every grant and withdrawal is also stored in ClickHouse (``consent_ledger``) as the durable record;
this local file is what the request path consults, so a withdrawal takes effect at once even while
ClickHouse is unreachable. It holds member pseudonyms only, never member references.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from collector.files import append_synced, replace_synced

ACTIONS = ("grant", "withdraw")


class ConsentState:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._withdrawn: dict[tuple[str, str, str], int] = {}
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
        key = (rec["site"], rec["member_id"], rec["purpose"])
        if rec["action"] == "withdraw":
            self._withdrawn[key] = max(self._withdrawn.get(key, 0), int(rec["ts_ms"]))

    def record(self, site: str, member_id: str, purpose: str, action: str, ts_ms: int, policy_version: str) -> None:
        rec = {"site": site, "member_id": member_id, "purpose": purpose, "action": action, "ts_ms": ts_ms,
               "policy_version": policy_version}
        with self._lock:
            append_synced(self.path, (json.dumps(rec) + "\n").encode())
            self._apply(rec)

    def withdrawn_at(self, site: str, member_id: str, purpose: str) -> int:
        return self._withdrawn.get((site, member_id, purpose), 0)

    def forget(self, site: str, member_id: str) -> int:
        """Remove every local record of the member; returns how many were removed."""
        with self._lock:
            try:
                lines = self.path.read_text().splitlines()
            except FileNotFoundError:
                return 0
            keep, removed = [], 0
            for line in lines:
                try:
                    rec = json.loads(line)
                    if rec["site"] == site and rec["member_id"] == member_id:
                        removed += 1
                        continue
                except (ValueError, KeyError, TypeError):
                    continue
                keep.append(line)
            replace_synced(self.path, "".join(x + "\n" for x in keep).encode())
            for key in [k for k in self._withdrawn if k[0] == site and k[1] == member_id]:
                del self._withdrawn[key]
            return removed

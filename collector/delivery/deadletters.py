"""Rows ClickHouse rejected permanently, kept for an operator to inspect, then expired."""

from __future__ import annotations

import calendar
import threading
import time
from pathlib import Path

import orjson

from collector.files import append_synced, replace_synced


class DeadLetters:
    """Rows ClickHouse rejected permanently, one JSON line each with the reason, the batch token,
    the time and the expiry. One file per UTC day (``YYYYMMDD.jsonl``), deleted after ``days``."""

    def __init__(self, directory: Path, days: int):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.days = days
        self._tokens: set[str] | None = None
        self._lock = threading.Lock()  # the loader appends while an erasure may rewrite

    def _known(self) -> set[str]:
        if self._tokens is None:
            self._tokens = set()
            for p in self.dir.glob("*.jsonl"):
                with open(p, "rb") as f:
                    for line in f:
                        try:
                            self._tokens.add(orjson.loads(line).get("token", ""))
                        except (orjson.JSONDecodeError, AttributeError):
                            continue
        return self._tokens

    def forget(self, site: str, member_id: str) -> int:
        """Remove the dead-lettered rows of one member (erasure). Returns how many were removed."""
        removed = 0
        with self._lock:
            for path in sorted(self.dir.glob("*.jsonl")):
                keep, mine = [], 0
                for line in path.read_bytes().splitlines():
                    try:
                        row = orjson.loads(line).get("row")
                    except (orjson.JSONDecodeError, AttributeError):
                        row = None
                    if isinstance(row, dict) and row.get("site") == site and row.get("member_id") == member_id:
                        mine += 1
                    else:
                        keep.append(line + b"\n")
                if mine:
                    replace_synced(path, b"".join(keep))
                    removed += mine
        return removed

    def write(self, rows: list[dict], reason: str, token: str = "") -> int:
        """Append the rows unless this token was dead-lettered before. Returns rows written."""
        with self._lock:
            return self._write(rows, reason, token)

    def _write(self, rows: list[dict], reason: str, token: str) -> int:
        if token and token in self._known():
            return 0
        now = time.time()
        day = time.strftime("%Y%m%d", time.gmtime(now))
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + self.days * 86400))
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        append_synced(self.dir / f"{day}.jsonl", b"".join(
            orjson.dumps({"at": at, "expires": expires, "reason": reason[:300], "token": token, "row": row}) + b"\n"
            for row in rows))
        if token:
            self._known().add(token)
        return len(rows)

    def expire(self, now: float | None = None) -> int:
        """Delete day files older than the retention. Returns how many were deleted."""
        cutoff = (time.time() if now is None else now) - self.days * 86400
        gone = 0
        for p in self.dir.glob("*.jsonl"):
            try:
                day = calendar.timegm(time.strptime(p.stem, "%Y%m%d"))
            except ValueError:
                continue
            if day + 86400 <= cutoff:
                p.unlink(missing_ok=True)
                gone += 1
        if gone:
            self._tokens = None
        return gone

    def count(self) -> int:
        n = 0
        for p in self.dir.glob("*.jsonl"):
            with open(p, "rb") as f:
                n += sum(1 for _ in f)
        return n

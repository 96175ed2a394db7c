"""Drains the spool into ClickHouse in batches, exactly once.

Each batch is a contiguous run of records in one segment. Before inserting, the loader writes the
batch's range to the checkpoint as *pending*; the insert carries a deduplication token derived from
that range (``segment:start:end:table``); afterwards the checkpoint advances. After a crash the
pending range is re-read from the same immutable bytes and re-inserted with the same token, which
ClickHouse discards if the first insert had landed. Fully stored segments are deleted.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson
from clickhouse_connect.driver.exceptions import ClickHouseError

from collector.errors import StorageError
from collector.spool import Spool
from collector.store import describe, is_permanent
from schema.columns import TABLES

log = logging.getLogger("collector.loader")


@dataclass
class Checkpoint:
    seg: int = 0
    offset: int = 0
    pending: tuple[int, int, int] | None = None  # (seg, start, end)


class CheckpointFile:
    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> Checkpoint:
        try:
            doc = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return Checkpoint()
        pending = tuple(doc["pending"]) if doc.get("pending") else None
        return Checkpoint(int(doc.get("seg", 0)), int(doc.get("offset", 0)), pending)  # type: ignore[arg-type]

    def write(self, cp: Checkpoint) -> None:
        data = json.dumps({"seg": cp.seg, "offset": cp.offset, "pending": list(cp.pending) if cp.pending else None})
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)


class DeadLetters:
    """Rows ClickHouse rejected permanently, with the reason; files expire after ``days``."""

    def __init__(self, directory: Path, days: int):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.days = days

    def write(self, rows: list[dict], reason: str) -> None:
        day = time.strftime("%Y%m%d", time.gmtime())
        with open(self.dir / f"{day}.jsonl", "ab") as f:
            for row in rows:
                f.write(orjson.dumps({"reason": reason[:300], "row": row}) + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def expire(self, now: float | None = None) -> None:
        cutoff = (now or time.time()) - self.days * 86400
        for p in self.dir.glob("*.jsonl"):
            if p.stat().st_mtime < cutoff:
                p.unlink(missing_ok=True)

    def count(self) -> int:
        return sum(sum(1 for _ in open(p, "rb")) for p in self.dir.glob("*.jsonl"))


class Loader:
    def __init__(self, spool: Spool, store, data_dir: Path, metrics, batch_size: int = 5000,
                 flush_interval_s: float = 1.0, dead_letter_days: int = 30):
        self.spool = spool
        self.store = store
        self.metrics = metrics
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.checkpoints = CheckpointFile(Path(data_dir) / "checkpoint.json")
        self.dead = DeadLetters(Path(data_dir) / "deadletter", dead_letter_days)
        self.cp = self.checkpoints.read()
        self.healthy = True
        self.last_error = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None
        self.backoff_s = 0.5
        self.oldest_unstored_ms = 0

    # -- thread ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="loader", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, deadline_s: float) -> bool:
        """Drain what can be stored within the deadline, then stop. True when nothing is left."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end and self.backlog() > 0 and self.healthy:
            self.wake()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=max(0.1, end - time.monotonic()) + 5)
        return self.backlog() == 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                moved = self.step()
            except Exception as exc:  # noqa: BLE001 - the loader must outlive any one failure
                self._unhealthy(exc)
                self._stop.wait(self.backoff_s)
                self.backoff_s = min(self.backoff_s * 2, 5.0)
                continue
            self.backoff_s = 0.5
            if not moved:
                self._idle.set()
                self._wake.wait(self.flush_interval_s)
                self._wake.clear()
                self._idle.clear()

    def _unhealthy(self, exc: BaseException) -> None:
        msg = describe(exc, getattr(self.store, "dsn", "")) if not isinstance(exc, StorageError) else exc.message
        if self.healthy or msg != self.last_error:
            log.warning("storage write failed, events stay in the spool: %s", msg)
        self.healthy, self.last_error = False, msg

    # -- work --------------------------------------------------------------------------------
    def backlog(self) -> int:
        """Unstored bytes in the spool."""
        total = 0
        for seg in self.spool.segments():
            if seg < self.cp.seg:
                continue
            total += self.spool.size(seg) - (self.cp.offset if seg == self.cp.seg else 0)
        return max(0, total)

    def flush_wait(self, timeout_s: float) -> bool:
        """Block until everything spooled so far is stored (used by erasure and tests)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.backlog() == 0:
                return True
            self.wake()
            time.sleep(0.02)
        return self.backlog() == 0

    def step(self) -> bool:
        """Store one batch. Returns whether anything moved."""
        cp = self.cp
        if cp.pending:
            seg, start, end = cp.pending
            scan = self.spool.read(seg, start, 1 << 30)
            records = [(o, p) for o, p in scan.records if o <= end]
            self._store(seg, start, end, records)
            return True
        for seg in self.spool.segments():
            if seg < cp.seg:
                continue
            start = cp.offset if seg == cp.seg else 0
            scan = self.spool.read(seg, start, self.batch_size)
            if scan.records or scan.end > start:
                end = scan.records[-1][0] if scan.records else scan.end
                if scan.records and scan.damaged and scan.damaged[-1][1] > end:
                    end = scan.damaged[-1][1]
                if scan.records and len(scan.records) < self.batch_size and seg == self.spool.active \
                        and not self._due(scan.records[0][1]):
                    return False
                self.cp = Checkpoint(seg, start, (seg, start, end))
                self.checkpoints.write(self.cp)
                self._store(seg, start, end, scan.records)
                return True
            if seg != self.spool.active:
                self.spool.remove(seg)
                if seg >= cp.seg:
                    self.cp = Checkpoint(seg + 1, 0, None)
                    self.checkpoints.write(self.cp)
                continue
        self.oldest_unstored_ms = 0
        return False

    def _due(self, first_payload: bytes) -> bool:
        try:
            spooled = orjson.loads(first_payload).get("_at", 0)
        except orjson.JSONDecodeError:
            return True
        self.oldest_unstored_ms = spooled
        return (time.time() * 1000 - spooled) >= self.flush_interval_s * 1000

    def _store(self, seg: int, start: int, end: int, records: list[tuple[int, bytes]]) -> None:
        by_table: dict[str, list[dict]] = defaultdict(list)
        for _, payload in records:
            try:
                doc = orjson.loads(payload)
                by_table[doc.pop("_t")].append(doc)
                doc.pop("_at", None)
            except (orjson.JSONDecodeError, KeyError, AttributeError):
                self.dead.write([{"raw": payload.decode("utf-8", "replace")[:2000]}], "undecodable spool record")
                self.metrics.dead_lettered.inc()
        t0 = time.perf_counter()
        for table, rows in by_table.items():
            self._insert(table, rows, f"{seg}:{start}:{end}:{table}")
        self.metrics.insert_latency.observe(time.perf_counter() - t0)
        self.metrics.batch_size.observe(len(records))
        self.cp = Checkpoint(seg, end, None)
        self.checkpoints.write(self.cp)
        if not self.healthy:
            log.info("storage writes recovered")
        self.healthy, self.last_error = True, ""

    def _insert(self, table: str, rows: list[dict], token: str) -> None:
        columns = TABLES.get(table)
        if columns is None:
            self.dead.write(rows, f"unknown table {table}")
            self.metrics.dead_lettered.inc(len(rows))
            return
        try:
            self.store.insert(table, [[r.get(c) for c in columns] for r in rows], columns, token)
            self.metrics.stored.labels(table).inc(len(rows))
        except (ClickHouseError, TypeError, ValueError, OverflowError) as exc:
            if not is_permanent(exc) and isinstance(exc, ClickHouseError):
                raise
            if len(rows) == 1:
                self.dead.write(rows, describe(exc, ""))
                self.metrics.dead_lettered.inc()
                return
            mid = len(rows) // 2
            self._insert(table, rows[:mid], token + ":a")
            self._insert(table, rows[mid:], token + ":b")

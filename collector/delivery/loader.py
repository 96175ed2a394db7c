"""Drains the spool into ClickHouse in batches, exactly once.

Each batch is a contiguous run of records in one segment. Before inserting, the loader writes the
batch's range to the checkpoint as *pending* (fsynced, atomically renamed); each insert carries a
deduplication token derived from that range (``segment:start:end:table``); afterwards the
checkpoint advances past the range. After a crash the pending range is re-read from the same
immutable bytes and re-inserted with the same tokens, which ClickHouse discards if the first insert
had landed (``non_replicated_deduplication_window`` in the DDL). Fully stored segments are deleted.

Only the pending checkpoint must reach the disk before the insert. The advance past a stored batch
is kept in memory and written with the next batch's pending checkpoint (which implies it), or when
the loader goes idle or stops: one fsync per batch instead of two, and a crash in between replays
just the last batch, which its tokens make harmless.

Rows ClickHouse rejects permanently are bisected down to single rows; those go to a dead-letter
file with the reason and the batch token (so a replayed batch does not write them twice), and the
files expire after ``dead_letter_days``. Transient failures (storage unreachable, erroring or slow)
leave the data in the spool and are retried with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Callable

from collector.counts import Counts
from collector.delivery import priority, record
from collector.delivery.checkpoint import Checkpoint, CheckpointFile
from collector.delivery.deadletters import DeadLetters
from collector.delivery.spool import Spool
from collector.errors import StorageError
from collector.storage.columns import TABLES

log = logging.getLogger("collector.delivery.loader")
# rows clickhouse-connect cannot serialize are reported through dead letters, not as tracebacks
logging.getLogger("clickhouse_connect.driver.transform").setLevel(logging.CRITICAL)
# reclaim the active segment's space once it is fully stored and at least this big
ROTATE_STORED_BYTES = 1 << 20
# how often the loader gives threads the engine started since the last time the storage priority
SWEEP_S = 5.0


class Loader:
    def __init__(self, spool: Spool, store, checkpoints: CheckpointFile, dead: DeadLetters, counts: Counts,
                 batch_size: int = 5000, flush_interval_s: float = 1.0,
                 prepare: Callable[[], None] | None = None, after_insert: Callable[[], None] | None = None,
                 on_batch: Callable[[int, float], None] | None = None, storage_nice: int = 0):
        self.spool = spool
        self.store = store
        self.counts = counts
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.checkpoints = checkpoints
        self.dead = dead
        self.cp = self.checkpoints.read()
        self._advanced = False  # self.cp moved past stored batches and is not written yet
        self.on_batch = on_batch  # (rows, seconds) of each stored batch, for the insert histograms
        self.prepare = prepare  # e.g. apply migrations once storage answers
        self.after_insert = after_insert  # fault drill hook (see collector.faults)
        self.healthy = True
        self.last_error = ""
        self.loaded_records = 0  # spool records consumed by this process (stored, dead-lettered)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._urgent = 0  # while > 0 every batch is due (flush and shutdown)
        self._thread: threading.Thread | None = None
        self.backoff_s = 0.5
        self.oldest_unstored_ms = 0
        self._waiting_for: int | None = None
        self.lock = threading.Lock()  # held while a batch is read and stored; an erasure takes it to rewrite
        self._expired_at = 0.0
        self.storage_nice = storage_nice  # nice value of the loader and the engine's threads (0: unchanged)
        self._swept_at = 0.0

    # -- thread ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="loader", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, deadline_s: float) -> bool:
        """Drain what can be stored within the deadline, then stop. True when nothing is left."""
        end = time.monotonic() + deadline_s
        self._urgent += 1
        try:
            while time.monotonic() < end and self.backlog() > 0 and self.healthy and self._running():
                self.wake()
                time.sleep(0.02)
        finally:
            self._stop.set()
            self._wake.set()
            if self._thread:
                self._thread.join(timeout=max(0.1, end - time.monotonic()) + 5)
            self._urgent -= 1
        return self.backlog() == 0

    def _running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        if self.storage_nice > 0:
            priority.lower(threading.get_native_id(), self.storage_nice)
        while not self._stop.is_set():
            try:
                self._maintain()
                moved = self.step()
                if not moved and not self.healthy:
                    self._probe()
            except Exception as exc:  # noqa: BLE001 - the loader must outlive any one failure
                self._unhealthy(exc)
                self._stop.wait(self.backoff_s)
                self.backoff_s = min(self.backoff_s * 2, 5.0)
                continue
            self.backoff_s = 0.5
            if not moved:
                self._idle.set()
                self._wake.wait(self._idle_wait())
                self._wake.clear()
                self._idle.clear()
        try:
            with self.lock:
                self._persist()  # stopping between two batches
        except OSError as exc:  # the next start replays the last batch (deduplicated by its tokens)
            log.error("writing the loader checkpoint at stop failed: %s", exc.strerror)

    def _idle_wait(self) -> float:
        """Sleep until the oldest waiting record is due (not a whole interval after seeing it early)."""
        if self._waiting_for is not None:
            left = self._waiting_for / 1000 + self.flush_interval_s - time.time()
            return min(self.flush_interval_s, max(0.01, left))
        return self.flush_interval_s

    def _probe(self) -> None:
        """With nothing to store, find out whether storage is back (readiness depends on it)."""
        if self.prepare is not None:
            self.prepare()
        if self.store.healthy():
            log.info("storage reachable again")
            self.healthy, self.last_error = True, ""

    def _maintain(self) -> None:
        now = time.monotonic()
        if self.storage_nice > 0 and now - self._swept_at > SWEEP_S:
            self._swept_at = now
            priority.yield_to_requests(self.storage_nice, priority.request_side(self._thread))
        if now - self._expired_at > 3600:
            self._expired_at = now
            self.dead.expire()

    def _unhealthy(self, exc: BaseException) -> None:
        msg = exc.message if isinstance(exc, StorageError) else f"{type(exc).__name__}: {str(exc)[:300]}"
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
        """Block until everything spooled so far is stored (``/admin/flush``, the CLI and tests): the
        checkpoint has passed where the spool was appending when this was called. Records appended
        since need not be, so a flush under steady traffic ends as soon as the loader has caught up."""
        end = time.monotonic() + timeout_s
        target = self.spool.position()
        self._urgent += 1
        try:
            while time.monotonic() < end:
                if self._stored_up_to(target):
                    return True
                if self.spool.dirty:
                    self.spool.sync()
                self.wake()
                time.sleep(0.02)
            return self._stored_up_to(target)
        finally:
            self._urgent -= 1

    def _stored_up_to(self, position: tuple[int, int]) -> bool:
        cp = self.cp  # replaced whole, never changed in place
        return (not cp.pending and (cp.seg, cp.offset) >= position) or self.backlog() == 0

    def step(self) -> bool:
        """Store one batch. Returns whether anything moved."""
        with self.lock:
            moved = self._step()
            if not moved:
                self._persist()
            return moved

    def _persist(self) -> None:
        """Write the checkpoint if it moved past stored batches since it was last written."""
        if self._advanced:
            self.checkpoints.write(self.cp)
            self._advanced = False

    def _write_checkpoint(self, cp: Checkpoint) -> None:
        self.cp = cp
        self.checkpoints.write(cp)
        self._advanced = False

    def _step(self) -> bool:
        self._waiting_for = None  # spool time (ms) of a batch found but not yet due
        cp = self.cp
        if cp.pending:
            seg, start, end = cp.pending
            scan = self.spool.read(seg, start, 1 << 30, end)
            self._store(seg, start, end, scan.records)
            return True
        for seg in self.spool.segments():
            if seg < cp.seg:
                self.spool.remove(seg)  # stored earlier; its removal was interrupted
                continue
            start = cp.offset if seg == cp.seg else 0
            live, loadable = self.spool.view(seg)
            scan = self.spool.read(seg, start, self.batch_size, loadable, max_bytes=max(1 << 20, self.batch_size * 1024))
            if scan.torn and not live:
                scan.end = self.spool.size(seg)  # unverifiable leftovers of an old segment: skip them
            if scan.records or scan.end > start:
                end = scan.records[-1][0] if scan.records else scan.end
                if scan.damaged and scan.damaged[-1][1] > end:
                    end = scan.damaged[-1][1]
                if scan.torn and not live and len(scan.records) < self.batch_size:
                    end = scan.end
                if scan.records:
                    self.oldest_unstored_ms = record.spooled_at(scan.records[0][1]) or self.oldest_unstored_ms
                if scan.records and len(scan.records) < self.batch_size and not scan.more and live \
                        and not self._due():
                    self._waiting_for = self.oldest_unstored_ms
                    return False
                self._write_checkpoint(Checkpoint(seg, start, (seg, start, end)))
                self._store(seg, start, end, scan.records)
                self.spool.rotate_if_stored(seg, end, min(ROTATE_STORED_BYTES, self.spool.quota_bytes // 8))
                return True
            if not live:
                self.spool.remove(seg)
                if seg >= cp.seg:
                    self._write_checkpoint(Checkpoint(seg + 1, 0, None))
                continue
        if self.backlog() == 0:
            self.oldest_unstored_ms = 0
        return False

    def _due(self) -> bool:
        if self._urgent > 0 or self.flush_interval_s <= 0:
            return True
        return (time.time() * 1000 - self.oldest_unstored_ms) >= self.flush_interval_s * 1000

    def _store(self, seg: int, start: int, end: int, records: list[tuple[int, bytes]]) -> None:
        if self.prepare is not None:
            self.prepare()
        token = f"{seg}:{start}:{end}"
        by_table: dict[str, list[bytes]] = defaultdict(list)
        undecodable: list[dict] = []
        erased = 0
        table_of = record.table_of
        for _, payload in records:
            table = table_of(payload)
            if table in TABLES:
                by_table[table].append(payload)
            elif table == record.ERASED:
                erased += 1
            else:
                undecodable.append({"raw": payload.decode("utf-8", "replace")[:2000]})
        t0 = time.perf_counter()
        # counted once the whole batch is stored: a batch retried after a failure half-way re-sends
        # tables ClickHouse already holds (deduplicated by their tokens) and must not count them twice
        stored = {table: self._insert(table, lines, f"{token}:{table}") for table, lines in by_table.items()}
        # the writes succeeded: healthy before the checkpoint moves, so whoever sees the backlog empty
        # (flush_wait) sees storage healthy too
        if not self.healthy:
            log.info("storage writes recovered")
        self.healthy, self.last_error = True, ""
        if undecodable:
            # dead letters count when written: a retried batch finds its token and writes nothing
            self.counts.dead_lettered += self.dead.write(undecodable, "undecodable spool record",
                                                         f"{token}:undecodable")
        if records and self.on_batch is not None:
            self.on_batch(len(records), time.perf_counter() - t0)
        if self.after_insert is not None:
            self.after_insert()
        self.cp = Checkpoint(seg, end, None)
        self._advanced = True  # written with the next pending checkpoint, or when idle (``_persist``)
        self.loaded_records += len(records)
        for table, n in stored.items():
            self.counts.stored[table] += n
        if erased:
            self.counts.dropped["erased"] += erased

    def _insert(self, table: str, lines: list[bytes], token: str) -> int:
        """The spooled JSON goes to ClickHouse as it is (JSONEachRow): no decoding in Python. A batch that
        ClickHouse rejects as bad data is split in halves until the offending rows are found; those go
        to the dead letters with the reason, the rest is stored. Returns the rows stored."""
        try:
            self.store.insert_json(table, b"\n".join(lines), token)
            return len(lines)
        except StorageError as exc:
            if not exc.permanent:
                raise
            if len(lines) == 1:
                self.counts.dead_lettered += self.dead.write([record.row_of(lines[0])],
                                                             f"rejected by ClickHouse: {exc.message}", token)
                return 0
            mid = len(lines) // 2
            return self._insert(table, lines[:mid], token + ":a") + self._insert(table, lines[mid:], token + ":b")



def status(spool: Spool, cp: Checkpoint, dead: DeadLetters, **extra) -> dict:
    """What ``collector spool status`` prints: the spool, the checkpoint, quarantine and dead letters."""
    segs = spool.segments()
    unstored_records, oldest_ms = 0, 0
    for _, _, payload in spool.records_after(cp.seg, cp.offset):
        unstored_records += 1
        if not oldest_ms:
            oldest_ms = record.spooled_at(payload)
    unstored_bytes = sum(spool.size(s) - (cp.offset if s == cp.seg else 0) for s in segs if s >= cp.seg)
    quarantine = sorted(p.name for p in (spool.dir / "quarantine").glob("*") if p.is_file())
    return {
        "segments": len(segs),
        "segment_range": [segs[0], segs[-1]] if segs else [],
        "bytes": sum(spool.size(s) for s in segs),
        "quota_bytes": spool.quota_bytes,
        "unstored_bytes": max(0, unstored_bytes),
        "unstored_records": unstored_records,
        "oldest_unstored_age_s": round(max(0.0, time.time() - oldest_ms / 1000), 3) if oldest_ms else 0.0,
        "checkpoint": {"segment": cp.seg, "offset": cp.offset, "pending": list(cp.pending) if cp.pending else None},
        "quarantined_files": quarantine,
        "dead_letters": dead.count(),
        **extra,
    }

"""The local durable spool: append-only segment files of length-prefixed, checksummed records.

Record framing: ``MAGIC (2 bytes) | length (4, LE) | crc32 of payload (4, LE) | payload``.
Segments are named ``<number>.seg`` (12 digits); numbers only grow. Only the collector process
appends, always to a segment it created itself: segments left by an earlier process are never
written again, so a torn tail can only be at the end of an old segment.

Reading is deterministic: a damaged record is skipped by searching forward for the next record
whose header and checksum verify, so the same bytes always yield the same records at the same
offsets (the loader's deduplication tokens depend on that). ``recover()`` runs once at startup: it
copies damaged byte ranges and torn tails of unloaded data to ``quarantine/`` (counted once each,
with an estimate of how many records they held) and truncates torn tails.

The loader reads the active segment only up to the last fsynced byte (``loadable``), so ClickHouse
never holds an event the spool could still lose on power failure.

Payloads are opaque bytes here (``collector.delivery.record`` owns their layout), and every write to
a segment goes through a ``FileIO`` (``collector.delivery.fileio``), the seam fault drills use.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from collector.delivery.fileio import FileIO
from collector.files import fsync_dir, write_synced

MAGIC = b"\xa5\x5a"
HEADER = struct.Struct("<2sII")
MAX_RECORD = 1 << 20
SEGMENT_NAME = "{:012d}.seg"


class SpoolFull(Exception):
    """The quota is reached or the disk is full: nothing was written."""


def frame(payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _valid_at(buf: bytes | memoryview, pos: int) -> int:
    """Length of the whole record at ``pos`` if it verifies, -1 if damaged, 0 if incomplete."""
    end = len(buf)
    if pos + HEADER.size > end:
        return 0
    magic, length, crc = HEADER.unpack_from(buf, pos)
    if magic != MAGIC or length > MAX_RECORD:
        return -1
    stop = pos + HEADER.size + length
    if stop > end:
        return 0
    if zlib.crc32(buf[pos + HEADER.size : stop]) != crc:
        return -1
    return HEADER.size + length


def estimate_records(buf: bytes | memoryview) -> int:
    """How many records a damaged byte range probably held (at least 1): hop over plausible headers."""
    pos, n, count = 0, len(buf), 0
    while pos < n:
        if pos + HEADER.size <= n:
            magic, length, _ = HEADER.unpack_from(buf, pos)
            if magic == MAGIC and length <= MAX_RECORD:
                count += 1
                pos += HEADER.size + length
                continue
        nxt = bytes(buf[pos + 1 :]).find(MAGIC)
        if nxt < 0:
            break
        pos += 1 + nxt
    return max(1, count)


@dataclass
class Scan:
    records: list[tuple[int, bytes]]  # (offset after the record, payload)
    damaged: list[tuple[int, int]]  # byte ranges skipped
    end: int  # offset after the last whole record (or damaged range) read
    torn: bool  # an incomplete record follows ``end`` (nothing verifiable after it)
    more: bool = False  # the read stopped at its byte budget: more records may follow ``end``


def scan(buf: bytes, start: int = 0, limit: int | None = None, base: int = 0) -> Scan:
    """Records in ``buf`` from ``start``; stops after ``limit`` records. Offsets are given as ``base``
    plus the offset in ``buf`` (``buf`` read from a file at ``base``)."""
    records: list[tuple[int, bytes]] = []
    damaged: list[tuple[int, int]] = []
    pos, n = start, len(buf)
    mv = memoryview(buf)
    unpack, hs, crc32, append = HEADER.unpack_from, HEADER.size, zlib.crc32, records.append
    left = n if limit is None else limit
    while pos < n and left > 0:
        if pos + hs <= n:  # the common case, a whole record that verifies: one slice, one checksum
            magic, length, crc = unpack(buf, pos)
            stop = pos + hs + length
            if magic == MAGIC and length <= MAX_RECORD and stop <= n:
                payload = buf[pos + hs:stop]
                if crc32(payload) == crc:
                    append((base + stop, payload))
                    pos = stop
                    left -= 1
                    continue
        size = _valid_at(mv, pos)
        if size > 0:
            append((base + pos + size, bytes(mv[pos + HEADER.size : pos + size])))
            pos += size
            left -= 1
            continue
        # damaged (or incomplete with later data): resynchronise on the next verifying record
        nxt = buf.find(MAGIC, pos + 1)
        while nxt >= 0 and _valid_at(mv, nxt) <= 0:
            nxt = buf.find(MAGIC, nxt + 1)
        if nxt < 0:
            if size == 0:  # a record cut short: a torn tail
                return Scan(records, damaged, base + pos, True)
            damaged.append((base + pos, base + n))  # whole but failing its checksum (or not a record): damage
            return Scan(records, damaged, base + n, False)
        damaged.append((base + pos, base + nxt))
        pos = nxt
    return Scan(records, damaged, base + pos, False)


@dataclass
class Recovery:
    """What ``recover()`` found in data not yet stored."""

    records: int = 0  # verifying records after the checkpoint (inherited by this process)
    damaged_ranges: int = 0
    damaged_records: int = 0  # estimated records lost in damaged ranges
    torn_tails: int = 0
    torn_records: int = 0  # estimated records lost in torn tails
    first: bytes = b""  # the oldest verifying unstored record
    files: list[str] = field(default_factory=list)


class Spool:
    def __init__(self, directory: Path, segment_bytes: int = 8 << 20, quota_bytes: int = 1 << 30,
                 io: FileIO | None = None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "quarantine").mkdir(exist_ok=True)
        # a segment is reclaimed only when whole, so it must be well below the quota
        self.segment_bytes = max(4096, min(segment_bytes, quota_bytes // 4))
        self.quota_bytes = quota_bytes
        self.io = io or FileIO()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.active = 0
        self.active_size = 0
        self.synced_size = 0  # bytes of the active segment known to be on stable storage
        self.dirty = False
        self.closed_bytes = 0
        self.appended_records = 0
        self.quarantined = 0
        self.torn_truncated = 0
        self.recovery = Recovery()
        self.first_own_segment = 0
        self.synced_at = time.monotonic()

    # -- layout ------------------------------------------------------------------------------
    def path(self, seg: int) -> Path:
        return self.dir / SEGMENT_NAME.format(seg)

    def segments(self) -> list[int]:
        out = []
        for p in self.dir.glob("*.seg"):
            try:
                out.append(int(p.stem))
            except ValueError:
                continue
        return sorted(out)

    def size(self, seg: int) -> int:
        if seg == self.active and self._fd is not None:
            return self.active_size
        try:
            return self.path(seg).stat().st_size
        except FileNotFoundError:
            return 0

    def is_live(self, seg: int) -> bool:
        """Whether ``seg`` may still grow: the segment this process appends to, or one a rotation has
        created on disk but not yet switched to (a higher number)."""
        return self._fd is not None and seg >= self.active

    def loadable(self, seg: int) -> int:
        """Bytes of ``seg`` the loader may read: for the active segment, only what is fsynced."""
        return self.view(seg)[1]

    def view(self, seg: int) -> tuple[bool, int]:
        """``(is_live(seg), loadable(seg))`` read together, so that a rotation between the two cannot
        make a growing segment look finished and empty (the loader would skip and then delete it)."""
        with self._lock:
            if self._fd is not None and seg >= self.active:
                return True, self.synced_size if seg == self.active else 0
        return False, self.size(seg)

    def position(self) -> tuple[int, int]:
        """Where the next record will be appended: (segment, offset). Everything spooled so far lies before it."""
        with self._lock:
            return self.active, self.active_size

    @property
    def total_bytes(self) -> int:
        return self.closed_bytes + self.active_size

    # -- startup -----------------------------------------------------------------------------
    def recover(self, checkpoint_seg: int = 0, checkpoint_offset: int = 0) -> Recovery:
        """Quarantine damaged ranges and torn tails of unloaded data, then open a new segment."""
        rec = Recovery()
        for seg in self.segments():
            if seg < checkpoint_seg:
                continue
            p = self.path(seg)
            buf = p.read_bytes()
            start = checkpoint_offset if seg == checkpoint_seg else 0
            result = scan(buf, min(start, len(buf)))
            rec.records += len(result.records)
            if result.records and not rec.first:
                rec.first = result.records[0][1]
            for lo, hi in result.damaged:
                q = self.dir / "quarantine" / f"{seg:012d}-{lo}.bad"
                if not q.exists():
                    write_synced(q, buf[lo:hi])
                    n = estimate_records(buf[lo:hi])
                    rec.damaged_ranges += 1
                    rec.damaged_records += n
                    rec.files.append(q.name)
            if result.torn and result.end < len(buf):
                q = self.dir / "quarantine" / f"{seg:012d}-{result.end}.tail"
                write_synced(q, buf[result.end :])
                rec.torn_tails += 1
                rec.torn_records += estimate_records(buf[result.end :])
                rec.files.append(q.name)
                with open(p, "r+b") as f:
                    f.truncate(result.end)
                    os.fsync(f.fileno())
        self.quarantined += rec.damaged_ranges
        self.torn_truncated += rec.torn_tails
        self.recovery = rec
        existing = self.segments()
        self.closed_bytes = sum(self.path(s).stat().st_size for s in existing)
        # never reuse a number at or below the checkpoint: the loader would skip it
        self.first_own_segment = max((existing[-1] + 1) if existing else 1, checkpoint_seg + 1)
        with self._lock:
            self._open(self.first_own_segment)
        return rec

    def _open(self, seg: int) -> None:
        """Start segment ``seg`` (caller holds the lock). On failure the old segment stays active."""
        io = self.io
        fd = io.open_append(self.path(seg))
        try:
            fsync_dir(self.dir)
        except OSError:
            io.close(fd)
            raise
        if self._fd is not None:
            io.fsync(self._fd)
            io.close(self._fd)
            self.closed_bytes += self.active_size
        self._fd = fd
        self.active, self.active_size, self.synced_size, self.dirty = seg, 0, 0, False

    def rotate_if_stored(self, seg: int, offset: int, min_bytes: int) -> bool:
        """Start a new segment when the active one is fully stored up to ``offset`` and holds at
        least ``min_bytes``, so its space can be reclaimed without waiting for it to fill."""
        with self._lock:
            if self._fd is None or seg != self.active or offset < self.active_size or self.active_size < min_bytes:
                return False
            try:
                self._open(self.active + 1)
            except OSError:
                return False
            return True

    # -- writing -----------------------------------------------------------------------------
    def append(self, payloads: list[bytes]) -> None:
        """Write the records (one write call) or nothing at all; SpoolFull when they do not fit."""
        self._write(b"".join([frame(p) for p in payloads]), len(payloads))

    def append_groups(self, groups: list[list[bytes]]) -> None:
        """Several requests' records in one write call, all or nothing (``SharedWrite``)."""
        self._write(b"".join([frame(p) for g in groups for p in g]), sum(len(g) for g in groups))

    def _write(self, data: bytes, count: int) -> None:
        with self._lock:
            if self.total_bytes + len(data) > self.quota_bytes:
                raise SpoolFull("spool quota reached")
            if self._fd is None:
                raise SpoolFull("spool is closed")
            if self.active_size and self.active_size + len(data) > self.segment_bytes:
                try:
                    self._open(self.active + 1)
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise SpoolFull("disk full") from None
                    raise
            try:
                written = self.io.write(self._fd, data)
            except OSError as exc:
                self._undo()
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise SpoolFull("disk full") from None
                raise
            if written != len(data):
                self._undo()
                raise SpoolFull("disk full (short write)")
            self.active_size += written
            self.appended_records += count
            self.dirty = True

    def _undo(self) -> None:
        """Cut a partial write back to the last whole record."""
        assert self._fd is not None
        try:
            self.io.truncate(self._fd, self.active_size)
        except OSError:
            pass

    def sync(self) -> None:
        """fsync what is written so far. Appends continue meanwhile (the lock is not held)."""
        with self._lock:
            self.synced_at = time.monotonic()
            if not self.dirty or self._fd is None:
                return
            fd, seg, size = os.dup(self._fd), self.active, self.active_size
            self.dirty = False
        try:
            self.io.fsync(fd)
        except OSError:
            with self._lock:
                self.dirty = True
            raise
        finally:
            os.close(fd)
        with self._lock:
            if seg == self.active and size > self.synced_size:
                self.synced_size = size

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                self.io.fsync(self._fd)
                self.io.close(self._fd)
                self._fd = None
                self.closed_bytes += self.active_size
                self.synced_size = self.active_size
                self.dirty = False

    # -- reading -----------------------------------------------------------------------------
    def read(self, seg: int, offset: int, limit: int, end: int | None = None, max_bytes: int = 0) -> Scan:
        """Whole records of ``seg`` from ``offset`` (up to ``end``, default what may be loaded), reading
        at most ``max_bytes`` when given (a record cut by that budget is left for the next read)."""
        end = self.loadable(seg) if end is None else end
        if offset >= end:
            return Scan([], [], offset, False)
        stop = min(end, offset + max_bytes) if max_bytes else end
        try:
            with open(self.path(seg), "rb") as f:
                f.seek(offset)
                buf = f.read(stop - offset)
        except FileNotFoundError:
            return Scan([], [], offset, False)
        result = scan(buf, 0, limit, base=offset)
        if stop < end and (result.torn or len(result.records) < limit):
            result.torn, result.more = False, True
        return result

    def rewrite(self, replace: Callable[[bytes], bytes | None]) -> int:
        """Overwrite in place every record for which ``replace`` returns new bytes of the same length
        (erasure), in every segment, fsynced; returns how many records changed. Closed segments are
        rewritten while appends go on; the active one while appends wait, so no record escapes the
        pass. The caller keeps the loader from reading meanwhile."""
        changed, done = 0, set()
        for seg in self.segments():
            if not self.is_live(seg):
                changed += self._rewrite_segment(seg, None, replace)
                done.add(seg)
        with self._lock:
            for seg in self.segments():
                if seg not in done:
                    changed += self._rewrite_segment(seg, self.active_size if self.is_live(seg) else None, replace)
        return changed

    def _rewrite_segment(self, seg: int, size: int | None, replace) -> int:
        path = self.path(seg)
        try:
            buf = path.read_bytes()
        except FileNotFoundError:
            return 0
        if size is not None:
            buf = buf[:size]
        edits = []
        for end, payload in scan(buf).records:
            new = replace(payload)
            if new is not None and new != payload:
                if len(new) != len(payload):
                    raise ValueError("a rewritten record must keep its length")
                edits.append((end - len(payload) - HEADER.size, frame(new)))
        if not edits:
            return 0
        fd = os.open(path, os.O_WRONLY)
        try:
            for offset, data in edits:
                os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(edits)

    def remove(self, seg: int) -> None:
        """Delete a finished segment (never a live one)."""
        if self.is_live(seg):
            return
        p = self.path(seg)
        try:
            size = p.stat().st_size
            p.unlink()
            with self._lock:
                self.closed_bytes -= size
        except FileNotFoundError:
            pass

    def records_after(self, seg: int, offset: int) -> Iterator[tuple[int, int, bytes]]:
        for s in self.segments():
            if s < seg:
                continue
            r = self.read(s, offset if s == seg else 0, 1 << 30, self.size(s))
            for off, payload in r.records:
                yield s, off, payload

    def count_after(self, seg: int, offset: int) -> int:
        return sum(1 for _ in self.records_after(seg, offset))

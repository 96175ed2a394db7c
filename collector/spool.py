"""The local durable spool: append-only segment files of length-prefixed, checksummed records.

Record framing: ``MAGIC (2 bytes) | length (4, LE) | crc32 of payload (4, LE) | payload``.
Only the collector process appends, always to a segment it created itself: segments left by an
earlier process are never written again, so a torn tail can only be at the end of an old segment.

Reading is deterministic: a damaged record is skipped by searching forward for the next record
whose header and checksum verify, so the same bytes always yield the same records at the same
offsets (the loader's deduplication tokens depend on that). ``recover()`` runs once at startup: it
truncates torn tails and copies damaged byte ranges to ``quarantine/`` (counted once each).
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

MAGIC = b"\xa5\x5a"
HEADER = struct.Struct("<2sII")
MAX_RECORD = 1 << 20


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


@dataclass
class Scan:
    records: list[tuple[int, bytes]]  # (offset after the record, payload)
    damaged: list[tuple[int, int]]  # byte ranges skipped
    end: int  # offset after the last whole record (or damaged range) read
    torn: bool  # incomplete bytes follow ``end``


def scan(buf: bytes, start: int = 0, limit: int | None = None) -> Scan:
    """Records in ``buf`` from ``start``; stops after ``limit`` records."""
    records: list[tuple[int, bytes]] = []
    damaged: list[tuple[int, int]] = []
    pos, n = start, len(buf)
    mv = memoryview(buf)
    while pos < n and (limit is None or len(records) < limit):
        size = _valid_at(mv, pos)
        if size > 0:
            records.append((pos + size, bytes(mv[pos + HEADER.size : pos + size])))
            pos += size
            continue
        if size == 0 and buf.find(MAGIC, pos + 1) < 0:
            return Scan(records, damaged, pos, True)
        # damaged (or incomplete with later data): resynchronise on the next verifying record
        nxt = buf.find(MAGIC, pos + 1)
        while nxt >= 0 and _valid_at(mv, nxt) <= 0:
            nxt = buf.find(MAGIC, nxt + 1)
        if nxt < 0:
            return Scan(records, damaged, pos, True)
        damaged.append((pos, nxt))
        pos = nxt
    return Scan(records, damaged, pos, False)


class Spool:
    def __init__(self, directory: Path, segment_bytes: int = 8 << 20, quota_bytes: int = 1 << 30, fsync: str = "interval"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "quarantine").mkdir(exist_ok=True)
        self.segment_bytes = segment_bytes
        self.quota_bytes = quota_bytes
        self.fsync_policy = fsync
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.active = 0
        self.active_size = 0
        self.dirty = False
        self.closed_bytes = 0
        self.quarantined = 0
        self.torn_truncated = 0
        self.first_own_segment = 0
        self.synced_at = time.monotonic()

    # -- layout ------------------------------------------------------------------------------
    def path(self, seg: int) -> Path:
        return self.dir / f"{seg:012d}.seg"

    def segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.dir.glob("*.seg"))

    def size(self, seg: int) -> int:
        if seg == self.active:
            return self.active_size
        try:
            return self.path(seg).stat().st_size
        except FileNotFoundError:
            return 0

    @property
    def total_bytes(self) -> int:
        return self.closed_bytes + self.active_size

    # -- startup -----------------------------------------------------------------------------
    def recover(self, checkpoint_seg: int = 0, checkpoint_offset: int = 0) -> None:
        """Truncate torn tails and quarantine damaged ranges of unloaded data, then open a new segment."""
        for seg in self.segments():
            if seg < checkpoint_seg:
                continue
            p = self.path(seg)
            buf = p.read_bytes()
            start = checkpoint_offset if seg == checkpoint_seg else 0
            result = scan(buf, min(start, len(buf)))
            for lo, hi in result.damaged:
                q = self.dir / "quarantine" / f"{seg:012d}-{lo}.bad"
                if not q.exists():
                    q.write_bytes(buf[lo:hi])
                    self.quarantined += 1
            if result.torn and result.end < len(buf):
                with open(p, "r+b") as f:
                    f.truncate(result.end)
                    os.fsync(f.fileno())
                self.torn_truncated += 1
        existing = self.segments()
        self.closed_bytes = sum(self.path(s).stat().st_size for s in existing)
        self.first_own_segment = (existing[-1] + 1) if existing else 1
        self._open(self.first_own_segment)

    def _open(self, seg: int) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self.closed_bytes += self.active_size
        self._fd = os.open(self.path(seg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self.active, self.active_size = seg, 0

    # -- writing -----------------------------------------------------------------------------
    def append(self, payloads: list[bytes]) -> None:
        """Write the records (one write call) or nothing at all; SpoolFull when they do not fit."""
        data = b"".join(frame(p) for p in payloads)
        with self._lock:
            if self.total_bytes + len(data) > self.quota_bytes:
                raise SpoolFull("spool quota reached")
            if self.active_size and self.active_size + len(data) > self.segment_bytes:
                self._open(self.active + 1)
            assert self._fd is not None
            try:
                written = os.write(self._fd, data)
            except OSError as exc:
                self._undo()
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise SpoolFull("disk full") from None
                raise
            if written != len(data):
                self._undo()
                raise SpoolFull("disk full (short write)")
            self.active_size += written
            self.dirty = True

    def _undo(self) -> None:
        """Cut a partial write back to the last whole record."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self.active_size)
        except OSError:
            pass

    def sync(self) -> None:
        with self._lock:
            if self.dirty and self._fd is not None:
                os.fsync(self._fd)
                self.dirty = False
            self.synced_at = time.monotonic()

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    # -- reading -----------------------------------------------------------------------------
    def read(self, seg: int, offset: int, limit: int) -> Scan:
        """Whole records of ``seg`` from ``offset``; for the active segment only what is written."""
        end = self.size(seg)
        if offset >= end:
            return Scan([], [], offset, False)
        with open(self.path(seg), "rb") as f:
            f.seek(offset)
            buf = f.read(end - offset)
        result = scan(buf, 0, limit)
        result.records = [(offset + o, p) for o, p in result.records]
        result.damaged = [(offset + a, offset + b) for a, b in result.damaged]
        result.end += offset
        return result

    def remove(self, seg: int) -> None:
        if seg == self.active:
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
            r = self.read(s, offset if s == seg else 0, 1 << 30)
            for off, payload in r.records:
                yield s, off, payload

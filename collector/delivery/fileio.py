"""The spool's file I/O seam: the calls that put record bytes on disk, behind one small object.

The spool does all its writing, syncing and truncating through a ``FileIO``. Fault drills and tests
pass another implementation (``collector.faults.DiskFullIO``) instead of patching the spool.
"""

from __future__ import annotations

import os


class FileIO:
    def open_append(self, path) -> int:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, fd: int, data: bytes) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def close(self, fd: int) -> None:
        os.close(fd)

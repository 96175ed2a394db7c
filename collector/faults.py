"""Fault-drill hooks for tests and operations drills. Off unless their setting names a file.

* ``COLLECTOR_FAULT_STORE_FILE``: while this file exists, every insert fails as if ClickHouse were
  unreachable (a transient failure: events stay in the spool and are retried). Queries still work.
  Use it to rehearse a storage outage on the embedded engine: create the file, watch the spool grow
  and the collector answer 503 at the quota, delete the file, watch the spool drain.
* ``COLLECTOR_FAULT_SPOOL_FULL_FILE``: while this file exists, spool writes fail with ENOSPC after
  writing part of the data, as on a full disk. For machines where a small tmpfs cannot be mounted.
* ``COLLECTOR_FAULT_CRASH_AFTER_INSERT_FILE``: when this file exists, the loader deletes it and exits
  the process immediately after its next insert, before the checkpoint records it: the crash window
  the deduplication tokens exist for. Test-only.

Each is a part handed to the collector in place of the real one (a store that wraps the real store,
a ``FileIO`` for the spool, a loader hook); nothing in the delivery path knows about them.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import Any, Sequence

from collector.delivery.fileio import FileIO
from collector.errors import TRANSIENT, StorageError

log = logging.getLogger("collector.faults")
CRASH_EXIT_CODE = 86


class FailingStore:
    """A store whose inserts fail while ``flag`` exists; everything else goes to the real store."""

    def __init__(self, store, flag: str | Path):
        self._store = store
        self.flag = Path(flag)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _failing(self) -> bool:
        return self.flag.exists()

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str], token: str) -> None:
        if self._failing():
            raise StorageError(f"storage fault drill: inserts fail while {self.flag} exists", TRANSIENT)
        self._store.insert(table, rows, columns, token)

    def insert_json(self, table: str, data: bytes, token: str) -> None:
        if self._failing():
            raise StorageError(f"storage fault drill: inserts fail while {self.flag} exists", TRANSIENT)
        self._store.insert_json(table, data, token)

    def healthy(self) -> bool:
        return not self._failing() and self._store.healthy()


def crash_after_insert(flag: str | Path):
    """A loader ``after_insert`` hook: exits the process (no cleanup) once, when ``flag`` exists."""
    path = Path(flag)

    def hook() -> None:
        if path.exists():
            path.unlink()
            log.warning("fault drill: exiting between an insert and its checkpoint")
            os._exit(CRASH_EXIT_CODE)

    return hook


class DiskFullIO(FileIO):
    """Spool file I/O on a disk that fills while ``flag`` exists: half the bytes land, then ENOSPC."""

    def __init__(self, flag: str | Path):
        self.flag = Path(flag)

    def write(self, fd: int, data: bytes) -> int:
        if self.flag.exists():
            os.write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device (fault drill)")
        return os.write(fd, data)


def spool_io(settings) -> FileIO:
    if settings.fault_spool_full_file:
        log.warning("fault drill enabled: spool writes fail while %s exists", settings.fault_spool_full_file)
        return DiskFullIO(settings.fault_spool_full_file)
    return FileIO()


def wrap_store(store, settings):
    if settings.fault_store_file:
        log.warning("fault drill enabled: inserts fail while %s exists", settings.fault_store_file)
        return FailingStore(store, settings.fault_store_file)
    return store


def after_insert_hook(settings):
    if settings.fault_crash_after_insert_file:
        log.warning("fault drill enabled: crash after an insert when %s exists", settings.fault_crash_after_insert_file)
        return crash_after_insert(settings.fault_crash_after_insert_file)
    return None

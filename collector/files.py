"""Durable writes of small private files (mode 0600): checkpoints, keys, consent state, dead letters,
quarantined spool bytes. Each write is fsynced before it returns."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE = 0o600


def _write(path: Path, data: bytes, flags: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, PRIVATE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, data: bytes) -> None:
    """Create or overwrite ``path`` with ``data``."""
    _write(path, data, os.O_TRUNC)


def append_synced(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` (created if missing)."""
    _write(path, data, os.O_APPEND)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_synced(path: Path, data: bytes, sync_dir: bool = True) -> None:
    """Replace ``path`` atomically: readers see the old content or the new, never a mix. With
    ``sync_dir`` the rename itself is durable too."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    write_synced(tmp, data)
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)

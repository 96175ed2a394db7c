"""Offline replay: load the spool into storage with a progress bar, when no collector is running."""

from __future__ import annotations

import sys
from pathlib import Path

from collector.loader import Loader
from collector.metrics import Metrics
from collector.spool import Spool
from collector.store import Store
from schema import migrate


def _bar(done: int, total: int, width: int = 40) -> str:
    frac = 1.0 if total == 0 else min(1.0, done / total)
    return f"\r[{'#' * int(frac * width):<{width}}] {frac * 100:5.1f}% {done}/{total} bytes"


def replay(settings) -> int:
    data = Path(settings.data_dir)
    store = Store(settings.dsn, settings.database)
    migrate.apply(store, settings)
    spool = Spool(data / "spool", settings.segment_bytes, settings.spool_quota_bytes, settings.fsync)
    loader = Loader(spool, store, data, Metrics(), settings.batch_size, 0, settings.dead_letter_days)
    spool.recover(loader.cp.seg, loader.cp.offset)
    total = loader.backlog()
    while loader.step():
        sys.stderr.write(_bar(total - loader.backlog(), total))
    sys.stderr.write(_bar(total, total) + "\n")
    spool.close()
    for seg in spool.segments():
        if spool.size(seg) == 0:
            spool.path(seg).unlink(missing_ok=True)
    store.close()
    print(f"replayed {total} bytes; {loader.backlog()} left")
    return 0

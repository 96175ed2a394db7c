"""Offline replay: load the spool into storage with a progress bar, when no collector is running.

It is the loader's own protocol (pending range, deduplication tokens, checkpoint), run to the end in
the foreground, so a replay interrupted at any point can simply be run again.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from clickhouse_connect.driver.exceptions import ClickHouseError

from collector.errors import StorageError
from collector.loader import Loader
from collector.metrics import Metrics
from collector.spool import Spool
from collector.store import Store, describe
from schema import migrate


def bar(done: int, total: int, width: int = 40, unit: str = "bytes") -> str:
    frac = 1.0 if total == 0 else min(1.0, done / total)
    return f"\r[{'#' * int(frac * width):<{width}}] {frac * 100:5.1f}% {done}/{total} {unit}"


def replay(settings, out=None, err=None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    data = Path(settings.data_dir)
    store = Store(settings.dsn, settings.database)
    spool = Spool(data / "spool", settings.segment_bytes, settings.spool_quota_bytes, settings.fsync)
    metrics = Metrics()
    loader = Loader(spool, store, data, metrics, settings.batch_size, 0, settings.dead_letter_days)
    rec = spool.recover(loader.cp.seg, loader.cp.offset)
    if rec.damaged_ranges or rec.torn_tails:
        err.write(f"quarantined {rec.damaged_ranges} damaged range(s) and {rec.torn_tails} torn tail(s): "
                  f"{', '.join(rec.files)}\n")
    total = loader.backlog()
    t0 = time.monotonic()
    try:
        migrate.apply(store, settings)
        while loader.step():
            err.write(bar(total - loader.backlog(), total))
            err.flush()
    except (StorageError, ClickHouseError, OSError) as exc:
        err.write("\n")
        msg = exc.message if isinstance(exc, StorageError) else describe(exc, settings.dsn)
        out.write(f"collector: replay stopped, {loader.backlog()} bytes stay in the spool: {msg}\n")
        return 1
    finally:
        spool.close()
        # drop empty segments (this run's own among them); numbering continues after the checkpoint
        for seg in spool.segments():
            if spool.size(seg) == 0:
                spool.path(seg).unlink(missing_ok=True)
        store.close()
    err.write(bar(total, total) + "\n")
    stored = sum(c._value.get() for c in metrics.stored._metrics.values())
    dead = metrics.dead_lettered._value.get()
    out.write(f"replayed {total} bytes in {time.monotonic() - t0:.1f} s: {int(stored)} rows stored, "
              f"{int(dead)} dead-lettered, {loader.backlog()} bytes left\n")
    return 0

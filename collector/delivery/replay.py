"""Offline replay: load the spool into storage with a progress bar, when no collector is running.

It is the loader's own protocol (pending range, deduplication tokens, checkpoint), run to the end in
the foreground, so a replay interrupted at any point can simply be run again.
"""

from __future__ import annotations

import sys
import time

from collector.counts import Counts
from collector.delivery.checkpoint import CheckpointFile
from collector.delivery.deadletters import DeadLetters
from collector.delivery.loader import Loader
from collector.delivery.spool import Spool
from collector.errors import StorageError
from collector.paths import DataDir
from collector.storage import migrate
from collector.storage.store import Store


def bar(done: int, total: int, width: int = 40, unit: str = "bytes") -> str:
    frac = 1.0 if total == 0 else min(1.0, done / total)
    return f"\r[{'#' * int(frac * width):<{width}}] {frac * 100:5.1f}% {done}/{total} {unit}"


def replay(settings, out=None, err=None, *, loader: Loader | None = None, counts: Counts | None = None,
           keep_store: bool = False) -> int:
    """``loader``: the serving process's own loader setup for this spool (the CLI builds it with
    ``collector.assembly.loader_for``, so its deduplication tokens are the ones a serving collector
    would send); by default a plain one. ``keep_store``: the caller closes the store (it replays
    several spools through it)."""
    out, err = out or sys.stdout, err or sys.stderr
    if loader is None:
        data = DataDir.of(settings)
        counts = Counts()
        loader = Loader(Spool(data.spool, settings.segment_bytes, settings.spool_quota_bytes),
                        Store(settings.dsn, settings.database), CheckpointFile(data.checkpoint),
                        DeadLetters(data.dead_letters, settings.dead_letter_days), counts, settings.batch_size, 0)
    assert counts is not None
    loader.flush_interval_s = 0
    spool, store = loader.spool, loader.store
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
    except (StorageError, OSError) as exc:
        err.write("\n")
        msg = exc.message if isinstance(exc, StorageError) else str(exc)
        out.write(f"collector: replay stopped, {loader.backlog()} bytes stay in the spool: {msg}\n")
        return 1
    finally:
        spool.close()
        # drop empty segments (this run's own among them); numbering continues after the checkpoint
        for seg in spool.segments():
            if spool.size(seg) == 0:
                spool.path(seg).unlink(missing_ok=True)
        if not keep_store:
            store.close()
    err.write(bar(total, total) + "\n")
    out.write(f"replayed {total} bytes in {time.monotonic() - t0:.1f} s: {counts.stored_total} rows stored, "
              f"{counts.dead_lettered} dead-lettered, {loader.backlog()} bytes left\n")
    return 0

"""The composition root: every start-up I/O (directories, keys, consent state, spool recovery,
credentials) happens here, and the finished parts are handed to the ``Collector``.

Tests build a collector from parts of their own (an in-memory store, a failing file I/O) with
``assemble(settings, store=..., io=...)``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from collector import credentials, faults
from collector.counts import Counts
from collector.delivery import record, sync
from collector.delivery.checkpoint import CheckpointFile
from collector.delivery.deadletters import DeadLetters
from collector.delivery.fileio import FileIO
from collector.delivery.loader import Loader
from collector.delivery.spool import Recovery, Spool
from collector.metrics import Metrics
from collector.paths import DataDir
from collector.pipeline import Pipeline, build_pipeline
from collector.privacy.consent import ConsentState
from collector.privacy.erasure import PendingErasures
from collector.privacy.keys import KeyStore
from collector.settings import Settings
from collector.storage.store import Store

log = logging.getLogger("collector")


@dataclass
class Parts:
    settings: Settings
    data: DataDir
    counts: Counts
    metrics: Metrics
    keys: KeyStore
    consent: ConsentState
    pipeline: Pipeline
    store: object
    spool: Spool
    recovery: Recovery
    loader: Loader
    sync: sync.IntervalSync
    admin_token: str
    analyst_token: str
    pending_erasures: PendingErasures


def keystore(settings: Settings, data: DataDir) -> KeyStore:
    return KeyStore(data.keys, settings.key_period_s, settings.key_destroy_after_s)


def store_for(settings: Settings) -> Store:
    return Store(settings.dsn, settings.database)


def spool_for(settings: Settings, data: DataDir, io: FileIO | None = None) -> Spool:
    return Spool(data.spool, settings.segment_bytes, settings.spool_quota_bytes, io)


def spool_name(data: DataDir) -> str:
    """The spool's own name (``DataDir.spool_id``), made once: 12 hex digits."""
    path = data.spool_id
    try:
        name = path.read_text().strip()
    except FileNotFoundError:
        name = ""
    if len(name) != 12 or not all(c in "0123456789abcdef" for c in name):
        from collector.files import replace_synced

        path.parent.mkdir(parents=True, exist_ok=True)
        name = secrets.token_hex(6)
        replace_synced(path, (name + "\n").encode())
    return name


class SpoolTokens:
    """The store as one spool's loader sees it: every deduplication token starts with the spool's name.
    The loader's tokens (``segment:start:end:table``) are unique within a spool only; several spools
    loading into one storage (workers of one host, collectors behind a load balancer) would otherwise
    hand ClickHouse equal tokens for different rows, and it would keep only the first."""

    def __init__(self, store, name: str):
        self._store = store
        self.name = name

    def insert_json(self, table: str, data: bytes, token: str) -> None:
        self._store.insert_json(table, data, f"{self.name}/{token}")

    def insert(self, table: str, rows, columns, token: str) -> None:
        self._store.insert(table, rows, columns, f"{self.name}/{token}")

    def __getattr__(self, name):
        return getattr(self._store, name)


def loader_for(settings: Settings, data: DataDir, spool: Spool, store, counts: Counts, **hooks) -> Loader:
    return Loader(spool, SpoolTokens(store, spool_name(data)), CheckpointFile(data.checkpoint),
                  DeadLetters(data.dead_letters, settings.dead_letter_days),
                  counts, settings.batch_size, settings.flush_interval_ms / 1000,
                  storage_nice=settings.storage_nice, **hooks)


def assemble(settings: Settings, store=None, io: FileIO | None = None, worker: int = 0) -> Parts:
    """``worker`` K > 0: one of ``collector serve --workers N``, with its own spool, checkpoint and dead
    letters (``DataDir.for_worker``); keys, consent state and tokens are the data directory's."""
    data = DataDir.of(settings).ensure().for_worker(worker)
    counts = Counts()
    metrics = Metrics(counts)
    keys = keystore(settings, data)
    keys.maintain()
    consent = ConsentState(data.consent)
    pipeline = build_pipeline(settings, keys, consent)
    store = faults.wrap_store(store or store_for(settings), settings)
    spool = spool_for(settings, data, io or faults.spool_io(settings))
    loader = loader_for(settings, data, spool, store, counts, after_insert=faults.after_insert_hook(settings),
                        on_batch=metrics.observe_batch)
    rec = spool.recover(loader.cp.seg, loader.cp.offset)
    loader.oldest_unstored_ms = record.spooled_at(rec.first) if rec.first else 0
    if rec.damaged_ranges or rec.torn_tails:
        log.warning("spool recovery: quarantined %d damaged range(s) (~%d records) and %d torn tail(s) "
                    "(~%d records): %s", rec.damaged_ranges, rec.damaged_records, rec.torn_tails,
                    rec.torn_records, ", ".join(rec.files))
    if rec.records:
        log.info("spool holds %d unstored records from an earlier run; loading them", rec.records)
    admin = credentials.load_or_create(data.admin_token, settings.admin_token)
    analyst = credentials.load_or_create(data.analyst_token, settings.analyst_token)
    if admin == analyst:
        raise credentials.CredentialError("the analyst token must differ from the admin token")
    return Parts(settings, data, counts, metrics, keys, consent, pipeline, store, spool, rec, loader,
                 sync.policy(settings.fsync, spool, settings.fsync_interval_ms / 1000), admin, analyst,
                 PendingErasures(data.pending_erasures))

"""The running collector: its parts built once from the settings, and the ingest path.

Accept → validate → enrich and pseudonymize in memory → append to the durable spool → answer.
The request path never waits on ClickHouse; the loader thread drains the spool.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections import Counter
from pathlib import Path

import orjson

from collector import faults
from collector.clientip import ClientIp
from collector.errors import Unavailable
from collector.loader import Loader
from collector.metrics import Metrics, counter, gauge
from collector.settings import Settings, Site
from collector.spool import Spool, SpoolFull
from collector.store import Store, describe
from pipeline import Event, build_pipeline
from privacy.consent import ConsentState
from privacy.keys import KeyStore
from schema import migrate

log = logging.getLogger("collector")


def admin_token(settings: Settings) -> str:
    """The configured admin token, else one generated once and kept in the data directory (0600)."""
    if settings.admin_token:
        return settings.admin_token
    path = Path(settings.data_dir) / "admin.token"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, token.encode())
        finally:
            os.close(fd)
        return token


class Collector:
    def __init__(self, settings: Settings, store: Store | None = None):
        self.settings = settings
        data = Path(settings.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self.client_ip = ClientIp(settings.trusted_proxies)
        self.keys = KeyStore(data / "keys", settings.key_period_s, settings.key_destroy_after_s)
        self.keys.maintain()
        self.consent = ConsentState(data / "consent.jsonl")
        self.pipeline = build_pipeline(settings, self.keys, self.consent)
        self.identity = next(s for s in self.pipeline.steps if s.name == "identity")
        self.store = faults.wrap_store(store or Store(settings.dsn, settings.database), settings)
        self.spool = faults.wrap_spool(
            Spool(data / "spool", settings.segment_bytes, settings.spool_quota_bytes, settings.fsync), settings)
        self.loader = Loader(self.spool, self.store, data, self.metrics, settings.batch_size,
                             settings.flush_interval_ms / 1000, settings.dead_letter_days,
                             prepare=self._ensure_migrated, after_insert=faults.after_insert_hook(settings))
        rec = self.spool.recover(self.loader.cp.seg, self.loader.cp.offset)
        # conservation: records found unstored at startup (and those lost to damage) belong to this process
        self.inherited = rec.records + rec.damaged_records + rec.torn_records
        self.spool_lost = {"spool_damaged": rec.damaged_records, "spool_torn": rec.torn_records}
        self.loader.oldest_unstored_ms = rec.oldest_ms
        if rec.damaged_ranges or rec.torn_tails:
            log.warning("spool recovery: quarantined %d damaged range(s) (~%d records) and %d torn tail(s) "
                        "(~%d records): %s", rec.damaged_ranges, rec.damaged_records, rec.torn_tails,
                        rec.torn_records, ", ".join(rec.files))
        if rec.records:
            log.info("spool holds %d unstored records from an earlier run; loading them", rec.records)
        self.admin_token = admin_token(settings)
        self.ready = False
        self.shutting_down = False
        self.shutdown_requested = False  # SIGTERM received: answers close their connections
        self.migrated = False
        self._sync_waiters: list[asyncio.Future] = []
        self._sync_kick: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self.metrics.add_source(self._collect)

    # -- lifecycle -----------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        applied = migrate.apply(self.store, self.settings)
        self.migrated = True
        return applied

    def _ensure_migrated(self) -> None:
        """Called by the loader before each batch: storage that was down at startup gets its schema."""
        if not self.migrated:
            applied = self.migrate()
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._ensure_migrated)
        except Exception as exc:  # noqa: BLE001 - storage may be down at start; the spool still accepts
            log.warning("storage not reachable at startup, accepting into the spool: %s",
                        describe(exc, self.settings.dsn))
            self.loader.healthy = False
        self.loader.start()
        self._sync_kick = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._syncer()))
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        self.shutting_down = True
        for t in self._tasks:
            t.cancel()
        try:
            await asyncio.to_thread(self.spool.sync)
            self._release_waiters()
        except OSError as exc:
            self._release_waiters(exc)
        drained = await asyncio.to_thread(self.loader.stop, self.settings.shutdown_deadline_s)
        self.spool.close()
        await asyncio.to_thread(self.store.close)
        log.info("stopped; spool %s", "drained" if drained else f"keeps {self.loader.backlog()} bytes for the next start")

    async def _syncer(self) -> None:
        interval = self.settings.fsync_interval_ms / 1000
        kick = self._sync_kick
        assert kick is not None
        while True:
            try:
                await asyncio.wait_for(kick.wait(), timeout=interval)
            except asyncio.TimeoutError:
                pass
            kick.clear()
            waiters, self._sync_waiters = self._sync_waiters, []
            error: OSError | None = None
            if self.spool.dirty:
                try:
                    await asyncio.to_thread(self.spool.sync)
                except OSError as exc:
                    log.error("spool fsync failed: %s", exc.strerror)
                    error = exc
            _release(waiters, error)

    def _release_waiters(self, error: OSError | None = None) -> None:
        waiters, self._sync_waiters = self._sync_waiters, []
        _release(waiters, error)

    # -- ingest --------------------------------------------------------------------------------
    async def ingest(self, site: Site, payloads: list[dict], ip: str, user_agent: str, gpc: bool) -> int:
        """Run the pipeline and spool the results. Returns how many events were stored (not dropped)."""
        return await self.ingest_groups([(site, payloads)], ip, user_agent, gpc)

    async def ingest_groups(self, groups: list[tuple[Site, list[dict]]], ip: str, user_agent: str, gpc: bool) -> int:
        """One request's events, possibly for several sites, spooled in one append: all or nothing,
        so a client retrying after a 503 never duplicates part of its batch."""
        if self.shutting_down:
            raise Unavailable("shutting down", retry_after=1)
        now_ms = int(time.time() * 1000)
        records = []
        pipeline = self.pipeline
        run = pipeline.run
        total = 0
        shared: dict = {}  # what all events of this request derive from its address and User-Agent
        # drops of this request are counted only if the request is acknowledged (conservation)
        dropped, pipeline.dropped = pipeline.dropped, Counter()
        try:
            for site, payloads in groups:
                total += len(payloads)
                for p in payloads:
                    ev = run(Event(site=site, payload=p, ip=ip, user_agent=user_agent, received_ms=now_ms, gpc=gpc,
                                   shared=shared))
                    if ev is not None:
                        row = ev.row
                        row["_t"] = ev.table
                        row["_at"] = now_ms
                        records.append(orjson.dumps(row))
        finally:
            mine, pipeline.dropped = pipeline.dropped, dropped
        if records:
            await self._append(records, total)
        if mine:
            dropped.update(mine)
        self.metrics.accepted.inc(total)
        return len(records)

    async def spool_records(self, records: list[bytes]) -> None:
        """Spool rows that skip the pipeline (consent ledger); counted as accepted once durable."""
        await self._append(records, len(records))
        self.metrics.accepted.inc(len(records))

    async def _append(self, records: list[bytes], events: int) -> None:
        """Append to the spool or raise Unavailable (503 + Retry-After): never acknowledge unspooled data."""
        if self.shutting_down:
            raise Unavailable("shutting down", retry_after=1)
        try:
            self.spool.append(records)
        except SpoolFull as exc:
            self.metrics.refused.labels("spool_full").inc(events)
            raise Unavailable(f"cannot accept events now: {exc}", retry_after=5) from None
        except OSError as exc:
            self.metrics.refused.labels("spool_error").inc(events)
            raise Unavailable(f"cannot accept events now: spool write failed ({exc.strerror})", retry_after=5) from None
        if self.settings.fsync == "always":
            fut = asyncio.get_running_loop().create_future()
            self._sync_waiters.append(fut)
            assert self._sync_kick is not None
            self._sync_kick.set()
            await fut

    # -- metrics -------------------------------------------------------------------------------
    def delivery_status(self) -> dict:
        """The spool, checkpoint, dead letters and conservation counts of this running process."""
        from collector.loader import status

        return status(self.spool, self.loader.cp, self.loader.dead, running=True,
                      storage_healthy=self.loader.healthy, last_error=self.loader.last_error,
                      conservation=self.conservation())

    def unstored_records(self) -> int:
        """Spool records not yet consumed by the loader (inherited + appended - loaded)."""
        return self.inherited - sum(self.spool_lost.values()) + self.spool.appended_records - self.loader.loaded_records

    def conservation(self) -> dict:
        """The oracle, for this process: inherited + accepted = stored + dead_lettered + dropped + unstored."""
        m = self.metrics
        stored = sum(s._value.get() for s in _children(m.stored))
        dropped = sum(self.pipeline.dropped.values()) + sum(self.spool_lost.values())
        out = {"inherited": self.inherited, "accepted": m.accepted._value.get(), "stored": stored,
               "dead_lettered": m.dead_lettered._value.get(), "dropped": dropped,
               "unstored": self.unstored_records()}
        out["unaccounted"] = (out["inherited"] + out["accepted"] - out["stored"] - out["dead_lettered"]
                              - out["dropped"] - out["unstored"])
        return out

    def _collect(self):
        dropped = dict(self.pipeline.dropped)
        for reason, n in self.spool_lost.items():
            if n:
                dropped[reason] = dropped.get(reason, 0) + n
        yield counter("collector_events_dropped", "Events dropped, by reason (pipeline policy, spool damage)",
                      dropped, "reason")
        yield gauge("collector_spool_inherited_records",
                    "Unstored spool records (incl. damaged ones) found at startup from an earlier run", self.inherited)
        yield gauge("collector_spool_unstored_records", "Spool records not yet stored", self.unstored_records())
        yield counter("collector_links_refused", "Identity tokens that did not link, by reason",
                      dict(self.identity.refused), "reason")
        yield counter("collector_pipeline_step_seconds", "Time spent in each pipeline step",
                      {k: v / 1e9 for k, v in self.pipeline.step_ns.items()}, "step")
        yield gauge("collector_spool_bytes", "Bytes in the spool", self.spool.total_bytes)
        yield gauge("collector_spool_unstored_bytes", "Spooled bytes not yet stored", self.loader.backlog())
        yield gauge("collector_spool_quota_bytes", "Spool quota: beyond it events are refused with 503",
                    self.spool.quota_bytes)
        yield gauge("collector_spool_segments", "Segment files in the spool", len(self.spool.segments()))
        yield gauge("collector_spool_quarantined_ranges", "Damaged spool ranges quarantined at startup",
                    self.spool.quarantined)
        yield gauge("collector_spool_torn_tails", "Torn spool tails truncated at startup", self.spool.torn_truncated)
        oldest = self.loader.oldest_unstored_ms
        age = max(0.0, time.time() - oldest / 1000) if oldest and self.loader.backlog() else 0.0
        yield gauge("collector_oldest_unstored_seconds", "Age of the oldest event not yet stored", age)
        yield gauge("collector_storage_healthy", "1 when the last storage write succeeded", int(self.loader.healthy))


def _children(metric) -> list:
    """The child counters of a labelled prometheus_client metric."""
    return list(metric._metrics.values())


def _release(waiters: list[asyncio.Future], error: OSError | None) -> None:
    """Answer the requests waiting for an fsync: go on, or 503 when the fsync failed."""
    for w in waiters:
        if not w.done():
            if error is None:
                w.set_result(None)
            else:
                w.set_exception(Unavailable("cannot accept events now: spool fsync failed", retry_after=5))

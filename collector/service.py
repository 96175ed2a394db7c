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
from pathlib import Path

import orjson

from collector.clientip import ClientIp
from collector.errors import Unavailable
from collector.loader import Loader
from collector.metrics import Metrics, counter, gauge
from collector.settings import Settings, Site
from collector.spool import Spool, SpoolFull
from collector.store import Store
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
        self.store = store or Store(settings.dsn, settings.database)
        self.spool = Spool(data / "spool", settings.segment_bytes, settings.spool_quota_bytes, settings.fsync)
        self.loader = Loader(self.spool, self.store, data, self.metrics, settings.batch_size,
                             settings.flush_interval_ms / 1000, settings.dead_letter_days)
        self.spool.recover(self.loader.cp.seg, self.loader.cp.offset)
        self.admin_token = admin_token(settings)
        self.ready = False
        self.shutting_down = False
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

    async def start(self) -> None:
        try:
            applied = await asyncio.to_thread(self.migrate)
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
        except Exception as exc:  # noqa: BLE001 - storage may be down at start; the spool still accepts
            log.warning("storage not reachable at startup, accepting into the spool: %s", exc)
        self.loader.start()
        self._sync_kick = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._syncer()))
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        self.shutting_down = True
        for t in self._tasks:
            t.cancel()
        await asyncio.to_thread(self.spool.sync)
        self._release_waiters()
        if not self.migrated:
            try:
                await asyncio.to_thread(self.migrate)
            except Exception:  # noqa: BLE001
                pass
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
            if self.spool.dirty:
                await asyncio.to_thread(self.spool.sync)
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    def _release_waiters(self) -> None:
        waiters, self._sync_waiters = self._sync_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    # -- ingest --------------------------------------------------------------------------------
    async def ingest(self, site: Site, payloads: list[dict], ip: str, user_agent: str, gpc: bool) -> int:
        """Run the pipeline and spool the results. Returns how many events were stored (not dropped)."""
        if self.shutting_down:
            raise Unavailable("shutting down", retry_after=1)
        now_ms = int(time.time() * 1000)
        records = []
        run = self.pipeline.run
        for p in payloads:
            ev = run(Event(site=site, payload=p, ip=ip, user_agent=user_agent, received_ms=now_ms, gpc=gpc))
            if ev is not None:
                row = ev.row
                row["_t"] = ev.table
                row["_at"] = now_ms
                records.append(orjson.dumps(row))
        if records:
            await self.spool_records(records)
        self.metrics.accepted.inc(len(payloads))
        return len(records)

    async def spool_records(self, records: list[bytes]) -> None:
        try:
            self.spool.append(records)
        except SpoolFull as exc:
            raise Unavailable(f"cannot accept events now: {exc}", retry_after=5) from None
        except OSError as exc:
            raise Unavailable(f"cannot accept events now: spool write failed ({exc.strerror})", retry_after=5) from None
        if self.settings.fsync == "always":
            fut = asyncio.get_running_loop().create_future()
            self._sync_waiters.append(fut)
            assert self._sync_kick is not None
            self._sync_kick.set()
            await fut

    # -- metrics -------------------------------------------------------------------------------
    def _collect(self):
        yield counter("collector_events_dropped", "Events dropped by policy, by reason",
                      dict(self.pipeline.dropped), "reason")
        yield counter("collector_links_refused", "Identity tokens that did not link, by reason",
                      dict(self.identity.refused), "reason")
        yield counter("collector_pipeline_step_seconds", "Time spent in each pipeline step",
                      {k: v / 1e9 for k, v in self.pipeline.step_ns.items()}, "step")
        yield gauge("collector_spool_bytes", "Bytes in the spool", self.spool.total_bytes)
        yield gauge("collector_spool_unstored_bytes", "Spooled bytes not yet stored", self.loader.backlog())
        yield gauge("collector_spool_quarantined_records", "Damaged spool records quarantined at startup",
                    self.spool.quarantined)
        oldest = self.loader.oldest_unstored_ms
        age = max(0.0, time.time() - oldest / 1000) if oldest and self.loader.backlog() else 0.0
        yield gauge("collector_oldest_unstored_seconds", "Age of the oldest event not yet stored", age)
        yield gauge("collector_storage_healthy", "1 when the last storage write succeeded", int(self.loader.healthy))

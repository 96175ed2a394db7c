"""The running collector: the ingest path over parts built by ``collector.assembly``.

Accept → validate → enrich and pseudonymize in memory → append to the durable spool → answer.
The request path never waits on ClickHouse; the loader thread drains the spool.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import time
from typing import Callable

from collector import gcpolicy
from collector.assembly import Parts, assemble
from collector.delivery import record
from collector.erase import erase_member
from collector.delivery.loader import status
from collector.delivery.spool import SpoolFull
from collector.delivery.sync import SharedWrite
from collector.errors import StorageError, Unavailable
from collector.metrics import counter, gauge, gauge_by
from collector.pipeline import Event
from collector.settings import Settings, Site
from collector.storage import migrate

log = logging.getLogger("collector")


class State(enum.Enum):
    STARTING = "starting"  # built; storage and the loader not started yet
    READY = "ready"  # accepting into the spool
    DRAINING = "draining"  # shutdown requested: still answering, readiness off, connections closed
    STOPPED = "stopped"  # no longer accepting


class Collector:
    def __init__(self, parts: Parts):
        self.parts = parts
        self.settings = parts.settings
        self.counts = parts.counts
        self.metrics = parts.metrics
        self.keys = parts.keys
        self.consent = parts.consent
        self.pipeline = parts.pipeline
        self.identity = parts.pipeline.step("identity")
        self.store = parts.store
        self.spool = parts.spool
        self.loader = parts.loader
        self.sync = parts.sync
        self.writer = SharedWrite(parts.spool)  # requests of one event-loop turn share one write()
        # requests answered inline in this event-loop turn, waiting for the pipeline (end_turn)
        self._turn: list[tuple[list[Event], int, Callable[[BaseException | None], None]]] = []
        self.shared_runs = 0  # requests that went through the pipeline with others of their turn
        self.admin_token = parts.admin_token
        self.analyst_token = parts.analyst_token
        self.peers = None  # with several workers: blanks a member's records in the other workers' spools
        rec = parts.recovery
        # conservation: records found unstored at startup (and those lost to damage) belong to this process
        self.inherited = rec.records + rec.damaged_records + rec.torn_records
        self.counts.dropped.update({"spool_damaged": rec.damaged_records, "spool_torn": rec.torn_records})
        self.spool_lost = rec.damaged_records + rec.torn_records
        self.state = State.STARTING
        self.migrated = False
        self._keys_task: asyncio.Task | None = None
        self.metrics.add_source(self._collect)

    @classmethod
    def from_settings(cls, settings: Settings, store=None) -> "Collector":
        return cls(assemble(settings, store))

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state is State.READY

    @property
    def draining(self) -> bool:
        return self.state is State.DRAINING

    def migrate(self) -> list[str]:
        applied = migrate.apply(self.store, self.settings)
        self.migrated = True
        return applied

    def _ensure_migrated(self) -> None:
        """Called by the loader before each batch: storage that was down at startup gets its schema,
        and erasures that could not reach it are applied before anything else is stored."""
        if not self.migrated:
            applied = self.migrate()
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
        pending = self.parts.pending_erasures
        if pending:
            n = pending.apply(self.store)
            log.info("applied %d pending erasure(s) to storage", n)

    def forget(self, site: str, member_ref: str) -> dict:
        """Erase a member everywhere (see ``collector.erase``); runs in a worker thread."""
        return erase_member(self.settings, site, member_ref, keys=self.keys, consent=self.consent, spool=self.spool,
                            loader_lock=self.loader.lock, dead_letters=self.loader.dead, store=self.store,
                            pending=self.parts.pending_erasures, peers=self.peers)

    async def start(self) -> None:
        self.loader.prepare = self._ensure_migrated
        try:
            await asyncio.to_thread(self._ensure_migrated)
        except StorageError as exc:  # storage may be down at start; the spool still accepts
            log.warning("storage not reachable at startup, accepting into the spool: %s", exc.message)
            self.loader.healthy = False
        self.loader.start()
        self.sync.start()
        self._keys_task = asyncio.create_task(self._maintain_keys())
        self.state = State.READY

    def request_shutdown(self) -> None:
        """SIGTERM: readiness off; answers close their connections; requests are still accepted."""
        if self.state is State.READY:
            self.state = State.DRAINING
            log.info("shutdown requested: readiness off")

    async def _maintain_keys(self) -> None:
        """Destroy expired visitor keys on a timer, whatever traffic arrives (or none)."""
        interval = max(0.5, min(60.0, self.settings.key_period_s / 10))
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.keys.maintain)
            except OSError as exc:
                log.error("key maintenance failed: %s", exc.strerror)

    async def stop(self) -> None:
        self.state = State.STOPPED
        if self._keys_task is not None:
            self._keys_task.cancel()
        await self.sync.stop()
        drained = await asyncio.to_thread(self.loader.stop, self.settings.shutdown_deadline_s)
        self.spool.close()
        await asyncio.to_thread(self.store.close)
        log.info("stopped; spool %s", "drained" if drained else f"keeps {self.loader.backlog()} bytes for the next start")

    # -- ingest --------------------------------------------------------------------------------
    async def ingest(self, groups: list[tuple[Site, list[dict]]], ip: str, user_agent: str, gpc: bool,
                     origin: str | None = None) -> int:
        """One request's events, possibly for several sites, spooled in one append: all or nothing,
        so a client retrying after a 503 never duplicates part of its batch. Returns how many events
        were spooled (not dropped). Drops are counted only once the request is acknowledged."""
        records, events, dropped = self._process(groups, ip, user_agent, gpc, origin)
        if records:
            await self._append(records, events)
        self._acknowledged(events, dropped)
        return len(records)

    @property
    def answers_after_write(self) -> bool:
        """Whether an append is answered once written (``interval``), so ``ingest_soon`` may serve it."""
        return not self.sync.waits

    def ingest_soon(self, groups: list[tuple[Site, list[dict]]], ip: str, user_agent: str, gpc: bool,
                    origin: str | None, done: Callable[[BaseException | None], None]) -> None:
        """``ingest`` for a caller that cannot await (the inline beacon path), queued until the caller
        ends the turn (``end_turn``): then ``done(None)`` once the events are spooled, ``done(exc)``
        with the refusal otherwise. Only for a policy that answers after ``write()``
        (``answers_after_write``)."""
        assert not self.sync.waits
        events, now_ms = self._events(groups, ip, user_agent, gpc, origin)
        self._turn.append((events, now_ms, done))

    def end_turn(self) -> None:
        """The requests queued by ``ingest_soon`` go through the pipeline together (``Pipeline.run_many``:
        step by step over all their events, as a batch), each with its own outcome, then join the
        event-loop turn's shared write; under load a turn holds many requests."""
        turn, self._turn = self._turn, []
        if not turn:
            return
        if len(turn) == 1:
            outcomes = None
        else:
            self.shared_runs += len(turn)
            try:
                outcomes = self.pipeline.run_many([events for events, _, _ in turn])
            except Exception:  # noqa: BLE001 - a step failed: each request on its own, each its own answer
                outcomes = None
        for k, (events, now_ms, done) in enumerate(turn):
            try:
                outcome = self.pipeline.run(events) if outcomes is None else outcomes[k]
            except Exception as exc:  # noqa: BLE001 - answered by the caller (500, named)
                done(exc)
                continue
            self._submit(self._records(outcome, now_ms), len(events), outcome.dropped, done)

    def _submit(self, records: list[bytes], events: int, dropped, done) -> None:
        if not records:
            self._acknowledged(events, dropped)
            done(None)
            return

        def written(exc: BaseException | None) -> None:
            if exc is None:
                self._acknowledged(events, dropped)
                done(None)
            else:
                done(self._refusal(exc, events))

        self.writer.submit(records, written)

    def _events(self, groups, ip: str, user_agent: str, gpc: bool, origin: str | None) -> tuple[list[Event], int]:
        if self.state is State.STOPPED:
            raise Unavailable("shutting down", retry_after=1)
        now_ms = int(time.time() * 1000)
        shared: dict = {}  # what all events of this request derive from its address and User-Agent
        return [Event(site, p, ip, user_agent, now_ms, gpc, origin, shared)
                for site, payloads in groups for p in payloads], now_ms

    @staticmethod
    def _records(outcome, now_ms: int) -> list[bytes]:
        encode = record.encode
        return [encode(ev.table, ev.row, now_ms) for ev in outcome.events]

    def _process(self, groups, ip: str, user_agent: str, gpc: bool, origin: str | None):
        events, now_ms = self._events(groups, ip, user_agent, gpc, origin)
        outcome = self.pipeline.run(events)
        return self._records(outcome, now_ms), len(events), outcome.dropped

    def _acknowledged(self, events: int, dropped) -> None:
        if dropped:
            self.counts.dropped.update(dropped)
        self.counts.accepted += events

    async def spool_records(self, records: list[bytes]) -> None:
        """Spool rows that skip the pipeline (consent ledger); counted as accepted once durable."""
        await self._append(records, len(records))
        self.counts.accepted += len(records)

    async def _append(self, records: list[bytes], events: int) -> None:
        """Append to the spool or raise Unavailable (503 + Retry-After): never acknowledge unspooled data."""
        if self.state is State.STOPPED:
            raise Unavailable("shutting down", retry_after=1)
        try:
            await self.writer.append(records)
        except (SpoolFull, OSError) as exc:
            raise self._refusal(exc, events) from None
        await self.sync.durable()

    def _refusal(self, exc: BaseException, events: int) -> BaseException:
        """The answer to an append that failed, counted: 503 with Retry-After for a full or failing spool."""
        if isinstance(exc, SpoolFull):
            self.counts.refused["spool_full"] += events
            return Unavailable(f"cannot accept events now: {exc}", retry_after=5)
        if isinstance(exc, OSError):
            self.counts.refused["spool_error"] += events
            return Unavailable(f"cannot accept events now: spool write failed ({exc.strerror})", retry_after=5)
        return exc

    # -- state ---------------------------------------------------------------------------------
    def delivery_status(self) -> dict:
        """The spool, checkpoint, dead letters and conservation counts of this running process."""
        return status(self.spool, self.loader.cp, self.loader.dead, running=True,
                      storage_healthy=self.loader.healthy, last_error=self.loader.last_error,
                      conservation=self.conservation())

    def unstored_records(self) -> int:
        """Spool records not yet consumed by the loader (inherited + appended - loaded)."""
        return self.inherited - self.spool_lost + self.spool.appended_records - self.loader.loaded_records

    def conservation(self) -> dict:
        """The oracle, for this process: inherited + accepted = stored + dead_lettered + dropped + unstored."""
        c = self.counts
        out = {"inherited": self.inherited, "accepted": c.accepted, "stored": c.stored_total,
               "dead_lettered": c.dead_lettered, "dropped": c.dropped_total, "unstored": self.unstored_records()}
        out["unaccounted"] = (out["inherited"] + out["accepted"] - out["stored"] - out["dead_lettered"]
                              - out["dropped"] - out["unstored"])
        return out

    def _collect(self):
        yield counter("collector_events_dropped", "Events dropped, by reason (pipeline policy, spool damage)",
                      {k: v for k, v in self.counts.dropped.items() if v}, "reason")
        yield gauge("collector_spool_inherited_records",
                    "Unstored spool records (incl. damaged ones) found at startup from an earlier run", self.inherited)
        yield gauge("collector_spool_unstored_records", "Spool records not yet stored", self.unstored_records())
        yield counter("collector_links_refused", "Identity tokens that did not link, by reason",
                      dict(self.identity.refused), "reason")
        yield counter("collector_pipeline_shared_requests", "Requests whose events went through the pipeline "
                      "together with other requests of the same event-loop turn", self.shared_runs)
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
        pauses = gcpolicy.PAUSES
        gens = [str(g) for g in range(3)]
        yield counter("collector_gc_pause_seconds", "Time the process stood still in garbage collections, by generation",
                      dict(zip(gens, pauses.seconds)), "generation")
        yield gauge_by("collector_gc_pause_max_seconds", "The longest garbage collection since start, by generation",
                       dict(zip(gens, pauses.longest)), "generation")
        yield gauge("collector_gc_frozen_objects", "Objects frozen out of garbage collections after startup",
                    gc.get_freeze_count())

"""When spooled bytes are answered for: the fsync policy, as an object the collector is given.

* ``IntervalSync``: the answer follows ``write()``; a task fsyncs every ``interval_s``. A process
  crash loses nothing; a power loss at most the interval.
* ``AlwaysSync``: group commit. The answer waits for the next fsync, which covers every request
  that wrote before it.

Both run one background task on the event loop; the fsync itself runs in a thread.

``SharedWrite`` is how requests append: the records of every request that appends in the same
event-loop turn go out in one ``write()`` at the end of that turn, and each request continues (to
the policy above, then its answer) only once its records are written. A request's records stay all
or nothing: when the shared write fails, each request's records are tried on their own, so each
gets the answer its own append earns.
"""

from __future__ import annotations

import asyncio
import logging

from collector.errors import Unavailable

log = logging.getLogger("collector.spool")


class IntervalSync:
    waits = False

    def __init__(self, spool, interval_s: float):
        self.spool = spool
        self.interval_s = interval_s
        self._waiters: list[asyncio.Future] = []
        self._kick: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._kick = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def durable(self) -> None:
        """Called after an append: returns when the policy allows the answer."""

    async def _run(self) -> None:
        kick = self._kick
        assert kick is not None
        while True:
            try:
                await asyncio.wait_for(kick.wait(), timeout=self.interval_s)
            except asyncio.TimeoutError:
                pass
            kick.clear()
            waiters, self._waiters = self._waiters, []
            error: OSError | None = None
            if self.spool.dirty:
                try:
                    await asyncio.to_thread(self.spool.sync)
                except OSError as exc:
                    log.error("spool fsync failed: %s", exc.strerror)
                    error = exc
            _release(waiters, error)

    async def stop(self) -> None:
        """Stop the task and fsync what is written; waiting requests get their answer."""
        if self._task is not None:
            self._task.cancel()
        waiters, self._waiters = self._waiters, []
        try:
            await asyncio.to_thread(self.spool.sync)
        except OSError as exc:
            _release(waiters, exc)
            return
        _release(waiters, None)


class AlwaysSync(IntervalSync):
    waits = True

    async def durable(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        assert self._kick is not None
        self._kick.set()
        await fut


class SharedWrite:
    def __init__(self, spool):
        self.spool = spool
        self._pending: list[tuple[list[bytes], asyncio.Future]] = []
        self.writes = 0  # write() calls made (for tests and the benchmark's record)
        self.appends = 0  # requests' appends served

    async def append(self, records: list[bytes]) -> None:
        """Returns once ``records`` are written; raises what ``Spool.append`` raises for them."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((records, fut))
        await fut

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        self.appends += len(pending)
        if len(pending) > 1:
            try:
                self.writes += 1
                self.spool.append_groups([r for r, _ in pending])
            except Exception:  # noqa: BLE001 - nothing was written: each request on its own below
                pass
            else:
                for _, fut in pending:
                    if not fut.done():
                        fut.set_result(None)
                return
        for records, fut in pending:
            self.writes += 1
            try:
                self.spool.append(records)
            except Exception as exc:  # noqa: BLE001 - the request's own answer (SpoolFull, OSError)
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(None)


def policy(name: str, spool, interval_s: float) -> IntervalSync:
    return (AlwaysSync if name == "always" else IntervalSync)(spool, interval_s)


def _release(waiters: list[asyncio.Future], error: OSError | None) -> None:
    """Answer the requests waiting for an fsync: go on, or 503 when the fsync failed."""
    for w in waiters:
        if not w.done():
            if error is None:
                w.set_result(None)
            else:
                w.set_exception(Unavailable("cannot accept events now: spool fsync failed", retry_after=5))

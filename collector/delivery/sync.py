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
from typing import Callable

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
        self._pending: list[tuple[list[bytes], Callable[[BaseException | None], None]]] = []
        self.writes = 0  # write() calls made (for tests and the benchmark's record)
        self.appends = 0  # requests' appends served

    async def append(self, records: list[bytes]) -> None:
        """Returns once ``records`` are written; raises what ``Spool.append`` raises for them."""
        fut = asyncio.get_running_loop().create_future()

        def written(exc: BaseException | None) -> None:
            if not fut.done():
                if exc is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(exc)

        self.submit(records, written)
        await fut

    def submit(self, records: list[bytes], done: Callable[[BaseException | None], None]) -> None:
        """Queue ``records`` for this turn's write; ``done(None)`` once they are written, ``done(exc)``
        with what ``Spool.append`` raised for them otherwise. Called on the event loop's thread."""
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append((records, done))

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
                for _, done in pending:
                    _tell(done, None)
                return
        for records, done in pending:
            self.writes += 1
            try:
                self.spool.append(records)
            except Exception as exc:  # noqa: BLE001 - the request's own answer (SpoolFull, OSError)
                _tell(done, exc)
            else:
                _tell(done, None)


def _tell(done: Callable[[BaseException | None], None], exc: BaseException | None) -> None:
    try:
        done(exc)
    except Exception:  # noqa: BLE001 - one request's answer failing must not keep the others waiting
        log.exception("answering a spooled request failed")


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

"""``collector.http.server.MetricsPush``: a worker's pushes to the owner go on after a failure, are
sent one at a time in order, end with a final push after the collector stopped, and carry out the
flushes the owner asks for."""

from __future__ import annotations

import asyncio
import threading
import time
import types

from collector.http.server import MetricsPush


class _Metrics:
    def __init__(self, fail_on: int = 0):
        self.n, self.fail_on = 0, fail_on

    def render(self) -> bytes:
        self.n += 1
        if self.n == self.fail_on:
            raise OSError(24, "Too many open files")
        return f"collector_events_accepted_total {self.n}\n".encode()


class _Loader:
    def __init__(self):
        self.flushes = 0

    def flush_wait(self, timeout_s: float) -> bool:
        self.flushes += 1
        return True


def _push(tmp_path, metrics, post) -> MetricsPush:
    collector = types.SimpleNamespace(metrics=metrics, loader=_Loader())
    push = MetricsPush(types.SimpleNamespace(data_dir=tmp_path), collector, 1, "secret")
    push.INTERVAL_S = 0.02
    push._post = post
    return push


def test_a_failing_render_does_not_end_the_pushes_or_the_stop(tmp_path):
    sent: list[tuple[int, bytes]] = []
    push = _push(tmp_path, _Metrics(fail_on=2), lambda body, seq, flushed: sent.append((seq, body)) or {})

    async def go():
        push.start()
        await asyncio.sleep(0.3)
        assert not push._task.done()
        await push.stop()  # does not raise

    asyncio.run(go())
    assert len(sent) >= 5
    seqs = [s for s, _ in sent]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert sent[-1][1].endswith(b"%d\n" % push.metrics.n)  # the final push holds the last numbers


def test_pushes_are_one_at_a_time_so_the_final_one_arrives_last(tmp_path):
    arrived: list[int] = []
    busy = threading.Lock()

    def slow(body, seq, flushed):
        assert busy.acquire(blocking=False), "two pushes at once"
        try:
            time.sleep(0.15 if seq == 1 else 0.0)  # the first is slow (the owner busy)
            arrived.append(seq)
        finally:
            busy.release()
        return {}

    push = _push(tmp_path, _Metrics(), slow)

    async def go():
        push.start()
        await asyncio.sleep(0.05)  # the first push is in flight
        await push.stop()

    asyncio.run(go())
    assert arrived == sorted(arrived) and arrived[-1] == push.seq


def test_a_flush_the_owner_asks_for_is_carried_out_and_reported(tmp_path):
    seen: list[int] = []

    def post(body, seq, flushed):
        seen.append(flushed)
        return {"ok": True, "flush": 3}  # the owner asks for flush 3

    push = _push(tmp_path, _Metrics(), post)

    async def go():
        push.start()
        await asyncio.sleep(0.3)
        await push.stop()

    asyncio.run(go())
    assert push.collector.loader.flushes == 1  # once, not on every answer
    assert seen[0] == 0 and seen[-1] == 3 and push.flushed == 3

"""Storage work yields the CPU to requests: the loader's and the embedded engine's threads run at a
higher nice value than the event loop's, in a served collector with real chDB."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from collector.delivery import priority
from collector.testing import CHROME_UA, CollectorProcess, make_settings


def threads_of(pid: int) -> list[tuple[int, str, int]]:
    """(tid, name, nice) of every thread of ``pid``."""
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{t}/stat").read_text()
        except FileNotFoundError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        nice = int(stat[stat.rindex(")") + 2 :].split()[16])
        out.append((int(t), name, nice))
    return out


def test_only_the_threads_outside_keep_are_lowered_and_never_raised_back():
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        mine = threading.get_native_id()
        before = priority.niceness(mine)
        keep = set(priority.native_threads()) - {t.native_id}
        assert priority.yield_to_requests(7, keep) == 1
        assert priority.niceness(t.native_id) == 7 and priority.niceness(mine) == before
        assert priority.yield_to_requests(3, keep) == 0  # a lower nice value is never set back
        assert priority.niceness(t.native_id) == 7
        assert priority.yield_to_requests(0, set()) == 0  # 0: off
    finally:
        stop.set()
        t.join()


@pytest.mark.parametrize("nice", [10, 0])
def test_a_served_collector_runs_its_loader_and_engine_threads_below_the_event_loop(tmp_path, nice):
    settings = make_settings(tmp_path / "data", storage_nice=nice)
    proc = CollectorProcess(settings, tmp_path).start()
    try:
        for i in range(5):
            r = httpx.post(proc.url + "/api/event", headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA},
                           content=b'{"n":"pageview","u":"https://example.org/p/%d","d":"example.org"}' % i)
            assert r.status_code == 202
        proc.flush()  # the engine has inserted: its threads exist
        assert proc.query("SELECT count() AS c FROM events")[0]["c"] == 5
        threads = threads_of(proc.proc.pid)
        main = next(n for tid, _, n in threads if tid == proc.proc.pid)
        engine = Counter(n for _, name, n in threads if name != "python")
        assert main == 0
        assert sum(engine.values()) >= 3, threads  # the embedded engine's own pools
        if nice:
            # the engine's threads started from the main thread are swept within SWEEP_S
            deadline = time.monotonic() + 15
            while set(engine) != {nice} and time.monotonic() < deadline:
                time.sleep(0.5)
                engine = Counter(n for _, name, n in threads_of(proc.proc.pid) if name != "python")
            assert set(engine) == {nice}, engine
        else:
            assert max(engine) <= 0, engine  # left as the engine made them (some of its own at -20)
    finally:
        assert proc.stop() == 0

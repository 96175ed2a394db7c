"""The garbage collector's settings for a serving process.

With CPython's defaults a full collection scans every container object the process holds, and after
startup that is most of them: modules, settings, the database readers, the engine's bindings (about
76,000 objects). Measured in the server's request path (``loadtests/requestcpu.py``'s harness with
``gc.callbacks``), each full collection stopped the event loop for 50-70 ms on a two-core machine,
which is what the slowest answers (p99.9, max) waited for.

``settle()``, once startup is done: one collection, then ``gc.freeze()``: what startup left is moved
to a permanent generation that collections never scan (none of it is garbage by then, and it lives as
long as the process). Full collections then scan only what was made since (bounded caches, requests
in flight): 3-8 ms. Objects made after startup are collected as before. The young generation keeps
its default threshold: raised to 5,000, it saved about 5 µs per request but collected the middle
generation rarely and then for 35 ms, the kind of stall this removes.

``PAUSES`` times every collection of the process once it has settled (``gc.callbacks``: two clock
reads per collection), exported as ``collector_gc_pause_seconds_total`` and
``collector_gc_pause_max_seconds`` by generation, so a stall of this kind is visible in production,
not only in a benchmark.
"""

from __future__ import annotations

import gc
import time


class Pauses:
    """Collections by generation: how many, the time they took in total, the longest."""

    def __init__(self):
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        g = min(int(info.get("generation", 2)), 2)
        took = time.perf_counter() - self._t0
        self.count[g] += 1
        self.seconds[g] += took
        if took > self.longest[g]:
            self.longest[g] = took

    def watch(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)


PAUSES = Pauses()


def settle() -> int:
    """Freeze startup's objects out of later collections; returns how many are frozen. Pauses are
    timed from then on: startup's own full collection (tens of ms over everything startup made) is
    not a pause of the serving process."""
    gc.collect()
    gc.freeze()
    PAUSES.watch()
    return gc.get_freeze_count()

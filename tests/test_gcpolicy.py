"""The serving process's garbage-collector policy: startup's objects frozen out of collections, and
every collection's pause counted and exported."""

from __future__ import annotations

import gc

import httpx

from collector import gcpolicy
from collector.testing import CollectorProcess, make_settings
from tests.faults.harness import metrics


def test_settle_freezes_what_exists_and_pauses_are_timed_by_generation():
    pauses = gcpolicy.Pauses()
    gc.callbacks.append(pauses)
    if gcpolicy.PAUSES in gc.callbacks:
        gc.callbacks.remove(gcpolicy.PAUSES)
    served = gcpolicy.PAUSES.count[2]
    try:
        assert gcpolicy.settle() > 1000
        assert gcpolicy.PAUSES.count[2] == served  # startup's own collection is not a serving pause
        alive = [[i] for i in range(2000)]  # made after settling: still collected and scanned
        tracked = len(gc.get_objects())
        assert tracked < gc.get_freeze_count()
        gc.collect()
        assert gcpolicy.PAUSES.count[2] == served + 1
        assert pauses.count[2] >= 2 and pauses.seconds[2] > 0 and 0 < pauses.longest[2] <= pauses.seconds[2]
        del alive
    finally:
        gc.callbacks.remove(pauses)
        if gcpolicy.PAUSES in gc.callbacks:
            gc.callbacks.remove(gcpolicy.PAUSES)
        gc.unfreeze()


def test_a_served_collector_freezes_its_startup_and_exports_its_pauses(tmp_path):
    proc = CollectorProcess(make_settings(tmp_path / "data"), tmp_path).start()
    try:
        m = metrics(proc)
        assert m["collector_gc_frozen_objects"] > 10_000
        assert "collector_gc_pause_seconds_total{generation=2}" in m
        assert m["collector_gc_pause_max_seconds{generation=2}"] >= 0
        assert httpx.get(proc.url + "/healthz").status_code == 200
    finally:
        assert proc.stop() == 0

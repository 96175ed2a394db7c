"""kill -9 at random moments under load, restart, repeated: every acknowledged event stored exactly once."""

from __future__ import annotations

import random
import time

from tests.faults.harness import Ledger, Load, assert_exactly_once, assert_quiescent_conservation, fault_settings
from collector.testing import CollectorProcess

ROUNDS = 10


def test_kill9_under_load_repeatedly(tmp_path):
    rng = random.Random(4)
    settings = fault_settings(tmp_path / "data", segment_bytes=256 * 1024, batch_size=500)
    ledger = Ledger()
    proc = CollectorProcess(settings, tmp_path)
    for rnd in range(ROUNDS):
        proc.start()
        with Load(proc.url, ledger, "r" + "abcdefghijklmnopqrstuvwxyz"[rnd], threads=3):
            time.sleep(rng.uniform(0.3, 1.2))  # the loader is mid-batch at some of these moments
            proc.kill()
        assert ledger.acked, "no event was acknowledged"
    proc.start()
    try:
        c = assert_quiescent_conservation(proc)
        stored = assert_exactly_once(proc, ledger)
        assert len(ledger.acked) <= len(stored) <= len(ledger.sent)
    finally:
        assert proc.stop() == 0
    print(f"kill -9 x{ROUNDS}: {len(ledger.acked)} acknowledged, {len(stored)} stored, "
          f"{len(ledger.unknown)} unanswered at the kills, inherited by the last run {int(c['inherited'])}")

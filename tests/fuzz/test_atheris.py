"""A short coverage-guided run of the request decoder in a child process (libFuzzer exits the process
it runs in). It must finish its time budget without a crash."""

from __future__ import annotations

import subprocess
import sys

from tests.fuzz.budget import SCALE
from tests.fuzz.fuzz_decoder import SEEDS, write_seeds
from collector.testing import ROOT

SECONDS = 12 * SCALE


def test_decoder_survives_coverage_guided_fuzzing(tmp_path):
    corpus = write_seeds(tmp_path / "corpus")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.fuzz_decoder", f"-max_total_time={SECONDS}", "-max_len=4096",
         "-timeout=10", "-rss_limit_mb=2048", f"-artifact_prefix={artifacts}/", str(corpus)],
        cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 120,
    )
    crashes = list(artifacts.iterdir())
    assert proc.returncode == 0 and not crashes, (proc.stdout + proc.stderr)[-4000:]
    assert "Done" in proc.stderr and "exec/s" in proc.stderr  # libFuzzer really ran
    # the corpus grew: coverage feedback works on the instrumented modules
    assert len(list(corpus.iterdir())) > len(SEEDS), proc.stderr[-2000:]

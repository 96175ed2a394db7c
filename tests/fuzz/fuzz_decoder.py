"""Coverage-guided fuzzing (atheris / libFuzzer) of the request decoder and the pipeline after it.

    python -m tests.fuzz.fuzz_decoder [libFuzzer options] [corpus dirs]

The first byte picks the endpoint (event, batch, pixel query string); the rest is the body. Any
exception other than a CollectorError (which becomes a 4xx) is a crash: libFuzzer stops and writes
the input to ``<artifact_prefix>crash-*``. ``make test`` runs it briefly, ``make fuzz`` for minutes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["collector", "pipeline", "privacy"]):
    from tests.fuzz.harness import Harness

SEEDS = [
    b'\x00{"n":"pageview","u":"https://example.org/a?utm_source=x#h","d":"example.org","r":"https://google.com/"}',
    b'\x01[{"n":"click","u":"https://example.org/","d":"example.org","p":{"k":"v","n":1}},{"n":"pageview",'
    b'"u":"https://example.org/member/123","d":"example.org","ts":1700000000000,"e":5000}]',
    b'\x01{"events":[{"n":"search","u":"https://example.org/s?q=flu","d":"example.org"}],"cid":"lz1abc.x"}',
    b"\x02n=pageview&d=example.org&u=https%3A%2F%2Fexample.org%2Fplans%3Fq%3D1&r=https%3A%2F%2Fbing.com",
]


def write_seeds(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(SEEDS):
        (directory / f"seed-{i}").write_bytes(seed)
    return directory


harness = Harness(Path(tempfile.mkdtemp(prefix="fuzz-decoder-")))


def test_one_input(data: bytes) -> None:
    if data:
        status = harness.request(data[1:], data[0] % 3)
        assert status in (202, 400, 413, 415, 422), status


def main() -> None:
    argv = list(sys.argv)
    if not any(not a.startswith("-") for a in argv[1:]):
        argv.append(str(write_seeds(Path(tempfile.mkdtemp(prefix="fuzz-corpus-")))))
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""How hard the fuzz tests push: small in ``make test``, large in ``make fuzz`` (FUZZ_SCALE=20 or more)."""

from __future__ import annotations

import os

SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))


def examples(n: int) -> int:
    return n * SCALE

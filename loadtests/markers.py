"""Load-test markers: letters without vowels, so that no marker spells a word, a month or an
"at ... dot" address for the scrubber's detectors, and no digit run reads as an identifier."""

from __future__ import annotations

import secrets

ALPHABET = "bcfghjklmnpqrsvwxz"


def spell(n: int, width: int = 0) -> str:
    out = ""
    while True:
        n, r = divmod(n, len(ALPHABET))
        out = ALPHABET[r] + out
        if n == 0:
            return out.rjust(width, ALPHABET[0])


def random_tag(k: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(k))


def prefix(run: str) -> str:
    """What every marker of run ``run`` starts with (what the verdict selects on)."""
    if not run or any(c not in ALPHABET for c in run):
        raise ValueError(f"a run tag uses the letters {ALPHABET}")
    return "lt" + run

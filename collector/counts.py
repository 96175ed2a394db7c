"""The conservation counts of one process, as plain numbers the product owns.

``inherited + accepted = stored + dead_lettered + dropped + unstored`` (see docs/delivery.md). Events
answered 503 are counted in ``refused`` and in none of the others; requests answered with an error
are counted in ``rejected`` by status. ``collector.metrics`` exports them to Prometheus.

Each field has one writer: the event loop (accepted, refused, dropped, rejected) or the loader
thread (stored, dead_lettered).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Counts:
    accepted: int = 0
    refused: Counter = field(default_factory=Counter)  # by reason
    dropped: Counter = field(default_factory=Counter)  # by reason (pipeline policy, spool damage)
    stored: Counter = field(default_factory=Counter)  # by table
    dead_lettered: int = 0
    rejected: Counter = field(default_factory=Counter)  # requests answered 4xx/5xx, by status

    @property
    def stored_total(self) -> int:
        return sum(self.stored.values())

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

"""The conservation counts of one process, as plain numbers the product owns.

``inherited + accepted = stored + dead_lettered + dropped + unstored`` (see docs/delivery.md). Events
answered 503 are counted in ``refused`` and in none of the others; requests answered with an error
are counted in ``rejected`` by status; ``http`` counts every answer by route and status with its
latency. ``collector.metrics`` exports them to Prometheus.

Each field has one writer: the event loop (accepted, refused, dropped, rejected) or the loader
thread (stored, dead_lettered).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

# upper bounds (seconds) of the request latency buckets; the last bucket is +Inf
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class HttpStats:
    """HTTP requests answered, by route and status, with a latency histogram each: plain numbers,
    written by the event loop only. One observation is a dict lookup, a bisect and three additions."""

    __slots__ = ("series", "inline")

    def __init__(self):
        # (route, status) -> [count, sum of seconds, per-bucket counts (not cumulative), +Inf last]
        self.series: dict[tuple[str, int], list] = {}
        self.inline = 0  # beacons answered by the protocol itself, without an ASGI task

    def observe(self, route: str, status: int, seconds: float) -> None:
        s = self.series.get((route, status))
        if s is None:
            s = self.series[(route, status)] = [0, 0.0, [0] * (len(LATENCY_BUCKETS) + 1)]
        s[0] += 1
        s[1] += seconds
        s[2][bisect_left(LATENCY_BUCKETS, seconds)] += 1


@dataclass
class Counts:
    accepted: int = 0
    refused: Counter = field(default_factory=Counter)  # by reason
    dropped: Counter = field(default_factory=Counter)  # by reason (pipeline policy, spool damage)
    stored: Counter = field(default_factory=Counter)  # by table
    dead_lettered: int = 0
    rejected: Counter = field(default_factory=Counter)  # requests answered 4xx/5xx, by status
    http: HttpStats = field(default_factory=HttpStats)  # every answer, by route and status, with latency

    @property
    def stored_total(self) -> int:
        return sum(self.stored.values())

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

"""Prometheus metrics, one registry per app (counters start at zero in each process).

The conservation oracle, per process (see docs/delivery.md):
``spool_inherited_records + events_accepted = events_stored + events_dead_lettered + events_dropped
+ spool_unstored_records``; after quiescence the last term is 0. Events answered 503 are counted in
``events_refused`` and in none of the others.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class Metrics:
    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.accepted = Counter("collector_events_accepted",
                                "Events (and consent rows) acknowledged with 2xx: spooled, or dropped by policy",
                                registry=r)
        self.refused = Counter("collector_events_refused", "Valid events answered 503 because they could not be "
                               "spooled, by reason", ["reason"], registry=r)
        self.stored = Counter("collector_events_stored", "Rows stored in ClickHouse", ["table"], registry=r)
        self.dead_lettered = Counter("collector_events_dead_lettered", "Rows ClickHouse rejected permanently",
                                     registry=r)
        self.rejected = Counter("collector_requests_rejected", "Requests answered with an error", ["status"],
                                registry=r)
        self.insert_latency = Histogram("collector_insert_seconds", "Time to insert one batch", registry=r,
                                        buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.batch_size = Histogram("collector_batch_rows", "Rows per stored batch", registry=r,
                                    buckets=(1, 10, 100, 1000, 5000, 10000, 50000, 100000))
        self._sources = []

    def add_source(self, fn) -> None:
        """``fn()`` yields metric families computed at scrape time (spool bytes, drops, step timings)."""
        self._sources.append(fn)
        self.registry.register(_Custom(fn))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Custom:
    def __init__(self, fn):
        self.fn = fn

    def collect(self):
        yield from self.fn()


def counter(name: str, doc: str, values: dict[str, float], label: str) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, doc, labels=[label])
    for k, v in values.items():
        fam.add_metric([k], v)
    return fam


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)

"""Prometheus metrics, one registry per app. After quiescence:
``accepted = stored + dead_lettered + dropped`` (plus events replayed from an earlier process's spool).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class Metrics:
    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.accepted = Counter("collector_events_accepted", "Events received and validated", registry=r)
        self.stored = Counter("collector_events_stored", "Rows stored in ClickHouse", ["table"], registry=r)
        self.dead_lettered = Counter("collector_events_dead_lettered", "Rows ClickHouse rejected permanently",
                                     registry=r)
        self.rejected = Counter("collector_requests_rejected", "Requests answered with an error", ["status"],
                                registry=r)
        self.insert_latency = Histogram("collector_insert_seconds", "Time to insert one batch", registry=r)
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

"""Prometheus export of the product's own numbers, one registry per process.

The conservation counts are plain numbers (``collector.counts``); this module only renders them,
with the gauges the running collector adds at scrape time (spool, storage, key ages, …). See
docs/delivery.md for the oracle they make checkable.

Under ``serve --workers N`` only the owner (worker 0) has the internal listener that Prometheus
scrapes, and every worker counts only what it handled itself (its connections, its spool, its
loader). So each other worker sends its own rendering to the owner every second (``Peers``), and the
owner's ``/metrics`` holds every worker's series, each with a ``worker`` label, its own included;
``collector_worker_metrics_age_seconds`` says how old each worker's numbers are. A single process
exports its series without that label.
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
import threading
import time

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from collector.counts import LATENCY_BUCKETS, Counts

# ``_created`` series (one per histogram and counter) double the series count and carry nothing a
# dashboard or alert uses; rates come from the counters themselves.
disable_created_metrics()


def version() -> str:
    """The installed package's version (``collector --version``, ``collector_build_info``)."""
    try:
        return importlib.metadata.version("privacy-collector")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    def __init__(self, counts: Counts):
        self.counts = counts
        r = self.registry = CollectorRegistry()
        self.insert_latency = Histogram("collector_insert_seconds", "Time to insert one batch", registry=r,
                                        buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.batch_size = Histogram("collector_batch_rows", "Rows per stored batch", registry=r,
                                    buckets=(1, 10, 100, 1000, 5000, 10000, 50000, 100000))
        self.add_source(self._counts)
        self.add_source(self._build_info)
        self.peers: Peers | None = None  # the other workers' numbers, on the owner of several workers

    def observe_batch(self, rows: int, seconds: float) -> None:
        self.insert_latency.observe(seconds)
        self.batch_size.observe(rows)

    def add_source(self, fn) -> None:
        """``fn()`` yields metric families computed at scrape time."""
        self.registry.register(_Custom(fn))

    def render(self) -> bytes:
        """This process's metrics; on the owner of several workers, every worker's (``Peers``)."""
        if self.peers is None:
            return generate_latest(self.registry)
        return self.peers.render(self.registry)

    @staticmethod
    def _build_info():
        fam = GaugeMetricFamily("collector_build_info", "The running collector's version and Python, always 1",
                                labels=["version", "python"])
        fam.add_metric([version(), platform.python_version()], 1)
        yield fam

    def _counts(self):
        c = self.counts
        yield counter("collector_events_accepted",
                      "Events (and consent rows) acknowledged with 2xx: spooled, or dropped by policy", c.accepted)
        yield counter("collector_events_refused", "Valid events answered 503 because they could not be spooled, "
                      "by reason", dict(c.refused), "reason")
        yield counter("collector_events_stored", "Rows stored in ClickHouse", dict(c.stored), "table")
        yield counter("collector_events_dead_lettered", "Rows ClickHouse rejected permanently", c.dead_lettered)
        yield counter("collector_requests_rejected", "Requests answered with an error status, by status",
                      {str(k): v for k, v in c.rejected.items()}, "status")
        yield from http_families(c.http)


def http_families(http):
    """Requests by route and status (a counter) and their latency (a histogram), from ``HttpStats``."""
    series = sorted(http.series.items())
    req = CounterMetricFamily("collector_http_requests", "HTTP requests answered, by route and status",
                              labels=["route", "status"])
    lat = HistogramMetricFamily("collector_http_request_seconds",
                                "Time from the request's headers to its answer, by route and status",
                                labels=["route", "status"])
    bounds = [f"{b:g}" for b in LATENCY_BUCKETS] + ["+Inf"]
    for (route, status), (count, total, per_bucket) in series:
        labels = [route, str(status)]
        req.add_metric(labels, count)
        cumulative, running = [], 0
        for bound, n in zip(bounds, per_bucket):
            running += n
            cumulative.append((bound, running))
        lat.add_metric(labels, cumulative, total)
    yield req
    yield lat
    yield counter("collector_http_inline_answers", "Beacons answered inside the connection's protocol (their "
                  "whole request in one read), without an ASGI task; also counted in collector_http_requests",
                  http.inline)


class Peers:
    """The owner's copy of the other workers' metrics: each worker's latest rendering, parsed once when
    it arrives. It also carries flush requests to the workers (``request_flush``): the answer to each
    push names the latest one, and a worker's later pushes say which it has carried out."""

    LABEL = "worker"
    TYPES = ("counter", "gauge", "histogram")  # all that the collector renders

    def __init__(self, own: int, workers: int, clock=time.monotonic):
        self.own = own
        self.workers = workers  # how many workers there are, the owner included
        self.clock = clock
        self.flush_requested = 0  # the latest flush's number
        self._latest: dict[int, _Pushed] = {}
        self._lock = threading.Lock()

    def receive(self, worker: int, text: str, seq: int = 0, flushed: int = 0) -> int:
        """A worker's rendering (its ``seq``-th push; ``flushed``: the latest flush it carried out), or
        ``ValueError`` unless it comes from another worker and is what a collector renders: the
        exposition format, counters, gauges and histograms with plain names, no timestamps, no
        ``worker`` label. An older push than the one held is ignored. Returns the flush to carry out."""
        if worker < 0 or worker == self.own or worker >= self.workers:
            raise ValueError(f"worker {worker} is not another worker")
        try:
            families = list(text_string_to_metric_families(text))
        except Exception as exc:  # noqa: BLE001 - the parser raises several kinds on bad input
            raise ValueError(f"not the exposition format ({type(exc).__name__})") from None
        for fam in families:
            if fam.type not in self.TYPES or not _NAME.fullmatch(fam.name):
                raise ValueError(f"not a family the collector renders: {fam.name[:80]!r} ({fam.type})")
            for smp in fam.samples:
                if self.LABEL in smp.labels:
                    raise ValueError(f"a worker's metrics may not carry a {self.LABEL!r} label of their own")
                if smp.timestamp is not None or smp.exemplar is not None or not _NAME.fullmatch(smp.name):
                    raise ValueError(f"not a sample the collector renders: {smp.name[:80]!r}")
        plain = {smp.name: smp.value for fam in families for smp in fam.samples if not smp.labels}
        with self._lock:
            held = self._latest.get(worker)
            if held is None or seq > held.seq:
                self._latest[worker] = _Pushed(self.clock(), seq, families, plain, flushed)
            return self.flush_requested

    def request_flush(self) -> int:
        """A new flush for every worker; returns its number (``flushed``)."""
        with self._lock:
            self.flush_requested += 1
            return self.flush_requested

    def flushed(self, number: int) -> list[int]:
        """The other workers that have not yet reported carrying out flush ``number``."""
        with self._lock:
            return [k for k in self.others() if k not in self._latest or self._latest[k].flushed < number]

    def others(self) -> list[int]:
        """The other workers: every one there is, and any that sent numbers."""
        return sorted(set(self._latest) | {k for k in range(self.workers) if k != self.own})

    def latest(self, worker: int) -> tuple[float, dict[str, float]] | None:
        """When the worker's numbers arrived (this clock) and its unlabelled samples by name, or None."""
        with self._lock:
            got = self._latest.get(worker)
        return None if got is None else (got.at, got.plain)

    def render(self, registry) -> bytes:
        with self._lock:
            latest = dict(self._latest)
        now = self.clock()
        merged: dict[str, Metric] = {}
        _add(merged, registry.collect(), str(self.own))
        for worker, pushed in sorted(latest.items()):
            _add(merged, pushed.families, str(worker))
        age = GaugeMetricFamily("collector_worker_metrics_age_seconds",
                                "How old each worker's numbers in this export are (0 for the worker that serves it)",
                                labels=[self.LABEL])
        age.add_metric([str(self.own)], 0.0)
        for worker, pushed in sorted(latest.items()):
            age.add_metric([str(worker)], max(0.0, now - pushed.at))
        merged[age.name] = age
        out = CollectorRegistry(auto_describe=False)
        out.register(_Custom(lambda: iter(merged.values())))
        return generate_latest(out)


class _Pushed:
    __slots__ = ("at", "seq", "families", "plain", "flushed")

    def __init__(self, at: float, seq: int, families: list, plain: dict[str, float], flushed: int):
        self.at, self.seq, self.families, self.plain, self.flushed = at, seq, families, plain, flushed


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _add(merged: dict[str, "Metric"], families, worker: str) -> None:
    """Each family's samples, labelled with ``worker``, into the family of the same name in ``merged``
    (a family of another type under that name is left out: one name, one type)."""
    for fam in families:
        into = merged.get(fam.name)
        if into is None:
            into = merged[fam.name] = Metric(fam.name, fam.documentation, fam.type, fam.unit)
        elif into.type != fam.type:
            continue
        into.samples.extend(Sample(s.name, {Peers.LABEL: worker, **s.labels}, s.value, s.timestamp, s.exemplar)
                            for s in fam.samples)


class _Custom:
    def __init__(self, fn):
        self.fn = fn

    def collect(self):
        yield from self.fn()


def counter(name: str, doc: str, values: dict[str, float] | float, label: str = "") -> CounterMetricFamily:
    if not isinstance(values, dict):
        return CounterMetricFamily(name, doc, value=values)
    fam = CounterMetricFamily(name, doc, labels=[label])
    for k, v in values.items():
        fam.add_metric([k], v)
    return fam


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def gauge_by(name: str, doc: str, values: dict[str, float], label: str) -> GaugeMetricFamily:
    fam = GaugeMetricFamily(name, doc, labels=[label])
    for k, v in values.items():
        fam.add_metric([k], v)
    return fam

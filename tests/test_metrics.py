"""The owner's export of several workers' metrics (``collector.metrics.Peers``): every worker's series
with a ``worker`` label, one family each, in a valid exposition; bad pushes refused."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector.counts import Counts
from collector.metrics import Metrics, Peers


def _metrics(accepted: int, stored: int) -> Metrics:
    m = Metrics(Counts())
    m.counts.accepted = accepted
    m.counts.stored["events"] = stored
    m.counts.http.observe("/api/event", 202, 0.002)
    m.observe_batch(stored, 0.01)
    return m


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_a_single_process_exports_without_a_worker_label():
    text = _metrics(3, 2).render().decode()
    assert "worker=" not in text
    assert _families(text)["collector_events_accepted"].samples[0].value == 3


def test_the_owner_exports_every_workers_series_labelled():
    now = [100.0]
    owner, one, two = _metrics(5, 4), _metrics(7, 6), _metrics(11, 0)
    owner.peers = Peers(own=0, clock=lambda: now[0])
    owner.peers.receive(1, one.render().decode())
    now[0] = 102.5
    owner.peers.receive(2, two.render().decode())
    now[0] = 103.0
    text = owner.render().decode()
    fams = _families(text)
    accepted = {s.labels["worker"]: s.value for s in fams["collector_events_accepted"].samples}
    assert accepted == {"0": 5, "1": 7, "2": 11}
    stored = {(s.labels["worker"], s.labels["table"]): s.value for s in fams["collector_events_stored"].samples}
    assert stored == {("0", "events"): 4, ("1", "events"): 6, ("2", "events"): 0}
    # histograms keep their buckets per worker
    counts = {s.labels["worker"]: s.value for s in fams["collector_insert_seconds"].samples
              if s.name == "collector_insert_seconds_count"}
    assert counts == {"0": 1, "1": 1, "2": 1}
    age = {s.labels["worker"]: s.value for s in fams["collector_worker_metrics_age_seconds"].samples}
    assert age == {"0": 0.0, "1": 3.0, "2": 0.5}
    # each family is declared once, its samples together (what Prometheus requires of a scrape)
    declared = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(declared) == len(set(declared))
    assert all("worker=" in line for line in text.splitlines() if line and not line.startswith("#"))


def test_a_newer_push_replaces_the_older():
    owner = _metrics(1, 0)
    owner.peers = Peers(own=0)
    owner.peers.receive(1, _metrics(2, 0).render().decode())
    owner.peers.receive(1, _metrics(9, 0).render().decode())
    accepted = {s.labels["worker"]: s.value for s in _families(owner.render().decode())["collector_events_accepted"].samples}
    assert accepted == {"0": 1, "1": 9}


@pytest.mark.parametrize("worker, text", [
    (0, None),  # the owner's own number
    (-1, None),
    (1, "collector_events_accepted_total{worker=\"3\"} 1\n"),  # a label the owner adds itself
    (1, "not { a metric\n"),
])
def test_bad_pushes_are_refused_and_change_nothing(worker, text):
    owner = _metrics(1, 0)
    owner.peers = Peers(own=0)
    before = owner.render()
    with pytest.raises(ValueError):
        owner.peers.receive(worker, text if text is not None else _metrics(5, 0).render().decode())
    assert owner.render() == before

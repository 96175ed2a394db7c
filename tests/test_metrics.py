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
    owner.peers = Peers(own=0, workers=3, clock=lambda: now[0])
    owner.peers.receive(1, one.render().decode(), seq=1)
    now[0] = 102.5
    owner.peers.receive(2, two.render().decode(), seq=1)
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


def test_a_newer_push_replaces_the_older_and_an_older_one_is_ignored():
    owner = _metrics(1, 0)
    owner.peers = Peers(own=0, workers=2)

    def accepted():
        fams = _families(owner.render().decode())
        return {s.labels["worker"]: s.value for s in fams["collector_events_accepted"].samples}

    owner.peers.receive(1, _metrics(2, 0).render().decode(), seq=1)
    owner.peers.receive(1, _metrics(9, 0).render().decode(), seq=3)
    assert accepted() == {"0": 1, "1": 9}
    owner.peers.receive(1, _metrics(5, 0).render().decode(), seq=2)  # sent before the one held
    assert accepted() == {"0": 1, "1": 9}


def test_a_flush_is_carried_to_the_workers_and_reported_back():
    peers = Peers(own=0, workers=3)
    text = _metrics(1, 0).render().decode()
    assert peers.receive(1, text, seq=1) == 0  # no flush asked for yet
    number = peers.request_flush()
    assert peers.flushed(number) == [1, 2]  # worker 2 has not even sent numbers
    assert peers.receive(1, text, seq=2) == number  # the answer to the push asks for it
    assert peers.flushed(number) == [1, 2]
    peers.receive(1, text, seq=3, flushed=number)
    peers.receive(2, text, seq=1, flushed=number)
    assert peers.flushed(number) == []
    assert peers.flushed(peers.request_flush()) == [1, 2]  # the next flush is another one


def _with(line: str) -> str:
    return _metrics(1, 0).render().decode() + line


@pytest.mark.parametrize("worker, text", [
    (0, None),  # the owner's own number
    (-1, None),
    (3, None),  # there is no worker 3 of three
    (1, "collector_events_accepted_total{worker=\"3\"} 1\n"),  # a label the owner adds itself
    (1, "not { a metric\n"),
    (1, _with("# TYPE collector_x gauge\ncollector_x 1 NaN\n")),  # a timestamp (the collector sends none)
    (1, _with("# TYPE collector_y gauge\ncollector_y 1 1e300\n")),
    (1, "# TYPE collector_events_accepted untyped\ncollector_events_accepted 5\n"),  # not a type it renders
    (1, "# TYPE collector_s summary\ncollector_s_sum 1\ncollector_s_count 1\n"),
    (1, '{"collector_events_accepted_total"} 1\n'),  # a quoted name
])
def test_bad_pushes_are_refused_and_change_nothing(worker, text):
    owner = _metrics(1, 0)
    owner.peers = Peers(own=0, workers=3)
    before = owner.render()
    with pytest.raises(ValueError):
        owner.peers.receive(worker, text if text is not None else _metrics(5, 0).render().decode(), seq=1)
    assert owner.render() == before


def test_a_family_of_another_type_under_an_owners_name_is_left_out():
    owner = _metrics(1, 0)
    owner.peers = Peers(own=0, workers=2)
    owner.peers.receive(1, "# HELP collector_events_accepted x\n# TYPE collector_events_accepted gauge\n"
                           "collector_events_accepted 7\n", seq=1)
    text = owner.render().decode()
    assert sum(line.startswith("# TYPE collector_events_accepted") for line in text.splitlines()) == 1
    accepted = {s.labels["worker"]: s.value for s in _families(text)["collector_events_accepted"].samples}
    assert accepted == {"0": 1}


def test_non_finite_values_render_and_the_spool_report_leaves_them_out():
    from collector.http.admin import worker_spool

    owner = _metrics(1, 0)
    owner.peers = Peers(own=0, workers=2)
    owner.peers.receive(1, "# HELP collector_spool_unstored_bytes x\n# TYPE collector_spool_unstored_bytes gauge\n"
                           "collector_spool_unstored_bytes NaN\n# HELP collector_spool_bytes x\n"
                           "# TYPE collector_spool_bytes gauge\ncollector_spool_bytes +Inf\n", seq=1)
    assert "collector_spool_unstored_bytes{worker=\"1\"} NaN" in owner.render().decode()
    report = worker_spool(owner.peers, 1)
    assert report["reported"] and report["unstored_bytes"] is None and report["bytes"] is None

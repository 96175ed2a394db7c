from collector.pipeline.event import Dropped, Event
from collector.pipeline.runner import Pipeline


class Upper:
    name = "upper"

    def __call__(self, ev):
        ev.row["x"] = ev.row["x"].upper()
        return ev


class DropEmpty:
    name = "drop_empty"

    def __call__(self, ev):
        if not ev.row["x"]:
            raise Dropped("empty")
        return ev


def event(x):
    ev = Event(site=None, payload={}, ip="", user_agent="", received_ms=0)
    ev.row = {"x": x}
    return ev


def test_steps_run_in_order_are_timed_and_drops_counted():
    p = Pipeline([DropEmpty(), Upper()])
    out = p.run([event("a"), event(""), event("b")])
    assert [ev.row for ev in out.events] == [{"x": "A"}, {"x": "B"}]
    assert out.dropped == {"empty": 1}
    assert p.run([event("c")]).dropped == {}  # each run's outcome is its own: nothing shared between calls
    assert set(p.step_ns) == {"drop_empty", "upper"} and p.names == ["drop_empty", "upper"]


def test_single_event_requests_are_timed_one_in_sample_and_counted_that_many_fold():
    from collector.pipeline.runner import SAMPLE

    p = Pipeline([DropEmpty(), Upper()])
    ticks = iter(range(10**6))
    p.clock = lambda: next(ticks)  # every clock read is one tick later
    for i in range(2 * SAMPLE):
        out = p.run([event("x" if i % 3 else "")])
        assert out.dropped == ({} if i % 3 else {"empty": 1})
    # runs SAMPLE and 2 * SAMPLE were timed: the first passed both steps (one tick each, counted
    # SAMPLE-fold), the second was dropped by the first step before its time was taken
    assert dict(p.step_ns) == {"drop_empty": SAMPLE, "upper": SAMPLE}


def test_several_requests_run_together_each_keeping_its_own_outcome():
    p = Pipeline([DropEmpty(), Upper()])
    outs = p.run_many([[event("a"), event("")], [event("")], [event("b"), event("c")], []])
    assert [[ev.row["x"] for ev in o.events] for o in outs] == [["A"], [], ["B", "C"], []]
    assert [o.dropped for o in outs] == [{"empty": 1}, {"empty": 1}, {}, {}]
    assert set(p.step_ns) == {"drop_empty", "upper"}

from collector.settings import Site
from collector.pipeline.event import Event
from collector.pipeline.gpc import GpcStep


def _event(payload, gpc=False):
    return Event(site=Site("example.org"), payload=payload, ip="81.2.69.160", user_agent="x", received_ms=0, gpc=gpc)


def test_gpc_in_the_body_counts_like_the_header():
    assert GpcStep()(_event({"gpc": True})).gpc is True
    assert GpcStep()(_event({})).gpc is False


def test_body_cannot_take_away_a_header_signal():
    assert GpcStep()(_event({"gpc": False}, gpc=True)).gpc is True

import pytest

from collector.settings import Site
from collector.pipeline.applocation import AppLocationStep, coarsen
from collector.pipeline.event import Event
from collector.testing import make_settings


@pytest.mark.parametrize(("country", "region", "stored"), [
    ("US", "US-MA", ("US", "US-MA")),
    ("us", "ma", ("US", "US-MA")),
    ("", "GB-ENG", ("GB", "GB-ENG")),
    ("GB", "", ("GB", "")),
    ("GB", "US-MA", ("GB", "")),  # a region of another country is not kept
    ("GB", "ENGLAND", ("GB", "")),  # not an ISO 3166-2 code
    ("USA", "MA", None),
    ("", "MA", None),
    ("12", "", None),
])
def test_coarsen_keeps_iso_codes_only(country, region, stored):
    assert coarsen(country, region, "region") == stored


def test_country_precision_drops_the_region():
    assert coarsen("US", "US-MA", "country") == ("US", "")


def _event(payload, platform):
    ev = Event(site=Site("example.org"), payload=payload, ip="81.2.69.160", user_agent="App/1.0", received_ms=0)
    ev.row = {"platform": platform, "country": "GB", "region": "GB-ENG", "city": "London"}
    return ev


def test_app_location_replaces_ip_geography(tmp_path):
    step = AppLocationStep(make_settings(tmp_path))
    ev = step(_event({"country": "US", "region": "MA"}, "ios"))
    assert (ev.row["country"], ev.row["region"], ev.row["city"]) == ("US", "US-MA", "")


def test_invalid_or_absent_app_location_keeps_ip_geography(tmp_path):
    step = AppLocationStep(make_settings(tmp_path))
    for payload in ({}, {"country": "Atlantis"}):
        ev = step(_event(payload, "android"))
        assert (ev.row["country"], ev.row["region"], ev.row["city"]) == ("GB", "GB-ENG", "London")


def test_web_pages_cannot_set_a_location(tmp_path):
    ev = AppLocationStep(make_settings(tmp_path))(_event({"country": "US", "region": "US-MA"}, "web"))
    assert (ev.row["country"], ev.row["region"]) == ("GB", "GB-ENG")

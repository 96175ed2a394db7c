from tests.conftest import flush, rows
from tests.support import CHROME_UA


def test_beacon_becomes_enriched_row(app_client):
    r = app_client.post(
        "/api/event",
        content='{"n":"pageview","u":"https://example.org/plans/123?utm_source=news&utm_campaign=fall&secret=1#top",'
                '"d":"example.org","r":"https://www.google.com/search?q=x"}',
        headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA, "X-Forwarded-For": "81.2.69.142"},
    )
    assert r.status_code == 202
    flush(app_client)
    (row,) = rows(app_client, "SELECT * FROM events")
    assert row["country"] == "GB" and row["region"] == "GB-ENG" and row["city"] == ""
    assert row["asn"] == 20712 and row["isp"] == "Andrews & Arnold Ltd"
    assert (row["browser"], row["browser_version"], row["os"], row["device"]) == ("Chrome", "124", "Windows", "desktop")
    assert row["path"] == "/plans/:id" and row["query"] == "utm_source=news&utm_campaign=fall"
    assert row["referrer_host"] == "google.com" and row["referrer_source"] == "Google"
    assert row["utm_source"] == "news" and row["utm_campaign"] == "fall"

from tests.conftest import flush, metrics, rows
from collector.testing import CHROME_UA


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


def post(client, body, ctype="text/plain", path="/api/event", **headers):
    import json

    return client.post(path, content=body if isinstance(body, (str, bytes)) else json.dumps(body),
                       headers={"Content-Type": ctype, "User-Agent": CHROME_UA, **headers})


def test_long_keys_json_content_type_batch_and_pixel(app_client):
    assert post(app_client, {"name": "Signup", "url": "https://example.org/join", "domain": "example.org",
                             "props": {"plan": "gold", "step": 2}}, "application/json").status_code == 202
    batch = [{"n": "pageview", "u": f"https://example.org/p{i}", "d": "example.org"} for i in range(20)]
    assert post(app_client, batch, path="/api/batch").status_code == 202
    px = app_client.get("/p.gif", params={"d": "example.org", "u": "https://example.org/nojs"},
                        headers={"User-Agent": CHROME_UA})
    assert px.status_code == 200 and px.headers["content-type"] == "image/gif" and px.content.startswith(b"GIF89a")
    flush(app_client)
    got = rows(app_client, "SELECT name, path, props FROM events ORDER BY ts")
    assert len(got) == 22
    assert {"name": "Signup", "path": "/join", "props": {"plan": "gold", "step": "2"}} in got
    assert {"name": "pageview", "path": "/nojs", "props": {}} in got


def test_unknown_site_and_bad_payloads_get_clear_4xx(app_client):
    r = post(app_client, {"n": "pageview", "u": "https://other.net/", "d": "other.net"})
    assert r.status_code == 422 and r.json()["error"] == "unknown_site" and "other.net" in r.json()["message"]
    r = post(app_client, {"n": "pageview", "d": "example.org"})
    assert r.status_code == 400 and r.json()["message"] == "url is required"
    r = post(app_client, "{not json")
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    r = post(app_client, [{"n": "pageview", "u": "https://example.org/", "d": "example.org"}, 7], path="/api/batch")
    assert r.status_code == 400 and r.json()["message"].startswith("event 1:")


def test_bots_are_dropped_with_a_counted_reason_and_the_same_answer(app_client):
    r = app_client.post("/api/event", content='{"n":"pageview","u":"https://example.org/","d":"example.org"}',
                        headers={"Content-Type": "text/plain", "User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
    assert r.status_code == 202 and r.text == "ok"
    flush(app_client)
    assert rows(app_client, "SELECT count() AS n FROM events")[0]["n"] == 0
    assert app_client.app.state.collector.counts.dropped["bot"] == 1
    assert 'collector_events_dropped_total{reason="bot"} 1.0' in metrics(app_client)


def test_health_and_readiness(app_client):
    assert app_client.get("/healthz").json() == {"alive": True}
    r = app_client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True and r.json()["spool"] == "ok"
    assert r.json()["storage"] is True


def test_a_batch_for_several_sites_is_spooled_all_or_nothing(app_client):
    svc = app_client.app.state.collector
    batch = [{"n": "pageview", "u": "https://example.org/a", "d": "example.org"},
             {"n": "pageview", "u": "http://localhost/b", "d": "localhost"}]
    before = svc.spool.total_bytes
    assert post(app_client, batch[:1], path="/api/batch").status_code == 202
    one_record = svc.spool.total_bytes - before
    svc.spool.quota_bytes = svc.spool.total_bytes + one_record + one_record // 2  # room for one record, not two
    r = post(app_client, batch, path="/api/batch")
    assert r.status_code == 503 and "Retry-After" in r.headers
    svc.spool.quota_bytes = 1 << 30
    assert post(app_client, batch, path="/api/batch").status_code == 202
    flush(app_client)
    assert sorted(r["site"] for r in rows(app_client, "SELECT site FROM events")) == [
        "example.org", "example.org", "localhost"]


def test_error_answers_are_counted_by_status_and_starlettes_own_are_json(app_client):
    assert post(app_client, "{not json").status_code == 400
    assert post(app_client, {"n": "pageview", "u": "https://nowhere.test/", "d": "nowhere.test"}).status_code == 422
    r = app_client.get("/api/event")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert app_client.get("/no-such-page").json()["error"] == "not_found"
    limiter = app_client.app.state.ratelimit
    limiter.overall, limiter.overall_burst, limiter._g_tokens = 1e-9, 1.0, 0.0
    assert post(app_client, {"n": "pageview", "u": "https://example.org/", "d": "example.org"}).status_code == 429
    text = metrics(app_client)
    for status in (400, 422, 405, 404, 429):
        assert f'collector_requests_rejected_total{{status="{status}"}} 1.0' in text, status

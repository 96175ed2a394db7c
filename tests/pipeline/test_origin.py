"""Per-site origin allow-lists, the counted drop with an unchanged answer, and CORS."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from collector.http.app import create_app
from collector.pipeline.origin import OriginPolicy, normalize, origin_of_url
from collector.settings import Site
from tests.conftest import flush, metrics, rows
from collector.testing import make_settings

TEXT = {"Content-Type": "text/plain"}
SITES = (
    Site("example.org", origins=("https://example.org", "https://*.example.org")),
    Site("shop.test", origins=("https://shop.test",)),
    Site("open.test", origins=("*",)),  # any origin
    Site("own.test"),  # no list: the site's own pages only
)


def event(domain: str, path: str = "/") -> str:
    return f'{{"n":"pageview","u":"https://{domain}{path}","d":"{domain}"}}'


def dropped(client, reason: str = "origin") -> float:
    m = re.search(rf'collector_events_dropped_total\{{reason="{reason}"\}} ([0-9.e+]+)', metrics(client))
    return float(m.group(1)) if m else 0.0


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(make_settings(tmp_path / "data", sites=SITES)), client=("127.0.0.1", 50000)) as c:
        yield c


def test_policy_matching():
    p = OriginPolicy(SITES)
    allows = p.site_allows
    assert allows("example.org", "https://example.org")
    assert allows("example.org", "HTTPS://Example.ORG:443/")
    assert allows("example.org", "https://www.example.org")
    assert allows("example.org", "https://a.b.example.org")
    assert not allows("example.org", "http://example.org")  # another scheme is another origin
    assert not allows("example.org", "https://evilexample.org")
    assert not allows("example.org", "https://example.org.evil.test")
    assert not allows("example.org", "null")
    assert not allows("example.org", "https://shop.test")
    assert allows("example.org", None)  # no Origin header: not a browser cross-origin request
    assert allows("open.test", "https://anything.test")
    assert allows("own.test", "https://own.test") and allows("own.test", "http://www.own.test:8080")
    assert not allows("own.test", "https://evil.test") and not allows("own.test", "https://own.test.evil.test")
    assert not allows("own.test", "https://" + "a" * 300 + ".own.test")  # longer than any origin: refused
    # CORS is decided before the site is known: an origin some site allows
    assert p.cors_allowed("https://shop.test") and p.cors_allowed("https://evil.test")  # open.test allows any
    strict = OriginPolicy(SITES[:2] + SITES[3:])
    assert strict.cors_allowed("https://shop.test") and not strict.cors_allowed("https://evil.test")
    assert strict.cors_allowed("https://own.test") and not strict.cors_allowed("https://x" * 100)


def test_origin_caches_stay_small_under_huge_origins():
    p = OriginPolicy(SITES)
    for i in range(3000):
        p.site_allows("example.org", f"https://{i}" + "x" * 60_000 + ".test")
        p.cors_allowed(f"https://{i}" + "x" * 60_000)
    assert p._site.cache_info().currsize == 0 and p._cors.cache_info().currsize == 0


def test_normalize_and_origin_of_url():
    assert normalize("HTTP://A.test:80/") == "http://a.test"
    assert normalize("https://a.test:8443") == "https://a.test:8443"
    assert origin_of_url("https://a.test/x?y#z") == "https://a.test"
    assert origin_of_url("https://user@a.test/") is None
    assert origin_of_url("ftp://a.test/") is None
    assert origin_of_url("not a url") is None


def test_beacon_from_other_origin_is_dropped_counted_and_answered_the_same(client):
    good = client.post("/api/event", content=event("example.org", "/good"),
                       headers={**TEXT, "Origin": "https://www.example.org"})
    bad = client.post("/api/event", content=event("example.org", "/bad"),
                      headers={**TEXT, "Origin": "https://shop.test"})
    assert (good.status_code, good.content, good.headers["content-type"]) == \
        (bad.status_code, bad.content, bad.headers["content-type"]) == (202, b"ok", "text/plain; charset=utf-8")
    assert dropped(client) == 1
    flush(client)
    assert [r["path"] for r in rows(client, "SELECT path FROM events")] == ["/good"]
    # conservation: every accepted event is stored or dropped with a reason
    text = metrics(client)
    assert "collector_events_accepted_total 2.0" in text


def test_batch_drops_only_the_sites_that_refuse_the_origin(client):
    body = f'[{event("shop.test", "/s")},{event("open.test", "/o")},{event("example.org", "/e")}]'
    assert client.post("/api/batch", content=body, headers={**TEXT, "Origin": "https://shop.test"}).status_code == 202
    assert dropped(client) == 1
    flush(client)
    assert sorted(r["site"] for r in rows(client, "SELECT site FROM events")) == ["open.test", "shop.test"]


def test_no_origin_header_is_allowed(client):
    assert client.post("/api/event", content=event("shop.test"), headers=TEXT).status_code == 202
    assert dropped(client) == 0


def test_pixel_uses_the_referer_origin(client):
    params = {"d": "shop.test", "u": "https://shop.test/p"}
    assert client.get("/p.gif", params=params, headers={"Referer": "https://evil.test/page"}).status_code == 200
    assert client.get("/p.gif", params=params, headers={"Referer": "https://shop.test/page"}).status_code == 200
    assert dropped(client) == 1


def test_cors_headers_on_beacon_responses(client):
    r = client.post("/api/event", content=event("shop.test"), headers={**TEXT, "Origin": "https://shop.test"})
    assert r.headers["access-control-allow-origin"] == "https://shop.test"
    assert "origin" in r.headers["vary"].lower()
    # errors carry them too, so the page can read why
    r = client.post("/api/event", content="{", headers={**TEXT, "Origin": "https://shop.test"})
    assert r.status_code == 400 and r.headers["access-control-allow-origin"] == "https://shop.test"
    # never a wildcard, never credentials
    assert "access-control-allow-credentials" not in r.headers


@pytest.fixture
def strict(tmp_path):
    with TestClient(create_app(make_settings(tmp_path / "data", sites=SITES[:2])), client=("127.0.0.1", 50000)) as c:
        yield c


def test_preflight_answered_only_for_allowed_origins(strict):
    ok = strict.options("/api/event", headers={"Origin": "https://shop.test", "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://shop.test"
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "content-type" in ok.headers["access-control-allow-headers"]
    for origin in ("https://evil.test", "null", "https://shop.test.evil.test"):
        bad = strict.options("/api/batch", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers
        assert bad.json()["error"] == "forbidden"
    assert strict.options("/api/event").status_code == 403  # no Origin at all
    # an origin no site allows gets no CORS header on the beacon answer (and the event is dropped)
    r = strict.post("/api/event", content=event("shop.test"), headers={**TEXT, "Origin": "https://evil.test"})
    assert r.status_code == 202 and "access-control-allow-origin" not in r.headers

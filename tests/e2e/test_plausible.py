"""Plausible compatibility: Plausible's own tracker (npm ``plausible-tracker``, vendored under fixtures)
pointed at the collector, and the request shape of Plausible's Events API."""

from __future__ import annotations

import time

import httpx

from tests.e2e.conftest import wait_rows
from collector.testing import CHROME_UA


def test_page_using_plausibles_tracker_is_stored(browser, pages, collector):
    browser.get(pages.url + "/plausible.html")
    deadline = time.monotonic() + 10
    while not browser.execute_script("return window.plausibleReady === true"):
        assert time.monotonic() < deadline, "the Plausible tracker module did not load"
        time.sleep(0.05)
    browser.execute_script("history.pushState({}, '', '/plausible/next')")  # its automatic SPA pageviews
    browser.execute_script("window.plausible.trackEvent('Download Brochure', {props: {format: 'pdf'}})")
    rows = wait_rows(collector, "SELECT name, path, props, visitor_id, browser FROM events "
                                "WHERE path LIKE '/plausible%' ORDER BY ts", 4)
    by_name = {}
    for r in rows:
        by_name.setdefault(r["name"], []).append(r)
    assert sorted(r["path"] for r in by_name["pageview"]) == ["/plausible.html", "/plausible/next"]
    (signup,) = by_name["Signup"]
    assert signup["props"] == {"plan": "gold", "seats": "3"}
    assert by_name["Download Brochure"][0]["props"] == {"format": "pdf"}
    # Plausible's tracker sends no client id: the daily IP + User-Agent pseudonym applies, as in Plausible
    assert len({r["visitor_id"] for r in rows}) == 1 and rows[0]["visitor_id"]
    assert rows[0]["browser"] == "Chrome"


def test_events_api_request_shape_and_202_answer(collector):
    headers = {"User-Agent": CHROME_UA, "X-Forwarded-For": "81.2.69.142", "Content-Type": "application/json"}
    pageview = {"name": "pageview", "url": "https://example.org/plausible-api/pricing?utm_source=ads",
                "domain": "example.org", "referrer": "https://duckduckgo.com/"}
    custom = {"name": "Signup", "url": "https://example.org/plausible-api/register", "domain": "example.org",
              "props": {"plan": "premium", "seats": 5, "trial": True}}
    for body in (pageview, custom):
        resp = httpx.post(collector.url + "/api/event", json=body, headers=headers)
        assert (resp.status_code, resp.text) == (202, "ok")
        assert resp.headers["content-type"].startswith("text/plain")
    rows = wait_rows(collector, "SELECT name, path, utm_source, referrer_source, props, country FROM events "
                                "WHERE path LIKE '/plausible-api/%' ORDER BY name", 2)
    assert rows[0]["name"] == "Signup" and rows[0]["props"] == {"plan": "premium", "seats": "5", "trial": "true"}
    assert rows[1]["path"] == "/plausible-api/pricing" and rows[1]["utm_source"] == "ads"
    assert rows[1]["referrer_source"] == "DuckDuckGo" and rows[1]["country"] == "GB"

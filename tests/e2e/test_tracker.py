"""The browser tracker (/t.js) in a real headless Chromium, asserted on the rows stored in ClickHouse."""

from __future__ import annotations

import gzip
import time
from collections import Counter

import httpx
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.mouse_button import MouseButton
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from collector.privacy.tokens import LINKING, mint
from tests.e2e.conftest import settled_rows, wait_rows
from collector.testing import SECRET

BUDGET = 2048


def open_page(browser, url: str) -> None:
    browser.get(url)
    deadline = time.monotonic() + 10
    while not browser.execute_script("return typeof window.collector === 'function' && !window.collector.q"):
        assert time.monotonic() < deadline, "tracker did not load"
        time.sleep(0.05)


def names_for(collector, path_prefix: str, table: str = "events") -> Counter:
    rows = collector.query(f"SELECT name FROM {table} WHERE path LIKE '{path_prefix}%'")
    return Counter(r["name"] for r in rows)


def test_served_script_fits_the_size_budget_with_caching_headers(collector):
    url = collector.url + "/t.js"
    with httpx.Client() as client:
        with client.stream("GET", url, headers={"Accept-Encoding": "gzip, deflate, br"}) as zipped:
            wire = b"".join(zipped.iter_raw())
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        assert zipped.status_code == 200 and zipped.headers["content-encoding"] == "gzip"
        assert len(wire) <= BUDGET, f"t.js is {len(wire)} bytes gzipped, budget {BUDGET}"
        assert "content-encoding" not in plain.headers and gzip.decompress(wire) == plain.content
        assert plain.headers["content-type"].startswith("application/javascript")
        assert "max-age=" in plain.headers["cache-control"] and plain.headers["vary"] == "Accept-Encoding"
        etag = plain.headers["etag"]
        assert zipped.headers["etag"] == etag
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        refused = client.get(url, headers={"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers and refused.content == plain.content
        versioned = client.get(url, params={"v": etag.strip('"')})
        assert "immutable" in versioned.headers["cache-control"]
    assert not any(line.startswith(b"//") for line in plain.content.splitlines())  # comments are not served


def test_pageview(browser, pages, collector):
    open_page(browser, pages.url + "/site/pageview?utm_source=newsletter&member=MBR1234567")
    (row,) = wait_rows(collector, "SELECT * FROM events WHERE path = '/site/pageview' AND name = 'pageview'")
    # the pages are served from 127.0.0.1: a host that is not the site's domain is kept only as [ip]
    assert row["host"] == "[ip]" and row["site"] == "example.org"
    assert row["query"] == "utm_source=newsletter" and row["utm_source"] == "newsletter"
    assert (row["browser"], row["browser_version"], row["device"]) == ("Chrome", "124", "desktop")
    assert row["platform"] == "web" and row["privacy"] == "standard"
    assert len(row["visitor_id"]) >= 16 and row["key_id"]


def test_spa_navigations_and_hash_routing(browser, pages, collector):
    open_page(browser, pages.url + "/spa.html")
    for script in (
        "history.pushState({}, '', '/spa/two')",
        "history.replaceState({}, '', '/spa/two?tab=2')",  # same path: not a new page
        "history.replaceState({}, '', '/spa/three')",
        "history.back()",  # popstate back to /spa.html
        "history.forward()",  # and forward to /spa/three
        "location.hash = 'section'",  # no hash routing on this page: not a new page
    ):
        browser.execute_script(script)
        time.sleep(0.15)
    rows = settled_rows(collector, "SELECT path FROM events WHERE name = 'pageview' AND path LIKE '/spa%'", 5)
    assert Counter(r["path"] for r in rows) == {"/spa.html": 2, "/spa/two": 1, "/spa/three": 2}
    # each page view in the app gets its visible time when the next one replaces it
    eng = collector.query("SELECT path, engagement_ms FROM events WHERE name = 'engagement' AND path LIKE '/spa%'")
    assert {r["path"] for r in eng} >= {"/spa.html", "/spa/two"}

    open_page(browser, pages.url + "/hash.html")
    browser.execute_script("location.hash = '#/claims'")
    time.sleep(0.15)
    browser.execute_script("location.hash = '#/plans'")
    rows = settled_rows(collector, "SELECT path FROM events WHERE name = 'pageview' AND path IN ('/claims', '/plans')", 2)
    assert sorted(r["path"] for r in rows) == ["/claims", "/plans"]


def test_back_forward_restore_counts_the_page_once_more(browser, pages, collector):
    open_page(browser, pages.url + "/site/bf-first")
    open_page(browser, pages.url + "/site/bf-second")
    browser.back()
    assert browser.execute_script("return window.restoredFromCache === true")  # restored, not reloaded
    rows = settled_rows(collector, "SELECT path FROM events WHERE name = 'pageview' AND path = '/site/bf-first'", 2)
    assert len(rows) == 2


def test_outbound_link_and_file_download(browser, pages, collector):
    open_page(browser, pages.url + "/site/clicks")
    browser.find_element(By.ID, "download").click()
    browser.find_element(By.ID, "internal").click()  # same host, not a download: no event
    time.sleep(0.3)
    browser.find_element(By.ID, "outbound").click()  # leaves the page: the beacon must survive unload
    (dl,) = wait_rows(collector, "SELECT * FROM events WHERE name = 'File Download' AND path = '/site/clicks'")
    # stored link URLs keep scheme, host and path; the link's query string is never sent
    assert dl["props"]["url"].endswith(f":{pages.port}/files/summary-of-benefits.pdf")
    assert dl["link_url"] == f"http://[ip]:{pages.port}/files/summary-of-benefits.pdf" and "token" not in str(dl)
    (out,) = wait_rows(collector, "SELECT * FROM events WHERE name = 'Outbound Link: Click' AND path = '/site/clicks'")
    assert out["props"] == {"url": pages.outbound + "/landing.html"}
    assert out["link_url"] == f"http://localhost:{pages.port}/landing.html" and out["click_text"] == "Partner pharmacy"
    assert browser.current_url.startswith(pages.outbound + "/landing.html")


def test_modifier_and_middle_clicks_are_counted_once(browser, pages, collector):
    open_page(browser, pages.url + "/site/modifier-clicks")
    main = browser.current_window_handle
    ctrl = browser.find_element(By.ID, "outbound-ctrl")
    ActionChains(browser).key_down(Keys.CONTROL).click(ctrl).key_up(Keys.CONTROL).perform()
    middle = browser.find_element(By.ID, "outbound-middle")
    actions = ActionBuilder(browser)
    actions.pointer_action.move_to(middle).pointer_down(MouseButton.MIDDLE).pointer_up(MouseButton.MIDDLE)
    actions.perform()
    right = browser.find_element(By.ID, "outbound-stay")
    ActionChains(browser).context_click(right).perform()  # a context menu is not a click on the link
    browser.switch_to.window(main)
    rows = settled_rows(collector, "SELECT props FROM events WHERE name = 'Outbound Link: Click' "
                                   "AND path = '/site/modifier-clicks'", 2)
    assert sorted(r["props"]["url"] for r in rows) == [pages.outbound + "/nothing/ctrl",
                                                        pages.outbound + "/nothing/middle"]


def test_tagged_element(browser, pages, collector):
    open_page(browser, pages.url + "/site/tagged")
    browser.find_element(By.ID, "tagged-inner").click()  # a click inside the tagged element counts
    browser.find_element(By.ID, "plain").click()
    rows = settled_rows(collector, "SELECT * FROM events WHERE path = '/site/tagged' AND name != 'pageview'", 1)
    (row,) = [r for r in rows if r["name"] != "engagement"]
    assert row["name"] == "Find a Doctor"
    assert row["props"] == {"specialty": "cardiology", "network": "ppo"}
    assert row["click_text"] == "Find a doctor"


def test_site_search(browser, pages, collector):
    # the site's search parameters (server side), a page-configured parameter, and the explicit call
    open_page(browser, pages.url + "/site/search?q=Flu%20Shots&page=2")
    open_page(browser, pages.url + "/site/find?find=Dental+plans")
    browser.execute_script("collector('search', 'vision coverage jane@example.com', {props: {results: 12}})")
    rows = wait_rows(collector, "SELECT name, path, search_term, query, props FROM events WHERE search_term != '' "
                                "AND name != 'engagement' AND path IN ('/site/search', '/site/find')", 3)
    by_term = {r["search_term"]: r for r in rows}
    assert by_term["flu shots"]["name"] == "pageview" and by_term["flu shots"]["query"] == "q=Flu+Shots"
    assert by_term["dental plans"]["path"] == "/site/find"
    # a search term is read as form input, where "+" may stand for a space: "vision+coverage+jane@…"
    # could be one plus-addressed email, so the whole run is replaced
    explicit = by_term["[email]"]
    assert explicit["name"] == "Site Search" and explicit["props"] == {"results": "12"}


def test_engagement_time_sent_when_the_page_is_hidden(browser, pages, collector):
    open_page(browser, pages.url + "/site/engaged")
    time.sleep(1.2)
    main = browser.current_window_handle
    browser.switch_to.new_window("tab")  # the visitor switches tabs: the page becomes hidden
    (row,) = wait_rows(collector, "SELECT * FROM events WHERE name = 'engagement' AND path = '/site/engaged'")
    assert 1000 <= row["engagement_ms"] < 10_000
    assert row["visitor_id"] == wait_rows(
        collector, "SELECT visitor_id FROM events WHERE name = 'pageview' AND path = '/site/engaged'")[0]["visitor_id"]
    hidden_ms = row["engagement_ms"]
    time.sleep(0.5)  # hidden time is not counted
    browser.close()
    browser.switch_to.window(main)
    assert browser.execute_script("return document.visibilityState") == "visible"
    time.sleep(0.3)
    browser.get(pages.url + "/blank.html")  # leaving sends the time since it became visible again
    rows = wait_rows(collector, "SELECT engagement_ms FROM events WHERE name = 'engagement' "
                                "AND path = '/site/engaged' ORDER BY ts", 2)
    assert rows[0]["engagement_ms"] == hidden_ms and 200 <= rows[1]["engagement_ms"] < 500 + 2000


def test_custom_event_queued_before_load(browser, pages, collector):
    open_page(browser, pages.url + "/queued.html")
    assert browser.execute_script("return window.queuedBeforeLoad") == 1
    (row,) = wait_rows(collector, "SELECT * FROM events WHERE name = 'Quote Started'")
    assert row["path"] == "/queued.html" and row["props"] == {"plan": "silver", "dependents": "2"}
    browser.execute_script("collector('event', 'Quote Finished', {props: {plan: 'silver'}})")
    wait_rows(collector, "SELECT * FROM events WHERE name = 'Quote Finished' AND path = '/queued.html'")


def test_identify_then_browse_then_logout(browser, pages, collector):
    open_page(browser, pages.url + "/site/id-before")
    (before,) = wait_rows(collector, "SELECT visitor_id FROM events WHERE path = '/site/id-before' AND name = 'pageview'")
    token = mint(SECRET, "example.org", "MBR-0042", [LINKING], 3600)
    browser.execute_script("collector('identify', arguments[0])", token)
    assert browser.execute_script("return sessionStorage.getItem('collector_identity')") == token
    assert browser.execute_script("return localStorage.length") == 0  # kept for the tab session only
    open_page(browser, pages.url + "/site/id-after")
    browser.execute_script("collector('event', 'Claim Viewed')")
    member = wait_rows(collector, "SELECT * FROM member_events WHERE path = '/site/id-after'", 2)
    assert {r["name"] for r in member} == {"pageview", "Claim Viewed"}
    assert all(len(r["member_id"]) >= 16 and r["session_id"] for r in member)
    assert len({r["member_id"] for r in member}) == 1 and "visitor_id" not in member[0]
    browser.execute_script("collector('logout')")
    assert browser.execute_script("return sessionStorage.getItem('collector_identity')") is None
    open_page(browser, pages.url + "/site/id-later")
    (later,) = wait_rows(collector, "SELECT visitor_id FROM events WHERE path = '/site/id-later' AND name = 'pageview'")
    assert later["visitor_id"] and later["visitor_id"] != before["visitor_id"]
    # anonymous rows never reach the member plane and the member's pages never the anonymous one
    assert collector.query("SELECT 1 FROM events WHERE path = '/site/id-after' AND name != 'engagement'") == []
    assert collector.query("SELECT 1 FROM member_events WHERE name = 'pageview' "
                           "AND path IN ('/site/id-before', '/site/id-later')") == []
    # time on the page viewed before login stays anonymous
    wait_rows(collector, "SELECT 1 FROM events WHERE path = '/site/id-before' AND name = 'engagement'")


def test_gpc_sends_nothing_linkable(browser, pages, collector):
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', "
                  "{get: () => true, configurable: true});"})
    try:
        browser.get(pages.url + "/blank.html")
        token = mint(SECRET, "example.org", "MBR-0043", [LINKING], 3600)
        browser.execute_script("sessionStorage.setItem('collector_identity', arguments[0])", token)
        open_page(browser, pages.url + "/site/gpc")
        assert browser.execute_script("return navigator.globalPrivacyControl") is True
        browser.execute_script("collector('event', 'Under GPC')")
        rows = wait_rows(collector, "SELECT * FROM events WHERE path = '/site/gpc'", 2)
        assert all(r["visitor_id"] == "" and r["key_id"] == "" and r["privacy"] == "gpc" for r in rows)
        assert browser.execute_script("return sessionStorage.getItem('collector_cid')") is None
        assert collector.query("SELECT 1 FROM member_events WHERE path = '/site/gpc'") == []
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


def test_opt_outs_and_ignored_pages_send_nothing(browser, pages, collector):
    browser.get(pages.url + "/no-opt-in.html")  # navigator.webdriver without data-allow-automation
    browser.get(pages.url + "/no-local-opt-in.html")  # a 127.0.0.1 page without data-allow-local
    open_page(browser, pages.url + "/site/private/records")  # data-exclude="/site/private/**"
    browser.execute_script("localStorage.setItem('collector_ignore', 'true')")
    open_page(browser, pages.url + "/site/opted-out")
    browser.execute_script("collector('event', 'Opted Out Event')")
    browser.execute_script("localStorage.removeItem('collector_ignore')")
    open_page(browser, pages.url + "/site/control")  # a page that does send, after all the others
    wait_rows(collector, "SELECT 1 FROM events WHERE path = '/site/control'")
    time.sleep(0.8)
    assert collector.query("SELECT path, name FROM events WHERE path IN "
                           "('/no-opt-in.html', '/no-local-opt-in.html', '/site/private/records', '/site/opted-out') "
                           "OR name = 'Opted Out Event'") == []


def test_engagement_before_login_never_reaches_the_member_plane(browser, pages, collector):
    # identify, then an SPA route change: the time left on the page viewed anonymously is not sent
    # under the new identity (it would join the two planes on page and time)
    open_page(browser, pages.url + "/spa.html")
    time.sleep(0.3)
    token = mint(SECRET, "example.org", "MBR-0077", [LINKING], 3600)
    browser.execute_script("collector('identify', arguments[0])", token)
    time.sleep(0.3)
    browser.execute_script("history.pushState({}, '', '/spa/after-login')")
    time.sleep(0.3)
    browser.execute_script("history.pushState({}, '', '/spa/next')")
    wait_rows(collector, "SELECT 1 FROM member_events WHERE path = '/spa/after-login' AND name = 'engagement'")
    assert collector.query("SELECT path FROM member_events WHERE path = '/spa.html'") == []
    wait_rows(collector, "SELECT 1 FROM events WHERE path = '/spa.html' AND name = 'engagement'")

"""The built-in dashboard (/dashboard on the internal listener) in a real headless Chromium: log in with
the analyst token, read the figures shown, and compare them with the answers of the analyst's own SQL
(/api/query) for the same range; export a CSV; refuse everything without the credential."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By

from collector.settings import Site
from collector.testing import CHROME_UA, ROOT, SECRET, CollectorProcess, free_port, make_settings

SITE = "example.org"
SINCE, UNTIL = "2025-11-15", "2025-11-28"  # the known day (2025-11-28) is the last of the range
PREV_SINCE, PREV_UNTIL = "2025-11-01", "2025-11-14"
RANGE = f"site = '{SITE}' AND day BETWEEN '{SINCE}' AND '{UNTIL}'"

SEED = """
import sys
from pathlib import Path
from collector.settings import Settings, Site
from collector.storage import migrate
from collector.storage.store import Store
from loadtests import known_traffic as kt

settings = Settings(data_dir=Path(sys.argv[1]))
store = Store(settings.dsn, settings.database)
migrate.apply(store, settings)
kt.insert_bulk(store, 30_000, days=28, start=kt.DAY0 - 27 * 86400)
kt.insert_known(store)
store.close()
"""


@pytest.fixture(scope="module")
def dash(tmp_path_factory, geo_dbs):
    """A collector with a loopback port for its internal listener, over known traffic: generated visits on
    2025-11-01..28 (known_traffic.insert_bulk) plus the exactly known day, written into its data directory by
    another process first (chDB: one process per data path); then a few live beacons for the realtime counter."""
    work = tmp_path_factory.mktemp("e2e-dashboard")
    city, asn = geo_dbs
    site = Site(SITE, secret=SECRET)
    settings = make_settings(work / "data", sites=(site,), geoip_city_db=str(city), geoip_asn_db=str(asn),
                             internal_port=free_port())
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", SEED, str(settings.data_dir)], cwd=ROOT, check=True, timeout=300,
                   env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    proc = CollectorProcess(settings, work).start()
    # six visitors on six networks now: the realtime view shows them (at least k = 5 of each)
    with httpx.Client(timeout=10) as client:
        for i in range(6):
            r = client.post(proc.url + "/api/event", content=json.dumps({"n": "pageview", "u": f"https://{SITE}/live/{i}",
                                                                           "d": SITE}),
                            headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA,
                                     "X-Forwarded-For": f"81.2.{60 + i}.{10 + i}"})
            assert r.status_code == 202, r.text
    proc.flush()
    yield proc
    assert proc.stop() == 0, proc.log_path.read_text()[-3000:]


def internal_url(proc: CollectorProcess) -> str:
    return f"http://127.0.0.1:{proc.settings.internal_port}"


def analyst_token(proc: CollectorProcess) -> str:
    return (Path(proc.settings.data_dir) / "analyst.token").read_text().strip()


def sql(proc: CollectorProcess, query: str, fmt: str = "JSONEachRow") -> httpx.Response:
    """The analyst's own SQL, over HTTP on the internal port."""
    return httpx.post(internal_url(proc) + "/api/query", json={"sql": query, "format": fmt},
                      headers={"Authorization": f"Bearer {analyst_token(proc)}"}, timeout=60)


def rows(proc: CollectorProcess, query: str) -> list[dict]:
    resp = sql(proc, query)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-collector-role"] == "analyst"
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


def num(v):
    """JSONEachRow quotes 64-bit integers."""
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return float(v)
    return v


def table_of(browser, panel: str) -> list[dict]:
    body = browser.find_element(By.CSS_SELECTOR, f'.panel-body[data-panel="{panel}"]')
    out = []
    for tr in body.find_elements(By.CSS_SELECTOR, "tbody tr"):
        row = {}
        for td in tr.find_elements(By.CSS_SELECTOR, "td"):
            raw = td.get_attribute("data-value")
            row[td.get_attribute("data-col")] = (raw, td.text)
        out.append(row)
    return out


def wait_for(browser, script: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        got = browser.execute_script(script)
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for: {script}"
        time.sleep(0.1)


def wait_panel(browser, panel: str) -> None:
    wait_for(browser, f"var b = document.querySelector('.panel-body[data-panel=\"{panel}\"]');"
                      "return b && (b.getAttribute('data-state') === 'ready' || b.getAttribute('data-state') === 'error')"
                      " && b.getAttribute('data-state');")
    state = browser.execute_script(f"return document.querySelector('.panel-body[data-panel=\"{panel}\"]')"
                                   ".getAttribute('data-state')")
    assert state == "ready", browser.find_element(By.CSS_SELECTOR, f'.panel-body[data-panel="{panel}"]').text


def fmt(browser, col: str, value) -> str:
    return browser.execute_script("return window.collectorDashboardFormat(arguments[0], arguments[1])", col, value)


def test_without_the_credential_everything_refuses(dash):
    base = internal_url(dash)
    q = f"?site={SITE}&since={SINCE}&until={UNTIL}"
    with httpx.Client(timeout=30) as c:
        for path in ("/dashboard/api/session", "/dashboard/api/panel/summary" + q, "/dashboard/api/panel/pages" + q,
                     "/dashboard/api/csv/pages" + q, "/dashboard/api/panel/realtime" + q):
            assert c.get(base + path).status_code == 401, path
            forged = c.get(base + path, headers={"Cookie": "collector_dashboard=" + "A" * 43})
            assert forged.status_code == 401 and forged.json()["error"] == "unauthorized", path
        # the analyst's query API: no token, a wrong token, a token in the wrong place
        assert c.post(base + "/api/query", json={"sql": "SELECT 1"}).status_code == 401
        assert c.post(base + "/api/query", json={"sql": "SELECT 1"},
                      headers={"Authorization": "Bearer " + "x" * 40}).status_code == 401
        assert c.post(base + "/api/query?token=" + analyst_token(dash), json={"sql": "SELECT 1"}).status_code == 401
        # a wrong token does not log in; a cross-site login form post is refused even with the right one
        bad = c.post(base + "/dashboard/login", data={"token": "y" * 40}, headers={"Accept": "application/json"})
        assert bad.status_code == 401 and "set-cookie" not in bad.headers
        cross = c.post(base + "/dashboard/login", data={"token": analyst_token(dash)},
                       headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403 and "set-cookie" not in cross.headers
        # the page itself holds no data and is served with a strict policy
        page = c.get(base + "/dashboard")
        assert page.status_code == 200 and 'id="login-form"' in page.text
        csp = page.headers["content-security-policy"]
        assert "connect-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"
        assert "<script>" not in page.text and "style=" not in page.text
        assert c.get(base + "/dashboard/../admin/keys").status_code in (401, 404)
        assert c.get(base + "/dashboard/secret.txt").status_code == 404
        # the public listener has no dashboard at all
        for path in ("/dashboard", "/dashboard/", "/dashboard/app.js", "/dashboard/api/session", "/api/query"):
            assert c.get(dash.url + path).status_code in (404, 405), path
        assert c.get(dash.url + "/dashboard").status_code == 404
        assert c.post(dash.url + "/dashboard/login", data={"token": analyst_token(dash)}).status_code == 404


def test_session_cookie_and_data_endpoints(dash):
    base = internal_url(dash)
    with httpx.Client(timeout=60) as c:
        resp = c.post(base + "/dashboard/login", data={"token": analyst_token(dash)})
        assert resp.status_code == 303 and resp.headers["location"] == "/dashboard"
        cookie = resp.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/dashboard" in cookie
        assert analyst_token(dash) not in cookie
        session = c.get(base + "/dashboard/api/session").json()
        assert SITE in session["sites"] and "funnel" in [p["name"] for p in session["panels"]]
        # each configured database's own credit (its metadata), as the free databases' licences ask
        assert session["data_sources"] == ["GeoLite2-City", "GeoLite2-ASN"]
        # values are validated before any SQL is built
        for bad in ("site=evil.example", f"site={SITE}'--", "since=2025-13-01", "until=2025-11-01&since=2025-11-02",
                    "limit=100000", "limit=1;DROP"):
            params = dict(x.split("=", 1) for x in f"site={SITE}&since={SINCE}&until={UNTIL}&{bad}".split("&"))
            assert c.get(base + "/dashboard/api/panel/pages", params=params).status_code == 400, bad
        assert c.get(base + "/dashboard/api/panel/events_raw",
                     params={"site": SITE, "since": SINCE, "until": UNTIL}).status_code == 400
        # a funnel step is data, never SQL
        steps = [("step", "/"), ("step", "x') UNION ALL SELECT * FROM events --")]
        odd = c.get(base + "/dashboard/api/panel/funnel", params=[("site", SITE), ("since", SINCE), ("until", UNTIL)] + steps)
        assert odd.status_code == 200 and odd.json()["rows"][1][1] == "x') UNION ALL SELECT * FROM events --"
        c.post(base + "/dashboard/logout", headers={"Origin": base})
        assert c.get(base + "/dashboard/api/session").status_code == 401


def test_dashboard_shows_what_the_analyst_sql_answers(dash, chromium, tmp_path):
    browser = chromium
    base = internal_url(dash)
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path),
                                                             "eventsEnabled": True})
    browser.delete_all_cookies()
    browser.get(f"{base}/dashboard#site={SITE}&since={SINCE}&until={UNTIL}")
    wait_for(browser, "return document.body.getAttribute('data-view') === 'login'")
    assert browser.find_element(By.ID, "login").is_displayed()
    assert not browser.find_element(By.ID, "dashboard").is_displayed()

    # a wrong token keeps the login form up
    browser.find_element(By.ID, "token").send_keys("z" * 40)
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait_for(browser, "return !document.getElementById('login-error').hidden")

    browser.find_element(By.ID, "token").send_keys(analyst_token(dash))
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait_for(browser, "return document.body.getAttribute('data-view') === 'dashboard'")
    wait_for(browser, "return document.body.getAttribute('data-loaded')", timeout=120)
    for panel in ("pages", "sources", "countries", "devices", "goals", "funnel"):
        wait_panel(browser, panel)

    # the token is nowhere the page can read; the cookie is HttpOnly, SameSite=Strict, Path=/dashboard
    token = analyst_token(dash)
    leaks = browser.execute_script("return [document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage),"
                                   " location.href, document.documentElement.outerHTML]")
    assert all(token not in x for x in leaks)
    (cookie,) = [c for c in browser.get_cookies() if c["name"] == "collector_dashboard"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
    # and the page fetched nothing from anywhere but the collector
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(function (e) { return e.name; })")
    assert urls and all(u.startswith(base + "/dashboard") for u in urls), urls
    assert browser.find_element(By.ID, "sources-text").text == "GeoLite2-City · GeoLite2-ASN"

    # headline figures, this period and the previous one
    def totals(since, until):
        (t,) = rows(dash, "SELECT sum(t.visitors) AS vs, sum(t.visits) AS v, sum(t.pageviews) AS pv, "
                          "round(sum(t.bounces) / v, 4) AS br, round(sum(t.visit_duration_s * t.visits) / v, 1) AS d "
                          f"FROM traffic_daily AS t WHERE site = '{SITE}' AND day BETWEEN '{since}' AND '{until}'")
        return {"visitors": num(t["vs"]), "visits": num(t["v"]), "pageviews": num(t["pv"]), "bounce_rate": num(t["br"]),
                "visit_duration_s": num(t["d"])}

    cur, prev = totals(SINCE, UNTIL), totals(PREV_SINCE, PREV_UNTIL)
    assert cur["visits"] > 100 and prev["visits"] > 100
    for metric, value in cur.items():
        shown = browser.find_element(By.ID, "h-" + metric)
        assert num(shown.get_attribute("data-value")) == pytest.approx(value), metric
        assert shown.text == fmt(browser, metric, value), metric
        delta = browser.find_element(By.ID, "d-" + metric)
        assert num(delta.get_attribute("data-previous")) == pytest.approx(prev[metric]), metric
        change = (value - prev[metric]) / prev[metric] * 100
        assert f"{abs(change):.1f}%" in delta.text, (metric, delta.text, change)
    assert browser.find_element(By.ID, "h-visitors").text == f"{cur['visitors']:,}"

    # the chart: one point per day of the range, the day's visitors
    daily = {r["day"]: num(r["visitors"]) for r in rows(
        dash, f"SELECT day, visitors FROM traffic_daily WHERE {RANGE} ORDER BY day")}
    points = browser.execute_script("return Array.from(document.querySelectorAll('#chart circle.point'))"
                                    ".map(function (c) { return [c.getAttribute('data-label'), +c.getAttribute('data-value')]; })")
    assert len(points) == 14 and {d: v for d, v in points if v} == {d: v for d, v in daily.items() if v}
    assert browser.find_elements(By.CSS_SELECTOR, "#chart path.line.prev")

    # panels: what is shown equals the analyst's SQL over the same views and range
    pages = rows(dash, "SELECT path, sum(visitors) AS visitors, sum(pageviews) AS pageviews FROM pages_daily "
                       f"WHERE {RANGE} GROUP BY path ORDER BY pageviews DESC, visitors DESC, path LIMIT 10")
    shown = table_of(browser, "pages")
    assert len(shown) == len(pages) == 10
    for got, want in zip(shown, pages):
        assert got["path"][0] == want["path"]
        assert num(got["visitors"][0]) == num(want["visitors"]) and num(got["pageviews"][0]) == num(want["pageviews"])
        assert got["pageviews"][1] == f"{num(want['pageviews']):,}"

    sources = rows(dash, "SELECT source, sum(visits) AS visits, sum(visitors) AS visitors, "
                         "round(sum(bounces) / visits, 4) AS bounce_rate FROM sources_daily "
                         f"WHERE {RANGE} GROUP BY source ORDER BY visits DESC, source LIMIT 10")
    shown = table_of(browser, "sources")
    assert [r["source"][0] for r in shown] == [r["source"] for r in sources]
    assert [num(r["visits"][0]) for r in shown] == [num(r["visits"]) for r in sources]
    assert [num(r["bounce_rate"][0]) for r in shown] == pytest.approx([num(r["bounce_rate"]) for r in sources])
    assert "(other)" in [r["source"] for r in sources]  # small groups are folded, and shown folded

    countries = rows(dash, "SELECT country, sum(visitors) AS visitors, sum(pageviews) AS pageviews FROM countries_daily "
                           f"WHERE {RANGE} GROUP BY country ORDER BY visitors DESC, pageviews DESC, country LIMIT 10")
    assert [(r["country"][0], num(r["visitors"][0]), num(r["pageviews"][0])) for r in table_of(browser, "countries")] == \
        [(r["country"], num(r["visitors"]), num(r["pageviews"])) for r in countries]

    goals = rows(dash, "SELECT goal, sum(conversions) AS conversions, round(conversions / sum(visits), 4) AS rate "
                       f"FROM goals_daily WHERE {RANGE} GROUP BY goal ORDER BY conversions DESC, goal LIMIT 10")
    assert [(r["goal"][0], num(r["conversions"][0]), num(r["conversion_rate"][0])) for r in table_of(browser, "goals")] == \
        [(r["goal"], num(r["conversions"]), num(r["rate"])) for r in goals]
    assert {r["goal"] for r in goals} >= {"Signup", "Quote page"}

    funnel = rows(dash, "SELECT level, step, visits FROM funnel(steps = ['/', '/plans', '/quote', 'Signup'], "
                        f"since = '{SINCE}', until = '{UNTIL}') WHERE site = '{SITE}' ORDER BY level")
    assert [(num(r["level"][0]), r["step"][0], num(r["visits"][0])) for r in table_of(browser, "funnel")] == \
        [(num(r["level"]), r["step"], num(r["visits"])) for r in funnel]
    assert len(funnel) == 4 and num(funnel[0]["visits"]) > num(funnel[2]["visits"]) > 0

    # another tab of a card: browsers
    browser.find_element(By.CSS_SELECTOR, '[data-card-tabs*="browsers"] [data-tab="browsers"]').click()
    wait_panel(browser, "browsers")
    brows = rows(dash, "SELECT browser, sum(visitors) AS visitors FROM browsers_daily "
                       f"WHERE {RANGE} GROUP BY browser ORDER BY visitors DESC, sum(pageviews) DESC, browser LIMIT 10")
    assert [(r["browser"][0], num(r["visitors"][0])) for r in table_of(browser, "browsers")] == \
        [(r["browser"], num(r["visitors"])) for r in brows]

    # the realtime counter: the view's answer for the last five minutes (the six live visitors)
    (live,) = rows(dash, f"SELECT sum(visitors) AS v, max(suppressed) AS s FROM realtime WHERE site = '{SITE}'")
    assert num(live["v"]) == 6 and num(live["s"]) == 0
    wait_for(browser, "return document.getElementById('realtime-value').getAttribute('data-value') !== null")
    assert browser.find_element(By.ID, "realtime-value").get_attribute("data-value") == "6"

    # CSV export of a panel: a real download, ClickHouse's CSVWithNames of the panel's SQL
    browser.find_element(By.CSS_SELECTOR, '[data-card-tabs^="pages"] a.csv').click()
    target = tmp_path / f"pages_{SITE}_{SINCE}_{UNTIL}.csv"
    deadline = time.monotonic() + 30
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert target.exists(), list(tmp_path.iterdir())
    exported = list(csv.reader(io.StringIO(target.read_text())))
    assert exported[0] == ["path", "visitors", "pageviews", "time_on_page_s"]
    every = rows(dash, "SELECT path, sum(visitors) AS visitors, sum(pageviews) AS pageviews FROM pages_daily "
                       f"WHERE {RANGE} GROUP BY path ORDER BY pageviews DESC, visitors DESC, path LIMIT 500")
    assert [(r[0], int(r[1]), int(r[2])) for r in exported[1:]] == \
        [(r["path"], num(r["visitors"]), num(r["pageviews"])) for r in every]
    assert len(exported) - 1 == len(every) > 10  # the export has every row, not only the ten shown

    shot = tmp_path / "dashboard.png"
    browser.set_window_size(1280, 2400)
    browser.execute_script("window.scrollTo(0, 0)")
    try:
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        browser.set_window_size(1024, 768)

    # logging out ends the session: data endpoints refuse again and the login form is back
    browser.find_element(By.ID, "logout").click()
    wait_for(browser, "return document.body.getAttribute('data-view') === 'login'")
    status = browser.execute_script("var x = new XMLHttpRequest(); x.open('GET', '/dashboard/api/session', false);"
                                    " x.send(); return x.status")
    assert status == 401

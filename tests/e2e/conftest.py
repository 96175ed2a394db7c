"""Browser end-to-end tests: fixture pages served on loopback, one collector process, one headless Chromium.

Everything is real: Debian's chromium driven by chromedriver through selenium, HTTP on ephemeral
loopback ports, and the collector as a subprocess on chDB in a temporary directory. The three are
shared by the whole e2e session; each test uses its own page paths, so rows never collide.
"""

from __future__ import annotations

import shutil
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from collector.settings import Site
from collector.testing import CHROME_UA, SECRET, CollectorProcess, make_settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--window-size=1024,768")


class PageServer:
    """Serves tests/e2e/fixtures on 127.0.0.1. HTML is a template: {{COLLECTOR}} and {{OUTBOUND}}
    (the same server under the host name ``localhost``, so links there are outbound).
    Any path under /site/ serves site.html; /files/ and /nothing/ answer 204, so clicking such a
    link leaves the page where it is."""

    def __init__(self):
        self.collector_url = ""
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = urlsplit(self.path).path
                if path.startswith(("/files/", "/nothing/")):
                    self.send_response(204)
                    self.end_headers()
                    return
                file = FIXTURES / ("site.html" if path.startswith("/site/") else path.lstrip("/"))
                if not file.is_file() and file.with_name(file.name + ".js").is_file():
                    file = file.with_name(file.name + ".js")  # extensionless ES module imports
                if not file.resolve().is_relative_to(FIXTURES) or not file.is_file():
                    self.send_error(404)
                    return
                body = file.read_bytes()
                if file.suffix == ".html":
                    body = (body.decode().replace("{{COLLECTOR}}", server.collector_url)
                            .replace("{{OUTBOUND}}", server.outbound).encode())
                ctype = {".html": "text/html; charset=utf-8", ".js": "text/javascript"}.get(file.suffix, "text/plain")
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def outbound(self) -> str:
        return f"http://localhost:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def pages():
    server = PageServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def collector(tmp_path_factory, pages, geo_dbs):
    work = tmp_path_factory.mktemp("e2e-collector")
    city, asn = geo_dbs
    site = Site("example.org", secret=SECRET, origins=(pages.url, pages.outbound), auth_prefixes=("/member/",))
    settings = make_settings(work / "data", sites=(site,), geoip_city_db=str(city), geoip_asn_db=str(asn))
    proc = CollectorProcess(settings, work).start()
    pages.collector_url = proc.url
    yield proc
    assert proc.stop() == 0, proc.log_path.read_text()[-3000:]


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(exe):
            pytest.fail(f"{exe} is missing: run scripts/test-deps.sh (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in CHROME_ARGS:
        opts.add_argument(arg)
    # The collector drops headless browsers as bots; present as the desktop Chrome a visitor uses.
    opts.add_argument(f"--user-agent={CHROME_UA}")
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(10)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium, pages, collector):
    """The shared browser on a blank fixture page with empty storage; extra tabs closed afterwards."""
    main = chromium.current_window_handle
    chromium.get(pages.url + "/blank.html")
    chromium.execute_script("sessionStorage.clear(); localStorage.clear();")
    yield chromium
    for handle in chromium.window_handles:
        if handle != main:
            chromium.switch_to.window(handle)
            chromium.close()
    chromium.switch_to.window(main)
    chromium.get(pages.url + "/blank.html")
    chromium.execute_script("sessionStorage.clear(); localStorage.clear();")


def wait_rows(collector: CollectorProcess, sql: str, n: int = 1, timeout: float = 15.0) -> list[dict]:
    """Rows for ``sql`` once there are at least ``n`` of them (the loader stores every 100 ms here)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = collector.query(sql)
        if len(rows) >= n or time.monotonic() > deadline:
            assert len(rows) >= n, f"expected {n} rows, got {len(rows)}: {rows} for {sql}"
            return rows
        time.sleep(0.1)


def settled_rows(collector: CollectorProcess, sql: str, n: int) -> list[dict]:
    """Exactly the rows for ``sql`` after ``n`` arrived and a short quiet period (catches double counting)."""
    wait_rows(collector, sql, n)
    time.sleep(0.8)
    return collector.query(sql)

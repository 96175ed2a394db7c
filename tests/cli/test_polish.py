"""What a newcomer meets first: make beacon on any port, the demo config, readable key times, --version,
a port in use, JSON for a wrong method, COLLECTOR_SITES, and headless browsers."""

from __future__ import annotations

import importlib.metadata
import json
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from collector import settings as settings_mod
from collector.pipeline.origin import OriginPolicy
from collector.testing import CollectorProcess, ROOT, env_for, free_port, make_settings

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp("polish")
    proc = CollectorProcess(make_settings(d / "data"), d).start()
    try:
        yield proc
    finally:
        assert proc.stop() == 0


def test_make_beacon_follows_collector_port(served):
    port = str(served.settings.port)
    assert port != "8000"
    for how in (["make", "-s", "beacon", f"COLLECTOR_PORT={port}"], ["make", "-s", "beacon"]):
        env = {"PATH": "/usr/bin:/bin", "COLLECTOR_PORT": port}
        r = subprocess.run(how, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("HTTP/1.1 202"), r.stdout


def test_the_demo_config_works_on_any_port():
    demo = (ROOT / "config" / "demo.toml").read_text()
    assert ":8000" not in demo
    s = settings_mod.load({"COLLECTOR_CONFIG": str(ROOT / "config" / "demo.toml")})
    policy = OriginPolicy(s.sites)
    for port in (8000, 8123, 3000):
        assert policy.site_allows("localhost", f"http://localhost:{port}")
    assert policy.site_allows("example.org", "https://www.example.org")
    assert not policy.site_allows("example.org", "https://evil.example")


def test_keys_status_prints_iso_times_and_never(tmp_path):
    settings = make_settings(tmp_path / "data")
    r = subprocess.run([sys.executable, "-m", "collector", "keys", "status"], env=env_for(settings, tmp_path / "c.toml"),
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    (member,) = [x for x in lines if x.startswith("member")]
    (visitor,) = [x for x in lines if x.startswith("visitor")]
    assert re.search(rf"valid {ISO} \.\. never$", member), member
    assert re.search(rf"valid {ISO} \.\. {ISO} destroyed at {ISO}$", visitor), visitor
    assert not re.search(r"\b\d{10,}\b", r.stdout), r.stdout  # no epoch seconds, no 2**40
    start = re.search(rf"valid ({ISO})", visitor).group(1)
    assert abs(time.mktime(time.strptime(start, "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(time.gmtime())) <= 86400


def test_version():
    r = subprocess.run([sys.executable, "-m", "collector", "--version"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0
    assert r.stdout.strip() == f"collector {importlib.metadata.version('privacy-collector')}"


def test_a_port_in_use_is_refused_before_anything_says_listening(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(tmp_path / "data", port=port)
        r = subprocess.run([sys.executable, "-m", "collector", "serve"], env=env_for(settings, tmp_path / "c.toml"),
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "listening" not in out.lower(), out
    assert str(port) in out and "in use" in out.lower(), out


def test_a_wrong_method_gets_the_documented_json_405(served):
    r = httpx.get(served.url + "/api/event")
    assert r.status_code == 405 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) >= {"error", "message"} and "POST" in r.headers.get("allow", "POST")


def test_collector_sites_is_documented_and_works():
    readme = (ROOT / "README.md").read_text()
    (mention,) = [p for p in readme.split("\n\n") if "`COLLECTOR_SITES=" in p]
    assert "comma-separated" in mention
    s = settings_mod.load({"COLLECTOR_SITES": "example.org, shop.example"})
    assert [x.domain for x in s.sites] == ["example.org", "shop.example"]


def test_headless_chrome_is_dropped_as_documented(served):
    doc = (ROOT / "docs" / "tracker.md").read_text()
    assert "HeadlessChrome" in doc and re.search(r"`data-allow-automation`\s+does not change this", doc)
    ua = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 "
          "Safari/537.36")

    def bots() -> float:
        m = re.search(r'^collector_events_dropped_total\{reason="bot"\} (\S+)$', served.metrics(), re.M)
        return float(m.group(1)) if m else 0.0

    before = bots()
    r = httpx.post(served.url + "/api/event", headers={"Content-Type": "text/plain", "User-Agent": ua},
                   content=json.dumps({"n": "pageview", "u": "https://example.org/h", "d": "example.org"}))
    assert r.status_code == 202
    assert bots() == before + 1

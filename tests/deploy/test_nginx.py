"""The nginx example: `nginx -t` with a self-signed certificate, then live in front of a collector."""

from __future__ import annotations

import re
import signal
import subprocess
import time

import httpx
import pytest

from collector.testing import CHROME_UA, GEO, CollectorProcess, free_port, make_settings, write_mmdb
from tests.deploy.conftest import DEPLOY, need

SITE = DEPLOY / "nginx" / "collector.conf"


def render(tmp, collector_port: int, http_port: int, https_port: int):
    """The example with its certificate, ports and upstream pointed into ``tmp``, inside a minimal
    nginx.conf whose pid, logs and temporary files stay in ``tmp``."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=collect.example.org", "-keyout", str(tmp / "privkey.pem"), "-out", str(tmp / "fullchain.pem")],
                   check=True, capture_output=True, timeout=60)
    site = SITE.read_text()
    site = site.replace("/etc/ssl/collector/", f"{tmp}/")
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{collector_port};")
    site = re.sub(r"listen (\[::\]:)?80;", lambda m: f"listen {m.group(1) or '127.0.0.1:'}{http_port};" if not m.group(1) else "", site)
    site = re.sub(r"listen (\[::\]:)?443 ssl http2;", lambda m: f"listen 127.0.0.1:{https_port} ssl http2;" if not m.group(1) else "", site)
    (tmp / "site.conf").write_text(site)
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / d).mkdir(exist_ok=True)
    main = f"""
user root;
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""
    (tmp / "nginx.conf").write_text(main)
    return tmp / "nginx.conf"


def nginx(conf, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([need("nginx", "nginx"), "-p", str(conf.parent), "-c", str(conf), *args],
                          capture_output=True, text=True, timeout=60)


def test_nginx_accepts_the_example(tmp_path):
    conf = render(tmp_path, 8000, free_port(), free_port())
    r = nginx(conf, "-t")
    assert r.returncode == 0, r.stderr
    assert "syntax is ok" in r.stderr and "test is successful" in r.stderr


def test_nginx_refuses_a_broken_copy(tmp_path):
    conf = render(tmp_path, 8000, free_port(), free_port())
    site = tmp_path / "site.conf"
    site.write_text(site.read_text().replace("client_max_body_size 64k;", "client_max_body_size;"))
    assert nginx(conf, "-t").returncode != 0


def test_the_example_proxies_the_public_paths_only(tmp_path):
    city = write_mmdb(tmp_path / "city.mmdb", GEO, "GeoLite2-City")
    settings = make_settings(tmp_path / "data", trusted_proxies=("127.0.0.1/32",), geoip_city_db=str(city))
    proc = CollectorProcess(settings, tmp_path).start()
    https_port, http_port = free_port(), free_port()
    conf = render(tmp_path, proc.settings.port, http_port, https_port)
    server = subprocess.Popen([need("nginx", "nginx"), "-p", str(tmp_path), "-c", str(conf)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"https://127.0.0.1:{https_port}"
    try:
        with httpx.Client(verify=False, timeout=10) as c:
            deadline = time.monotonic() + 20
            while True:
                try:
                    c.get(base + "/healthz")
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, (tmp_path / "error.log").read_text()
                    time.sleep(0.1)
            assert c.get(base + "/readyz").status_code == 200
            r = c.post(base + "/api/event", content='{"n":"pageview","u":"https://example.org/x","d":"example.org"}',
                       headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA,
                                "X-Forwarded-For": "81.2.69.142"})  # forged: nginx replaces it
            assert r.status_code == 202
            assert r.headers["strict-transport-security"].startswith("max-age=")
            assert c.get(base + "/t.js").status_code == 200
            # the internal listener's paths do not exist here, whatever the collector would answer
            for path in ("/metrics", "/admin/hello", "/admin/keys", "/api/query", "/dashboard", "/storagez"):
                assert c.get(base + path).status_code == 404, path
            too_big = c.post(base + "/api/event", content=b"x" * (800 * 1024), headers={"Content-Type": "text/plain"})
            assert too_big.status_code == 413
            plain = httpx.get(f"http://127.0.0.1:{http_port}/api/event", timeout=10)
            assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
        proc.flush()
        (row,) = proc.query("SELECT path FROM events")
        assert row["path"] == "/x"
        # the address the collector used is the peer nginx saw (loopback: no country), not the forged
        # London address, although nginx is a trusted proxy
        (geo,) = proc.query("SELECT country FROM events")
        assert geo["country"] == ""
    finally:
        server.send_signal(signal.SIGQUIT)
        server.wait(10)
        assert proc.stop() == 0

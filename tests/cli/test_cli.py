"""The CLI against a collector running as a separate process, and directly against storage."""

import json
import subprocess
import sys

import httpx
import pytest

from collector.testing import CHROME_UA, ROOT, CollectorProcess, env_for, free_port, make_settings


def cli(env, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "collector", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def running(tmp_path_factory, geo_dbs):
    d = tmp_path_factory.mktemp("cli")
    city, asn = geo_dbs
    proc = CollectorProcess(make_settings(d / "data", geoip_city_db=str(city), geoip_asn_db=str(asn)), d).start()
    yield proc
    assert proc.stop() == 0


def test_beacon_via_proxy_header_is_queryable_through_the_running_process(running):
    r = httpx.post(running.url + "/api/event", headers={
        "Content-Type": "text/plain", "User-Agent": CHROME_UA, "X-Forwarded-For": "2.125.160.216"},
        content=json.dumps({"n": "pageview", "d": "example.org", "r": "https://duckduckgo.com/",
                            "u": "https://example.org/plans/?utm_source=mail&utm_medium=email&utm_campaign=open"}))
    assert r.status_code == 202 and r.text == "ok"
    running.flush()
    out = cli(running.env, "query", "--format", "JSONEachRow",
              "SELECT country, region, asn, isp, browser, os, device, path, referrer_host, utm_source FROM events")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"country": "US", "region": "US-MA", "asn": 7922, "isp": "Comcast Cable",
                                      "browser": "Chrome", "os": "Windows", "device": "desktop", "path": "/plans/",
                                      "referrer_host": "duckduckgo.com", "utm_source": "mail"}
    tsv = cli(running.env, "query", "--format", "TSV", "SELECT count() FROM events")
    assert tsv.stdout.strip() == "1"
    pretty = cli(running.env, "query", "--format", "PrettyCompact", "SELECT 1 AS one")
    assert "one" in pretty.stdout and "┌" in pretty.stdout


def test_query_errors_are_clear(running):
    out = cli(running.env, "query", "SELECT nope FROM events")
    assert out.returncode != 0 and "nope" in out.stderr + out.stdout and "Traceback" not in out.stderr
    bad_token = dict(running.env, COLLECTOR_ADMIN_TOKEN="wrong-token-but-long-enough-0123")
    out = cli(bad_token, "query", "SELECT 1")
    assert out.returncode != 0 and "could not prove" in out.stderr + out.stdout and "Traceback" not in out.stderr
    short = dict(running.env, COLLECTOR_ADMIN_TOKEN="wrong")
    out = cli(short, "query", "SELECT 1")
    assert out.returncode != 0 and "Traceback" not in out.stderr


def test_http_dsn_to_a_closed_port_gives_a_clear_error(tmp_path):
    s = make_settings(tmp_path / "data", clickhouse_dsn=f"http://127.0.0.1:{free_port()}/analytics")
    env = env_for(s, tmp_path / "c.toml")
    out = cli(env, "query", "SELECT 1", timeout=60)
    assert out.returncode != 0
    assert "cannot reach ClickHouse at http://127.0.0.1" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
    out = cli(env, "migrate", timeout=60)
    assert out.returncode != 0 and "cannot reach ClickHouse" in out.stderr + out.stdout


def test_migrate_directly_when_no_collector_runs(tmp_path):
    env = env_for(make_settings(tmp_path / "data", port=free_port()), tmp_path / "c.toml")
    first = cli(env, "migrate")
    assert first.returncode == 0 and "0001_events" in first.stdout, first.stderr
    second = cli(env, "migrate")
    assert second.returncode == 0 and "up to date" in second.stdout
    out = cli(env, "query", "--format", "TSV", "SELECT name FROM schema_migrations ORDER BY version")
    from collector.storage import migrate

    assert out.stdout.split() == [m.name for m in migrate.migrations()]


class Recorder:
    """A stranger's HTTP server that records every request it gets."""

    def __init__(self):
        import http.server

        self.requests: list[tuple[str, str, dict]] = []
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                rec.requests.append((self.command, self.path, dict(self.headers)))
                body = b'{"alive": true, "proof": "nope"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _any

            def log_message(self, *a):
                pass

        self.handler = Handler


def test_cli_never_sends_its_token_to_a_stranger(tmp_path):
    import http.server
    import socketserver
    import threading

    s = make_settings(tmp_path / "data")
    env = env_for(s, tmp_path / "c.toml")
    # a stranger on the configured TCP port: the CLI does not use ports at all
    rec = Recorder()
    tcp = http.server.ThreadingHTTPServer(("127.0.0.1", 0), rec.handler)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    try:
        out = cli(dict(env, COLLECTOR_PORT=str(tcp.server_address[1])), "query", "--format", "TSV", "SELECT 1")
        assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr  # local data, no collector running
        assert rec.requests == []
    finally:
        tcp.shutdown()
        tcp.server_close()
    # a stranger answering on the data directory's socket cannot prove it holds the admin token
    class UnixHTTP(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    rec = Recorder()
    sock_path = s.data_dir / "admin.sock"
    s.data_dir.mkdir(parents=True, exist_ok=True)
    uds = UnixHTTP(str(sock_path), rec.handler)
    threading.Thread(target=uds.serve_forever, daemon=True).start()
    try:
        out = cli(env, "query", "SELECT 1")
        assert out.returncode != 0 and "could not prove" in out.stderr
        assert rec.requests and all("Authorization" not in h and "authorization" not in h for _, _, h in rec.requests)
        assert all(p.startswith(("/admin/hello", "/healthz")) for _, p, _ in rec.requests)
    finally:
        uds.shutdown()
        uds.server_close()


def test_a_second_shell_reaches_the_running_collector_without_its_port(running):
    env = {k: v for k, v in running.env.items() if k not in ("COLLECTOR_PORT", "COLLECTOR_HOST")}
    out = cli(env, "spool", "status", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["running"] is True
    sock = running.socket_path
    assert sock.stat().st_mode & 0o777 == 0o600 and sock.parent.stat().st_mode & 0o777 == 0o700

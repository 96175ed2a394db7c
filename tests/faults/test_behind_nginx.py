"""Three collectors behind nginx (Debian's) as the load balancer, each with its own data directory and
spool, all loading into one ClickHouse (the HTTP fixture over chDB). Traffic goes through nginx; one
collector is killed with SIGKILL mid-run and restarted on its data directory. Every acknowledged event
is stored exactly once: each spool's deduplication tokens carry the spool's name, so three spools
loading into one table never share a token."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from collector.testing import CollectorProcess, free_port
from collector.testing_clickhouse import ClickHouseHTTP
from loadtests.servers import nginx_binary
from tests.faults.harness import Ledger, Load, assert_exactly_once, fault_settings, stored_markers, wait_for

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (scripts/test-deps.sh)")


class Balancer:
    def __init__(self, workdir: Path, upstreams: list[int]):
        self.dir = workdir
        self.port = free_port()
        self.upstreams = upstreams
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Balancer":
        self.dir.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in self.upstreams)
        conf = self.dir / "nginx.conf"
        conf.write_text(f"""
daemon off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log {self.dir}/access.log;
  client_body_temp_path {self.dir}/body;
  proxy_temp_path {self.dir}/proxy;
  fastcgi_temp_path {self.dir}/fastcgi;
  uwsgi_temp_path {self.dir}/uwsgi;
  scgi_temp_path {self.dir}/scgi;
  upstream collectors {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://collectors;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
      # a refused connection goes to the next collector; a request already sent is never re-sent
      # (POST is not idempotent): its client gets a 502 and may retry
      proxy_next_upstream error timeout;
      proxy_connect_timeout 1s;
      proxy_read_timeout 10s;
    }}
  }}
}}
""")
        self.proc = subprocess.Popen([nginx_binary(), "-p", str(self.dir), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/healthz", timeout=0.5)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start: " + (self.dir / "error.log").read_text()[-2000:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def upstream_counts(access_log: Path) -> int:
    return sum(1 for line in access_log.read_text().splitlines() if "/api/batch" in line)


def test_three_collectors_behind_nginx_one_killed_and_restarted(tmp_path):
    server = ClickHouseHTTP(tmp_path / "clickhouse").start()
    for i in range(3):
        (tmp_path / f"c{i}").mkdir()
    procs = [CollectorProcess(fault_settings(tmp_path / f"c{i}" / "data", clickhouse_dsn=server.dsn(),
                                             segment_bytes=256 * 1024), tmp_path / f"c{i}")
             for i in range(3)]
    balancer = None
    ledger = Ledger()
    try:
        for p in procs:
            p.start()
        balancer = Balancer(tmp_path / "nginx", [p.settings.port for p in procs]).start()
        with Load(balancer.url, ledger, "lb", threads=4, pause_s=0.005):
            time.sleep(2.0)
            procs[1].kill()  # mid-run: its spool keeps what it acknowledged
            time.sleep(1.5)  # nginx sends the traffic to the other two meanwhile
            procs[1].start()  # the same data directory: it loads what its spool still holds
            time.sleep(1.5)
        assert len(ledger.acked) > 1000, len(ledger.acked)
        assert set(ledger.other_status) <= {502}, ledger.other_status  # only requests in flight at the kill
        for p in procs:
            p.flush()
        wait_for(lambda: ledger.acked <= set(stored_markers(procs[0])), 60, what="every acknowledged event")
        stored = assert_exactly_once(procs[0], ledger)
        assert len(ledger.acked) <= len(stored) <= len(ledger.sent)
        assert int(server.query("SELECT count() FROM events WHERE startsWith(props['m'], 'lb')")) == len(stored)
        # every collector took traffic and loaded its own spool
        for p in procs:
            assert (p.settings.data_dir / "spool.id").exists()
        names = {(p.settings.data_dir / "spool.id").read_text() for p in procs}
        assert len(names) == 3
        assert upstream_counts(balancer.dir / "access.log") >= len(ledger.acked) // 10
    finally:
        if balancer is not None:
            balancer.stop()
        for p in procs:
            p.stop()
        server.stop()
    print(f"behind nginx: {len(ledger.acked)} acknowledged, {len(stored)} stored, "
          f"{len(ledger.unknown)} unanswered or 502 at the kill")

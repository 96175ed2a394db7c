"""The servers under test, each a child process on an ephemeral loopback port in a temporary directory:
nginx answering ``return 204;`` with one worker, the bare Starlette app, and the collector itself."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from collector.testing import CollectorProcess, free_port

ROOT = Path(__file__).resolve().parent.parent


def _wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {tail}")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def _stop(proc: subprocess.Popen | None, timeout: float = 30) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


class _ChildServer:
    """A server in a child process on a free loopback port, with its files in ``workdir``."""

    def __init__(self, workdir: Path):
        self.dir = Path(workdir)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Nginx(_ChildServer):
    """``return 204;`` on every location, one worker, no logs: the physical limit of this machine."""

    def start(self) -> "Nginx":
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (scripts/bench-deps.sh installs it)")
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "nginx.conf"
        conf.write_text(f"""
daemon off;
master_process on;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {self.dir}/body;
  proxy_temp_path {self.dir}/proxy;
  fastcgi_temp_path {self.dir}/fastcgi;
  uwsgi_temp_path {self.dir}/uwsgi;
  scgi_temp_path {self.dir}/scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{self.port} backlog=2048;
    location / {{ return 204; }}
  }}
}}
""")
        self.proc = subprocess.Popen([binary, "-p", str(self.dir), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(self.url + "/", self.proc, 10, self.dir / "error.log")
        return self

    def stop(self) -> None:
        # SIGQUIT is nginx's graceful stop; the master then exits
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class BareApp(_ChildServer):
    """The bare Starlette 204 route under the collector's uvicorn settings."""

    module = "loadtests.bare"

    def args(self) -> list[str]:
        return []

    def start(self) -> "BareApp":
        self.dir.mkdir(parents=True, exist_ok=True)
        log = self.dir / "server.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", self.module, str(self.port), *self.args()], cwd=ROOT,
                                         stdout=out, stderr=subprocess.STDOUT)
        _wait_http(self.url + "/healthz", self.proc, 30, log)
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


class FloorApp(BareApp):
    """The floor handler (``loadtests.floor``): only the work no beacon design can avoid."""

    module = "loadtests.floor"

    def __init__(self, workdir: Path, city_db: str, asn_db: str):
        super().__init__(workdir)
        self.city_db, self.asn_db = city_db, asn_db

    def args(self) -> list[str]:
        return [self.city_db, self.asn_db, str(self.dir / "rows.jsonl")]


def collector(workdir: Path, city_db: str, asn_db: str, **overrides) -> CollectorProcess:
    """The collector with production delivery settings (fsync ``interval`` every 200 ms, loader batches
    of 5000 or every second), the benchmark's geo databases, and rate limits out of the way."""
    from collector.settings import Settings, Site, validate

    from loadtests.traffic import SITE

    settings = validate(Settings(**{
        "data_dir": Path(workdir) / "data", "sites": (Site(SITE, secret="bench-secret"),),
        "geoip_city_db": city_db, "geoip_asn_db": asn_db, "admin_token": "bench-admin-token-0123456789abcdef",
        "fsync": "interval", "fsync_interval_ms": 200, "flush_interval_ms": 1000, "batch_size": 5000,
        "rate_per_ip": 1e9, "rate_burst": 1_000_000_000, "rate_global": 1e9, "log_level": "warning",
        **overrides,
    }))
    Path(workdir).mkdir(parents=True, exist_ok=True)
    return CollectorProcess(settings, Path(workdir))

"""Helpers for tests and benchmarks: settings in a temporary directory, MaxMind-format test databases written with
mmdb-writer, free loopback ports, and a collector running as a separate process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from collector import settings as settings_mod

ROOT = Path(__file__).resolve().parent.parent  # the source tree (the working directory of child collectors)
CHROME_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36")
IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Version/17.4 Mobile/15E148 Safari/604.1")
SECRET = "test-secret-example-org"

# Test geography: 81.2.69.0/24 is London (GB-ENG), 2.125.160.0/24 is Boston (US-MA).
GEO = {
    "81.2.69.0/24": {"country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
                     "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
                     "city": {"names": {"en": "London"}}, "location": {"latitude": 51.5142, "longitude": -0.0931},
                     "postal": {"code": "EC2V"}},
    "2.125.160.0/24": {"country": {"iso_code": "US", "names": {"en": "United States"}},
                       "subdivisions": [{"iso_code": "MA", "names": {"en": "Massachusetts"}}],
                       "city": {"names": {"en": "Boston"}}, "location": {"latitude": 42.36, "longitude": -71.06},
                       "postal": {"code": "02108"}},
}
ASN = {
    "81.2.69.0/24": {"autonomous_system_number": 20712, "autonomous_system_organization": "Andrews & Arnold Ltd"},
    "2.125.160.0/24": {"autonomous_system_number": 7922, "autonomous_system_organization": "Comcast Cable"},
}


def write_mmdb(path: Path, data: dict[str, dict], database_type: str) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type=database_type, ipv4_compatible=True)
    for net, record in data.items():
        writer.insert_network(IPSet([net]), record)
    writer.to_db_file(str(path))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(data_dir: Path, **overrides) -> settings_mod.Settings:
    sites = overrides.pop("sites", (
        settings_mod.Site("example.org", secret=SECRET, auth_prefixes=("/member/",),
                          member_id_patterns=(r"\bMBR\d{6,}\b",)),
        settings_mod.Site("localhost", secret="test-secret-localhost"),
    ))
    base = {"data_dir": Path(data_dir), "sites": sites, "flush_interval_ms": 100, "fsync_interval_ms": 50,
            "admin_token": "test-admin-token-0123456789abcdef"}
    base.update(overrides)
    return settings_mod.validate(settings_mod.Settings(**base))


def env_for(settings: settings_mod.Settings, config_path: Path) -> dict[str, str]:
    """Environment that reproduces ``settings`` in a child process (sites go through a TOML file)."""
    lines = []
    for s in settings.sites:
        lines.append(f'[sites."{s.domain}"]')
        lines.append(f'secret = "{s.secret}"')
        for name in ("origins", "search_params", "auth_prefixes", "member_id_patterns"):
            vals = ", ".join(f"'{v}'" for v in getattr(s, name))
            lines.append(f"{name} = [{vals}]")
    config_path.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTOR_")}
    env["COLLECTOR_CONFIG"] = str(config_path)
    for f in settings_mod.fields(settings_mod.Settings):
        if f.name == "sites":
            continue
        v = getattr(settings, f.name)
        env["COLLECTOR_" + f.name.upper()] = ",".join(v) if isinstance(v, tuple) else str(v)
    return env


class MemoryTransport:
    """Enough of an asyncio transport for uvicorn's protocol, in memory: nothing is sent; writes are
    counted (``written``) and, with ``keep``, kept (``out``)."""

    def __init__(self, keep: bool = True):
        self.keep = keep
        self.out = bytearray()
        self.written = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += 1
        if self.keep:
            self.out += data

    def get_extra_info(self, name: str, default=None):
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def can_write_eof(self) -> bool:
        return False

    def set_write_buffer_limits(self, *a, **k) -> None: ...

    def get_write_buffer_size(self) -> int:
        return 0


class CollectorProcess:
    """``collector serve`` in a child process on a free loopback port."""

    def __init__(self, settings: settings_mod.Settings, workdir: Path, extra_env: dict[str, str] | None = None):
        self.settings = settings.with_(host="127.0.0.1", port=settings.port if settings.port != 8000 else free_port())
        self.workdir = Path(workdir)
        self.env = env_for(self.settings, self.workdir / "collector.toml")
        self.env.update(extra_env or {})
        self.log_path = self.workdir / "collector.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def start(self, timeout: float = 60) -> "CollectorProcess":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "collector", "serve"], env=self.env, cwd=ROOT,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200 and \
                        self.internal("GET", "/healthz").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("collector did not start: " + self.log_path.read_text()[-3000:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    @property
    def socket_path(self) -> Path:
        return Path(self.settings.data_dir) / "admin.sock"

    def internal(self, method: str, path: str, token: str | None = None, **kw) -> httpx.Response:
        """A request on the internal listener (the data directory's Unix socket)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket_path)), timeout=120) as c:
            return c.request(method, "http://collector" + path, headers=headers, **kw)

    def admin(self, method: str, path: str, **kw) -> httpx.Response:
        return self.internal(method, path, token=self.settings.admin_token, **kw)

    def tables(self) -> list[str]:
        """Every stored table and view, from the inventory (the sandbox keeps system tables closed)."""
        resp = self.admin("GET", "/admin/inventory")
        resp.raise_for_status()
        return sorted({item["table"] for item in resp.json()})

    def metrics(self) -> str:
        return self.internal("GET", "/metrics").text

    def query_raw(self, sql: str, fmt: str = "TabSeparated") -> bytes:
        """A query's answer as the bytes the collector sent: aggregate states and other binary
        columns stay as they are stored, for greps that must not depend on decoding."""
        resp = self.admin("POST", "/admin/query", json={"sql": sql, "format": fmt})
        resp.raise_for_status()
        return resp.content

    def query(self, sql: str) -> list[dict]:
        import json

        return [json.loads(line) for line in self.query_raw(sql, "JSONEachRow").splitlines() if line.strip()]

    def flush(self) -> None:
        self.admin("POST", "/admin/flush").raise_for_status()

"""The one settings object: built once at startup from the environment and an optional TOML file.

Every setting is an environment variable with the ``COLLECTOR_`` prefix; sites (and anything else)
can also come from the file named by ``COLLECTOR_CONFIG``. Environment variables win over the file.
See ``config/reference.toml`` for every key with comments.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_SEARCH_PARAMS = ("q", "query", "s", "search", "keyword", "keywords", "term")
DEFAULT_QUERY_ALLOW = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "ref", "source")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which setting and why."""


@dataclass(frozen=True)
class Site:
    domain: str
    secret: str = ""
    origins: tuple[str, ...] = ()
    search_params: tuple[str, ...] = DEFAULT_SEARCH_PARAMS
    auth_prefixes: tuple[str, ...] = ()
    member_id_patterns: tuple[str, ...] = ()
    keep_numeric_segments: bool = False  # all-digit path segments stay (catalogue ids) unless they read as PII


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./data")
    clickhouse_dsn: str = ""
    database: str = "analytics"
    sites: tuple[Site, ...] = ()
    trusted_proxies: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    geoip_city_db: str = ""
    geoip_asn_db: str = ""
    geo_precision: str = "region"  # country | region | city
    ip_prefix: str = "off"  # off | 16 | 24 (IPv4); IPv6 always /48 when on
    admin_token: str = ""
    analyst_token: str = ""
    # the internal listener (admin, analyst queries, dashboard, metrics) is a Unix socket in the data
    # directory; this adds a loopback TCP port for Prometheus and the dashboard (0: none)
    internal_port: int = 0
    # delivery
    fsync: str = "interval"  # interval | always
    fsync_interval_ms: int = 200
    batch_size: int = 5000
    flush_interval_ms: int = 1000
    spool_quota_bytes: int = 1 << 30
    segment_bytes: int = 8 << 20
    shutdown_deadline_s: float = 10.0
    dead_letter_days: int = 30
    # nice value (0-19) of the loader and the embedded engine's threads, so requests get the CPU
    # first (collector/delivery/priority.py); 0 leaves them at the process's priority
    storage_nice: int = 10
    # fault drills (tests and operations drills only; see collector/faults.py): off when empty
    fault_store_file: str = ""  # inserts fail while this file exists
    fault_crash_after_insert_file: str = ""  # exit right after the next insert when this file exists
    fault_spool_full_file: str = ""  # spool writes fail with ENOSPC while this file exists
    # privacy
    key_period_s: int = 86400
    key_destroy_after_s: int = 48 * 3600
    gpc_policy: str = "count_only"  # count_only | daily_hash
    retention_anonymous_months: int = 25
    retention_member_months: int = 13
    min_group_visitors: int = 5  # analyst views leave out groups seen by fewer distinct visitors
    session_timeout_min: int = 30  # a visit ends after this many minutes without an event
    site_timezone: str = "UTC"  # time zone of the analyst views' hour and day grain
    # limits
    max_body_bytes: int = 64 * 1024
    max_batch_events: int = 100
    max_json_depth: int = 8
    max_json_keys: int = 64
    max_string_bytes: int = 2048
    max_props: int = 30
    clock_skew_s: int = 300
    rate_per_ip: float = 50.0
    rate_burst: int = 200
    rate_global: float = 50000.0
    # resolved client addresses without a per-client limit (the machine itself: health checks, load tests);
    # the overall limit still applies to them
    rate_exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    request_timeout_s: float = 10.0
    log_level: str = "info"

    def site(self, domain: str) -> Site | None:
        return self._site_map().get(domain)

    def _site_map(self) -> dict[str, Site]:
        cached = self.__dict__.get("_sites_by_domain")
        if cached is None:
            cached = {s.domain: s for s in self.sites}
            object.__setattr__(self, "_sites_by_domain", cached)
        return cached

    @property
    def dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{self.data_dir.resolve() / 'clickhouse'}"

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb:")

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)


def _coerce(name: str, kind: Any, raw: Any) -> Any:
    try:
        if kind in (int, "int"):
            return int(raw)
        if kind in (float, "float"):
            return float(raw)
        if kind in (Path, "Path"):
            return Path(raw)
        if kind in ("tuple[str, ...]",):
            if isinstance(raw, str):
                return tuple(x.strip() for x in raw.split(",") if x.strip())
            return tuple(str(x) for x in raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: cannot read {raw!r} ({exc})") from None


def _site_from(domain: str, raw: dict[str, Any]) -> Site:
    kw: dict[str, Any] = {"domain": domain}
    for f in fields(Site):
        if f.name in raw and f.name != "domain":
            if f.name == "secret":
                kw[f.name] = str(raw[f.name])
            elif f.type == "bool":
                if not isinstance(raw[f.name], bool):
                    raise ConfigError(f"sites.{domain}.{f.name}: must be true or false, not {raw[f.name]!r}")
                kw[f.name] = raw[f.name]
            else:
                kw[f.name] = _coerce(f.name, "tuple[str, ...]", raw[f.name])
    return Site(**kw)


def load(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    path = env.get("COLLECTOR_CONFIG")
    if path:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"COLLECTOR_CONFIG {path}: {exc}") from None
        sites = doc.pop("sites", {})
        values["sites"] = tuple(_site_from(d, v or {}) for d, v in sites.items())
        values.update(doc)
    for f in fields(Settings):
        key = "COLLECTOR_" + f.name.upper()
        if key in env and f.name != "sites":
            values[f.name] = env[key]
    if "COLLECTOR_SITES" in env:
        values["sites"] = tuple(Site(domain=d) for d in _coerce("sites", "tuple[str, ...]", env["COLLECTOR_SITES"]))
    values.update(overrides)
    typed: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in values:
            typed[f.name] = values[f.name] if f.name == "sites" else _coerce(f.name, f.type, values[f.name])
    unknown = set(values) - {f.name for f in fields(Settings)}
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
    return validate(Settings(**typed))


def require_sites(s: Settings) -> Settings:
    """Serving needs sites; the other commands (query, keys, spool, …) do not."""
    if not s.sites:
        raise ConfigError("no sites configured: set COLLECTOR_SITES or [sites] in COLLECTOR_CONFIG")
    return s


def validate(s: Settings) -> Settings:
    for cidr in s.trusted_proxies:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(f"COLLECTOR_TRUSTED_PROXIES: {cidr!r} is not an address or network") from None
        if net.prefixlen == 0:
            raise ConfigError(
                f"COLLECTOR_TRUSTED_PROXIES: {cidr} trusts every address, so any client could forge "
                "X-Forwarded-For; list your proxies' addresses instead"
            )
    for cidr in s.rate_exempt:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(f"COLLECTOR_RATE_EXEMPT: {cidr!r} is not an address or network") from None
    if s.request_timeout_s <= 0:
        raise ConfigError("COLLECTOR_REQUEST_TIMEOUT_S must be positive: slow clients need a deadline")
    choices = {
        "geo_precision": ("country", "region", "city"),
        "ip_prefix": ("off", "16", "24"),
        "fsync": ("interval", "always"),
        "gpc_policy": ("count_only", "daily_hash"),
    }
    for name, allowed in choices.items():
        if getattr(s, name) not in allowed:
            raise ConfigError(f"COLLECTOR_{name.upper()}: {getattr(s, name)!r} is not one of {', '.join(allowed)}")
    if not 0 <= s.storage_nice <= 19:
        raise ConfigError("COLLECTOR_STORAGE_NICE must be a nice value from 0 (unchanged) to 19")
    if s.internal_port and s.internal_port == s.port:
        raise ConfigError("COLLECTOR_INTERNAL_PORT must differ from COLLECTOR_PORT: the internal listener "
                          "(admin, analyst queries, metrics) is never the public one")
    if s.admin_token and s.analyst_token and s.admin_token == s.analyst_token:
        raise ConfigError("COLLECTOR_ANALYST_TOKEN must differ from COLLECTOR_ADMIN_TOKEN: they are two roles")
    if s.dsn.split(":", 1)[0] not in ("chdb", "http", "https"):
        raise ConfigError(f"COLLECTOR_CLICKHOUSE_DSN: scheme of {s.dsn!r} must be chdb, http or https")
    return s


__all__ = ["Settings", "Site", "ConfigError", "load", "validate", "DEFAULT_QUERY_ALLOW", "DEFAULT_SEARCH_PARAMS"]

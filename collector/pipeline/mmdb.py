"""Opens a MaxMind-format database (GeoIP2/GeoLite2, DB-IP, or one written with mmdb-writer)."""

from __future__ import annotations

import logging

import maxminddb

log = logging.getLogger("collector.pipeline")


def open_database(path: str, setting: str, what: str):
    """The reader for ``path``, or None with one clear log line when the setting is empty."""
    if not path:
        log.info("%s is not set: %s fields will be empty", setting, what)
        return None
    try:
        return maxminddb.open_database(path, maxminddb.MODE_AUTO)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        from collector.settings import ConfigError

        raise ConfigError(f"{setting}: cannot open {path}: {exc}") from None


def lookup(reader, ip: str) -> dict:
    if reader is None or not ip:
        return {}
    try:
        return reader.get(ip) or {}
    except ValueError:
        return {}

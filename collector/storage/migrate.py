"""Applies ``schema/migrations/NNNN_name.sql`` in order, once each, recorded in ``schema_migrations``;
then the repeatable ``R_name.sql`` files (views), at every run.

Settings are substituted into the DDL: retention months (when they change later, ``apply`` brings the
tables' TTL in line without rewriting existing parts) and the analyst views' small-group threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from collector.settings import ConfigError


def _migrations_dir() -> Path:
    """``schema/migrations`` of the source tree, shipped as ``collector/storage/schema/migrations``."""
    packaged = Path(__file__).with_name("schema") / "migrations"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "schema" / "migrations"


MIGRATIONS = _migrations_dir()
_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_REPEATABLE = re.compile(r"^R_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, params: dict[str, object]) -> list[str]:
        text = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip().format(**params) for s in text.split(";") if s.strip()]


def migrations(directory: Path = MIGRATIONS) -> list[Migration]:
    out = []
    for p in sorted(directory.iterdir()):
        m = _FILE.match(p.name)
        if m:
            out.append(Migration(int(m.group(1)), p.stem, p.read_text()))
    return out


def repeatables(directory: Path = MIGRATIONS) -> list[Migration]:
    return [Migration(0, p.stem, p.read_text()) for p in sorted(directory.iterdir()) if _REPEATABLE.match(p.name)]


# visit_slices holds five-minute slices: a shorter timeout could split a slice, which the views cannot
MIN_SESSION_TIMEOUT_MIN = 5
def visit_horizon_s(settings) -> int:
    """How far apart two events of one visitor pseudonym can be, at most: a pseudonym is made with the
    key of one period while that key exists (the period, then until it is destroyed), and an event's
    time is within the clock skew of its arrival. ``visits_between`` reads the slices this far beyond
    its range on either side, so every visit that starts in the range meets all its visitor's slices."""
    return (int(settings.key_period_s) + int(settings.key_destroy_after_s)
            + 2 * int(settings.clock_skew_s))


_TIMEZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")


def _params(settings) -> dict[str, object]:
    timeout = int(settings.session_timeout_min)
    if timeout < MIN_SESSION_TIMEOUT_MIN:
        raise ConfigError(f"COLLECTOR_SESSION_TIMEOUT_MIN: {timeout} is below {MIN_SESSION_TIMEOUT_MIN} minutes, "
                          "the length of the visit slices")
    tz = str(settings.site_timezone)
    if not _TIMEZONE.match(tz):
        raise ConfigError(f"COLLECTOR_SITE_TIMEZONE: {tz!r} is not an IANA time zone name")
    return {
        "retention_anonymous_months": int(settings.retention_anonymous_months),
        "retention_member_months": int(settings.retention_member_months),
        "min_group_visitors": max(1, int(settings.min_group_visitors)),
        "session_timeout_min": timeout,
        "visit_horizon_s": visit_horizon_s(settings),
        "site_timezone": tz,
    }


def apply(store, settings) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    store.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"
    )
    done = {r[0] for r in store.query_rows("SELECT version FROM schema_migrations")}
    params = _params(settings)
    applied = []
    for mig in migrations():
        if mig.version in done:
            continue
        for stmt in mig.statements(params):
            store.command(stmt)
        store.command("INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
                      parameters={"v": mig.version, "n": mig.name})
        applied.append(mig.name)
    _align_ttl(store, params)
    for rep in repeatables():
        for stmt in rep.statements(params):
            store.command(stmt)
    return applied


_TTL_COLUMN = {"events": "toDateTime(ts)", "member_events": "toDateTime(ts)", "visit_slices": "slice_start"}


def _align_ttl(store, params) -> None:
    for table, months in (("events", params["retention_anonymous_months"]),
                          ("member_events", params["retention_member_months"]),
                          ("visit_slices", params["retention_anonymous_months"])):
        rows = store.query_rows(
            "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
            parameters={"t": table},
        )
        if rows and f"toIntervalMonth({months})" not in rows[0][0]:
            store.command(
                f"ALTER TABLE {table} MODIFY TTL {_TTL_COLUMN[table]} + INTERVAL {months} MONTH DELETE",
                )


def retention_months(store, table: str) -> int | None:
    rows = store.query_rows(
        "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": table},
    )
    m = re.search(r"toIntervalMonth\((\d+)\)", rows[0][0]) if rows else None
    return int(m.group(1)) if m else None

"""The schema for a ClickHouse cluster: ``ON CLUSTER`` DDL derived from the same migrations.

Every table of the migrations becomes two:

- ``<table>_local``: a ``Replicated*MergeTree`` on every replica of every shard (Keeper path
  ``/clickhouse/tables/{shard}/{database}/<table>_local``, replica ``{replica}``: the server's macros),
  with ``replicated_deduplication_window = 10000`` in place of the single-node
  ``non_replicated_deduplication_window``, so a retried batch is discarded per shard by its token;
- ``<table>``: a ``Distributed`` table over it with the sharding key of ``SHARDING_KEYS``. The
  collector inserts into and reads from these names, as on one server.

Sharding keys put everything one person does on one shard: the anonymous plane and the visit slices
by ``(site, visitor_id)``, the member plane and the consent ledger by ``(site, member_id)``. Events
without a visitor pseudonym (no key for them) spread by their ``event_id``. Every key is a function of
the row, never ``rand()``: a retried batch splits over the shards exactly as the first try did, so
each shard sees the same block under the same deduplication token and drops the repeat.

The visit materialized view reads ``events_local`` and writes ``visit_slices_local`` on each shard:
a visitor's events, hence their slices, are all on one shard. ``visits_local`` is the visits view
over the shard's own slices (the slices of one visitor stay on one shard), and ``visits`` is
``SELECT * FROM cluster(...)`` over it, so every shard computes its own visits and the initiator only
concatenates them. The parameterized ``visits_between(since, until)`` is built the same way:
``visits_between_local`` per shard, and ``visits_between`` runs
``cluster(..., view(SELECT * FROM visits_between_local(since = ..., until = ...)))``, the call with its
arguments on every shard (``cluster()`` itself names a table and passes no parameters). The analyst
views read ``events``, ``visits`` and ``visits_between`` as on one server.

Not derived: the migrations' backfill ``INSERT ... SELECT`` (a new cluster has nothing to backfill;
data moved from a single server with ``INSERT INTO events SELECT * FROM remote(...)`` passes through
the materialized view on each shard).
"""

from __future__ import annotations

import re

from collector.storage import migrate

KEEPER_PATH = "/clickhouse/tables/{shard}/{database}/"  # + the local table's name
DEDUP_WINDOW = 10000
# table -> sharding key of its Distributed table (see the module text)
SHARDING_KEYS = {
    "events": "cityHash64(site, if(visitor_id = '', toString(event_id), visitor_id))",
    "visit_slices": "cityHash64(site, visitor_id)",
    "member_events": "cityHash64(site, member_id)",
    "consent_ledger": "cityHash64(site, member_id)",
    "goals": "cityHash64(site, goal)",
    "erasures": "cityHash64(digest)",
    "schema_migrations": "version",
}
# settings the collector's writer needs on a cluster: an insert returns once every shard has its part
WRITER_PROFILE = "collector_writer"
WRITER_SETTINGS = {"distributed_foreground_insert": 1, "async_insert": 0, "insert_deduplicate": 1}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)\s*(\(.*\))\s*ENGINE\s*=\s*(\w+)(\([^)]*\))?(.*)$",
                           re.DOTALL)
_ALTER = re.compile(r"^ALTER TABLE (\w+)\s+(.*)$", re.DOTALL)
_MV = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\s+TO\s+(\w+)\s+AS\s+(.*)$", re.DOTALL)
_VIEW = re.compile(r"^CREATE OR REPLACE VIEW (\w+)\s+AS\s+(.*)$", re.DOTALL)
_INSERT = re.compile(r"^INSERT INTO\b", re.IGNORECASE)
# a view parameter, {name:Type}, as the migrations' text holds it once the settings are substituted
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z][A-Za-z0-9_(), ]*)\}")
SCHEMA_MIGRATIONS = ("CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
                     "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version")


def ident(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def _replicated(engine: str, args: str | None, table: str) -> str:
    inner = (args or "()")[1:-1].strip()
    path = f"'{KEEPER_PATH}{table}_local', '{{replica}}'"
    return f"Replicated{engine}({path}{', ' + inner if inner else ''})"


def _local_settings(rest: str) -> str:
    rest = re.sub(r"non_replicated_deduplication_window\s*=\s*\d+", f"replicated_deduplication_window = {DEDUP_WINDOW}",
                  rest)
    if "replicated_deduplication_window" not in rest:
        rest = rest.rstrip() + f"\nSETTINGS replicated_deduplication_window = {DEDUP_WINDOW}"
    return rest


def _tables_to_local(sql: str, tables: set[str]) -> str:
    """``FROM t``/``JOIN t`` of the product's tables -> their shard-local tables."""
    return re.sub(r"\b(FROM|JOIN)(\s+)(" + "|".join(sorted(tables)) + r")\b", r"\1\2\3_local", sql)


def table_statements(stmt: str, cluster: str, database: str, tables: set[str]) -> list[str]:
    """One migration statement, translated for the cluster (possibly into several, possibly none)."""
    on = f"ON CLUSTER `{cluster}`"
    db = f"`{database}`"
    m = _CREATE_TABLE.match(stmt)
    if m:
        name, columns, engine, args, rest = m.groups()
        if name not in SHARDING_KEYS:
            raise ValueError(f"table {name} has no sharding key in collector.storage.cluster.SHARDING_KEYS")
        tables.add(name)
        local = (f"CREATE TABLE IF NOT EXISTS {db}.{name}_local {on}\n{columns}\n"
                 f"ENGINE = {_replicated(engine, args, name)}{_local_settings(rest)}")
        dist = (f"CREATE TABLE IF NOT EXISTS {db}.{name} {on} AS {db}.{name}_local\n"
                f"ENGINE = Distributed('{cluster}', '{database}', '{name}_local', {SHARDING_KEYS[name]})")
        return [local, dist]
    m = _ALTER.match(stmt)
    if m:
        name, action = m.groups()
        if name not in tables:
            raise ValueError(f"ALTER of an unknown table {name}")
        return [f"ALTER TABLE {db}.{name}_local {on} {action}", f"ALTER TABLE {db}.{name} {on} {action}"]
    m = _MV.match(stmt)
    if m:
        name, target, select = m.groups()
        return [f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{name} {on} TO {db}.{target}_local AS\n"
                f"{_tables_to_local(select, tables)}"]
    if _INSERT.match(stmt):
        return []  # backfill of an existing single-node table: nothing to do on a new cluster
    raise ValueError(f"no cluster translation for: {stmt[:80]}")


def view_statements(stmt: str, cluster: str, database: str, tables: set[str]) -> list[str]:
    on = f"ON CLUSTER `{cluster}`"
    db = f"`{database}`"
    m = re.match(r"^DROP VIEW IF EXISTS (\w+)$", stmt)
    if m:
        return [f"DROP VIEW IF EXISTS {db}.{m.group(1)} {on}"]
    m = _VIEW.match(stmt)
    if not m:
        raise ValueError(f"no cluster translation for: {stmt[:80]}")
    name, select = m.groups()
    if re.search(r"\bFROM\s+visit_slices\b", select):
        # computed per shard over the shard's own slices, concatenated by the initiator
        params = list(dict.fromkeys(_PARAMETER.findall(select)))
        if params:
            # a parameterized view: cluster() names a table, not a call, so each shard runs the call
            args = ", ".join(f"{n} = {{{n}:{t}}}" for n, t in params)
            source = f"view(SELECT * FROM {db}.{name}_local({args}))"
        else:
            source = f"'{database}', '{name}_local'"
        return [f"CREATE OR REPLACE VIEW {db}.{name}_local {on} AS\n{_tables_to_local(select, tables)}",
                f"CREATE OR REPLACE VIEW {db}.{name} {on} AS\n"
                f"SELECT * FROM cluster('{cluster}', {source})"]
    return [f"CREATE OR REPLACE VIEW {db}.{name} {on} AS\n{select}"]


def writer_profile_sql(cluster: str) -> str:
    items = ", ".join(f"{k} = {v}" for k, v in WRITER_SETTINGS.items())
    return f"CREATE SETTINGS PROFILE OR REPLACE `{WRITER_PROFILE}` ON CLUSTER `{cluster}` SETTINGS {items}"


def versioned(settings, cluster: str, database: str) -> list[tuple[migrate.Migration | None, list[str]]]:
    """(migration, its cluster statements) in order; the first entry (None) is the bookkeeping."""
    ident(cluster)
    ident(database)
    params = migrate._params(settings)
    tables: set[str] = set()
    out: list[tuple[migrate.Migration | None, list[str]]] = [
        (None, [f"CREATE DATABASE IF NOT EXISTS `{database}` ON CLUSTER `{cluster}`",
                writer_profile_sql(cluster),
                *table_statements(SCHEMA_MIGRATIONS, cluster, database, tables)])]
    for mig in migrate.migrations():
        stmts: list[str] = []
        for stmt in mig.statements(params):
            stmts += table_statements(stmt, cluster, database, tables)
        out.append((mig, stmts))
    return out


def repeatable(settings, cluster: str, database: str) -> list[str]:
    params = migrate._params(settings)
    tables = set(SHARDING_KEYS)
    out: list[str] = []
    for rep in migrate.repeatables():
        for stmt in rep.statements(params):
            out += view_statements(stmt, cluster, database, tables)
    return out


def statements(settings, cluster: str, database: str) -> list[str]:
    """Every statement ``collector schema --cluster NAME`` prints, in order."""
    out = [s for _, stmts in versioned(settings, cluster, database) for s in stmts]
    return out + repeatable(settings, cluster, database)


def apply(store, settings, cluster: str) -> list[str]:
    """Apply the cluster schema through a server of the cluster: versioned migrations once each
    (recorded in the Distributed ``schema_migrations``), then the views. Returns the names applied."""
    database = store.database
    steps = versioned(settings, cluster, database)
    for stmt in steps[0][1]:
        store.command(stmt)
    done = {r[0] for r in store.query_rows(f"SELECT version FROM `{database}`.schema_migrations")}
    applied = []
    for mig, stmts in steps[1:]:
        if mig.version in done:
            continue
        for stmt in stmts:
            store.command(stmt)
        store.command(f"INSERT INTO `{database}`.schema_migrations (version, name) VALUES ({{v:UInt32}}, {{n:String}})",
                      parameters={"v": mig.version, "n": mig.name})
        applied.append(mig.name)
    for stmt in repeatable(settings, cluster, database):
        store.command(stmt)
    return applied


def roles_on_cluster(stmts: list[str], cluster: str, database: str) -> list[str]:
    """The server roles' statements (``collector.storage.roles.roles_sql``) for every node of the
    cluster, plus what reading through Distributed tables and ``cluster()`` needs: the views' definer
    reads the shard-local tables and may use ``cluster()`` (the ``REMOTE`` grant), and the admin role's
    erasure deletes from the shard-local tables."""
    on = f"ON CLUSTER `{ident(cluster)}`"
    db = f"`{ident(database)}`"
    out = []
    for s in stmts:
        if m := re.match(r"^(CREATE (?:SETTINGS PROFILE OR REPLACE|ROLE IF NOT EXISTS|USER IF NOT EXISTS) `\w+`)(.*)$",
                         s, re.DOTALL):
            out.append(f"{m.group(1)} {on}{m.group(2)}")
        elif m := re.match(r"^(GRANT|REVOKE) (.*)$", s, re.DOTALL):
            out.append(f"{m.group(1)} {on} {m.group(2)}")
        elif m := re.match(r"^ALTER TABLE (\S+) (MODIFY SQL SECURITY .*)$", s, re.DOTALL):
            out.append(f"ALTER TABLE {m.group(1)} {on} {m.group(2)}")
        elif m := re.match(r"^SET DEFAULT ROLE (`\w+`) TO (`\w+`)$", s):
            out.append(f"ALTER USER {m.group(2)} {on} DEFAULT ROLE {m.group(1)}")
        else:
            raise ValueError(f"no cluster translation for: {s[:80]}")
    from collector.storage.roles import ADMIN_ROLE, DEFINER, ERASURE_TABLES

    reads = ["events", "events_local", "visit_slices", "visit_slices_local", "visits", "visits_local",
             "visits_between", "visits_between_local", "goals", "goals_local"]
    out.append(f"GRANT {on} REMOTE ON *.* TO `{DEFINER}`")
    for t in reads:
        out.append(f"GRANT {on} SELECT ON {db}.`{t}` TO `{DEFINER}`")
    for t in ERASURE_TABLES:
        out.append(f"GRANT {on} ALTER DELETE ON {db}.`{t}_local` TO `{ADMIN_ROLE}`")
    return out

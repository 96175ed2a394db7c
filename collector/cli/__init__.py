"""The ``collector`` command: serve, migrate, query, keys, token, consent, forget, inventory, spool, replay.

On the embedded engine only the serving process may open the data (chDB: one process per data path),
so commands that read or change data go through the running collector's admin API, and open the
data directly only when no collector is running (``collector.cli.backend`` makes that choice once).
"""

from __future__ import annotations

import argparse
import json
import sys

from collector import settings as settings_mod
from collector.cli.backend import connect
from collector.errors import CollectorError


def _settings() -> settings_mod.Settings:
    try:
        return settings_mod.load()
    except settings_mod.ConfigError as exc:
        sys.exit(f"collector: configuration error: {exc}")


def cmd_serve(args, settings, backend) -> int:
    from collector.http.server import serve

    if args.workers < 1:
        sys.exit("collector: --workers must be at least 1")
    return serve(settings_mod.require_sites(settings), workers=args.workers)


def cmd_migrate(args, settings, backend) -> int:
    if args.cluster:
        from collector.storage import cluster

        if settings.embedded or backend.running:
            sys.exit("collector: --cluster applies ON CLUSTER DDL through a server of the cluster: set "
                     "COLLECTOR_CLICKHOUSE_DSN to one of its servers (http(s)://...) and run it with no collector "
                     "serving this data directory")
        applied = cluster.apply(backend.store, settings, args.cluster)
        print("applied: " + ", ".join(applied) if applied else "schema is up to date")
        return 0
    applied = backend.migrate()
    if applied is None:
        print("the running collector applies migrations at startup; nothing to do")
    else:
        print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    return 0


def schema_database(settings) -> str:
    """The database the schema goes into: the server DSN's ``database``, else COLLECTOR_DATABASE."""
    from urllib.parse import parse_qs, urlsplit

    if settings.embedded:
        return settings.database
    parts = urlsplit(settings.dsn)
    return parse_qs(parts.query).get("database", [parts.path.strip("/") or settings.database])[0]


def cmd_schema(args, settings, backend) -> int:
    """Print the DDL the migrations apply (or its ON CLUSTER form), and the server roles' SQL."""
    from collector.storage import cluster, migrate, sandbox
    from collector.storage.roles import roles_sql

    database = args.database or schema_database(settings)
    if args.cluster:
        stmts = cluster.statements(settings, args.cluster, database)
    else:
        params = migrate._params(settings)
        stmts = [cluster.SCHEMA_MIGRATIONS]
        for mig in [*migrate.migrations(), *migrate.repeatables()]:
            stmts += mig.statements(params)
    if args.roles:
        roles = roles_sql(database, list(sandbox.analyst_views()), analyst_password_sha256=args.analyst_password_sha256,
                          admin_password_sha256=args.admin_password_sha256)
        stmts += cluster.roles_on_cluster(roles, args.cluster, database) if args.cluster else roles
    sys.stdout.write("".join(s.rstrip() + ";\n\n" for s in stmts))
    return 0


def cmd_query(args, settings, backend) -> int:
    if args.file:
        sql = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
    elif args.sql:
        sql = " ".join(args.sql)
    else:
        sys.exit("collector: give the SQL as arguments, or --file PATH (- for stdin)")
    sys.stdout.buffer.write(backend.query(sql, args.format, "analyst" if args.analyst else "admin"))
    return 0


def cmd_keys(args, settings, backend) -> int:
    if args.action == "rotate":
        print(f"rotated: new visitor key {backend.keys_rotate()['id']}")
        return 0
    for k in backend.keys_status():
        extra = f" destroyed at {_when(k['destroy_at'])}" if "destroy_at" in k else ""
        print(f"{k['purpose']:<8} {k['id']:<40} valid {_when(k['not_before'])} .. {_when(k['not_after'])}{extra}")
    return 0


FOREVER_S = 2**39  # key validity ends beyond this (the member key's 2**40): it never expires


def _when(ts: int) -> str:
    """A key time as ISO 8601 in UTC, or "never" for a key that does not expire."""
    import time

    if ts >= FOREVER_S:
        return "never"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def cmd_doctor(args, settings, backend) -> int:
    from collector.cli import doctor

    return doctor.run(settings, as_json=args.json)


def cmd_token(args, settings, backend) -> int:
    from collector.privacy.tokens import mint

    site = settings.site(args.site)
    if site is None or not site.secret:
        sys.exit(f"collector: site {args.site!r} is not configured with a secret")
    try:
        print(mint(site.secret, site.domain, args.member_ref, args.purposes.split(","), args.ttl))
    except ValueError as exc:
        sys.exit(f"collector: {exc}")
    return 0


def cmd_forget(args, settings, backend) -> int:
    removed = backend.forget(args.site, args.member_ref)
    total = sum(n for n in removed.values() if isinstance(n, int))
    for place, n in removed.items():
        if isinstance(n, int):
            print(f"{place}: {n} removed")
        else:
            print(f"{place}: storage unreachable; deleted before anything else is stored once it answers")
    pending = [p for p, n in removed.items() if not isinstance(n, int)]
    if total or pending:
        print(f"total: {total} removed" + (f", {', '.join(pending)} pending" if pending else ""))
    else:
        print("nothing found for this member")
    return 0


def cmd_inventory(args, settings, backend) -> int:
    from collector.privacy import inventory

    items = backend.inventory()
    sys.stdout.write(json.dumps(items, indent=1) + "\n" if args.json else inventory.render(items))
    return 0


def cmd_spool(args, settings, backend) -> int:
    report = backend.spool_status()
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"collector: {'running' if report.get('running') else 'not running'}")
    print(f"segments: {report['segments']} ({report['bytes']} of {report['quota_bytes']} quota bytes)")
    print(f"unstored: {report['unstored_records']} records, {report['unstored_bytes']} bytes, "
          f"oldest {report['oldest_unstored_age_s']} s")
    cp = report["checkpoint"]
    print(f"checkpoint: segment {cp['segment']} offset {cp['offset']}"
          + (f" (pending {cp['pending']})" if cp.get("pending") else ""))
    print(f"quarantined files: {len(report['quarantined_files'])}")
    print(f"dead letters: {report['dead_letters']}")
    if "storage_healthy" in report:
        print(f"storage: {'healthy' if report['storage_healthy'] else 'failing: ' + report['last_error']}")
    for w in report.get("workers", []):  # ``serve --workers N``: the other workers' spools
        if not w.get("reported"):
            print(f"worker {w['worker']}: no numbers from it yet")
            continue
        v = {k: "?" if x is None else x for k, x in w.items()}  # a number the worker did not send
        age = f" (its numbers {v['metrics_age_s']} s old)" if "metrics_age_s" in v else ""
        print(f"worker {v['worker']}: {v['segments']} segments ({v['bytes']} of {v['quota_bytes']} quota bytes), "
              f"unstored {v['unstored_records']} records, {v['unstored_bytes']} bytes, "
              f"oldest {v['oldest_unstored_age_s']} s{age}")
    return 0


def cmd_replay(args, settings, backend) -> int:
    """Load everything in the spool into storage now, with a progress bar."""
    report = backend.flush()
    if report is not None:
        print(json.dumps(report, indent=1))
        return 0 if report["flushed"] else 1
    from collector.assembly import loader_for, spool_for, store_for
    from collector.counts import Counts
    from collector.delivery.replay import replay
    from collector.paths import DataDir

    backend.close()  # the replay opens the data itself
    data, store = DataDir.of(settings), store_for(settings)
    code = 0
    try:
        # the spool, then those ``serve --workers N`` left for its other workers, each with its own checkpoint
        for k in [0, *data.worker_spools()]:
            spool_data, counts = data.for_worker(k), Counts()
            if k:
                print(f"worker {k}'s spool:")
            loader = loader_for(settings, spool_data, spool_for(settings, spool_data), store, counts)
            code = replay(settings, loader=loader, counts=counts, keep_store=True)
            if code:  # storage failed: the other spools would fail the same way
                break
    finally:
        store.close()
    return code


# commands that need no backend (serving owns the data itself; minting needs only the site secret)
NO_BACKEND = {"serve", "token", "schema", "doctor"}  # doctor connects itself, and reports what fails


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="collector", description="Privacy-first web analytics collector")
    from collector.metrics import version

    p.add_argument("--version", action="version", version=f"collector {version()}")
    sub = p.add_subparsers(dest="command", required=True)
    sv = sub.add_parser("serve", help="run the collector")
    sv.add_argument("--workers", type=int, default=1, metavar="N",
                    help="N ingest processes on one port, each with its own spool (default 1)")
    sv.set_defaults(fn=cmd_serve)
    m = sub.add_parser("migrate", help="apply schema migrations")
    m.add_argument("--cluster", metavar="NAME", help="apply the ON CLUSTER schema (replicated, distributed) to the "
                   "cluster NAME through the server of COLLECTOR_CLICKHOUSE_DSN")
    m.set_defaults(fn=cmd_migrate)
    sc = sub.add_parser("schema", help="print the schema's DDL (and the server roles' SQL)")
    sc.add_argument("--roles", action="store_true", help="also print the server users, roles and grants")
    sc.add_argument("--cluster", metavar="NAME", help="the ON CLUSTER form: ReplicatedMergeTree + Distributed")
    sc.add_argument("--database", help="database name (default: the DSN's, else COLLECTOR_DATABASE)")
    sc.add_argument("--analyst-password-sha256", metavar="HEX", help="also create the analyst user with this hash")
    sc.add_argument("--admin-password-sha256", metavar="HEX", help="also create the admin user with this hash")
    sc.set_defaults(fn=cmd_schema)
    q = sub.add_parser("query", help="run SQL (through the running collector on the embedded engine)")
    q.add_argument("--format", default="PrettyCompact", help="ClickHouse output format, e.g. JSONEachRow, TSV")
    q.add_argument("--file", help="read the SQL from this file (- for stdin)")
    q.add_argument("--analyst", action="store_true",
                   help="run with the analyst role (documented views only) instead of the admin role")
    q.add_argument("sql", nargs="*")
    q.set_defaults(fn=cmd_query)
    k = sub.add_parser("keys", help="pseudonymization keys")
    k.add_argument("action", choices=["status", "rotate"])
    k.set_defaults(fn=cmd_keys)
    t = sub.add_parser("token", help="identity tokens")
    t.add_argument("action", choices=["mint"])
    t.add_argument("--site", required=True)
    t.add_argument("--member-ref", required=True)
    t.add_argument("--purposes", default="analytics_linking")
    t.add_argument("--ttl", type=int, default=3600)
    t.set_defaults(fn=cmd_token)
    f = sub.add_parser("forget", help="erase a member's member-plane and consent rows")
    f.add_argument("--site", required=True)
    f.add_argument("--member-ref", required=True)
    f.set_defaults(fn=cmd_forget)
    i = sub.add_parser("inventory", help="every stored table and column, and what it can identify")
    i.add_argument("--json", action="store_true")
    i.set_defaults(fn=cmd_inventory)
    s = sub.add_parser("spool", help="spool state")
    s.add_argument("action", choices=["status"])
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_spool)
    sub.add_parser("replay", help="load the spool into storage now").set_defaults(fn=cmd_replay)
    d = sub.add_parser("doctor", help="check configuration, secrets, keys, GeoIP, storage, spool and permissions")
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=cmd_doctor)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = _settings()
    backend = None
    try:
        if args.command not in NO_BACKEND:
            backend = connect(settings)
        return args.fn(args, settings, backend) or 0
    except CollectorError as exc:
        print(f"collector: {exc.message}", file=sys.stderr)
        return 1
    except settings_mod.ConfigError as exc:
        print(f"collector: configuration error: {exc}", file=sys.stderr)
        return 2
    finally:
        if backend is not None:
            backend.close()


if __name__ == "__main__":
    sys.exit(main())

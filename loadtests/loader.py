"""Loader throughput into embedded ClickHouse (chDB): the Loader draining a pre-filled spool, against
bare ``client.insert`` of the same rows in the same batch size on the same client.

The spool is filled through ``Collector.ingest`` (the real record format) with the realistic mix. The
bare side gets the rows already as Python lists in column order, with the same insert settings
(deduplication token, ``async_insert=0``), so the difference is the loader's own work: reading and
verifying spool records, grouping them by table and writing checkpoints (two fsyncs a batch); the
loader hands the spooled JSON to ClickHouse as JSONEachRow, while the bare side sends native columns.
Rounds alternate bare/loader on fresh rows (new event ids) so deduplication never hides an insert.

chDB allows one data path per process, so ``run()`` executes this module in a child process.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _fill(svc, site, mix_requests, n_rows: int) -> None:
    async def go():
        done = 0
        for body, ua, ip in mix_requests:
            import orjson

            payloads = orjson.loads(body)
            from collector.http.decode import normalize

            batch = [normalize(p, svc.settings) for p in payloads]
            done += await svc.ingest([(site, batch)], ip, ua, False)
            if done >= n_rows:
                return

    asyncio.run(go())


def measure(n_rows: int = 50_000, batch_size: int = 5000, rounds: int = 2) -> dict:
    import orjson

    from collector.service import Collector
    from collector.settings import Settings, Site, validate
    from loadtests import geodata, traffic
    from collector.storage.columns import TABLES

    with tempfile.TemporaryDirectory(prefix="bench-loader-") as d:
        tmp = Path(d)
        mix = traffic.Mix()
        city, asn = geodata.databases(tmp / "mmdb", mix.ips)
        settings = validate(Settings(data_dir=tmp / "data", sites=(Site(traffic.SITE, secret="bench-secret"),),
                                     geoip_city_db=city, geoip_asn_db=asn, batch_size=batch_size,
                                     flush_interval_ms=0))
        svc = Collector.from_settings(settings)
        svc.migrate()
        site = settings.site(traffic.SITE)
        store = svc.store
        client = store.client
        loader = svc.loader
        # rows for the bare side: what the loader would build, taken from one spool fill
        _fill(svc, site, mix.requests(n_rows // 20 + 1, 20), n_rows)
        sample = [orjson.loads(p) for _, _, p in svc.spool.records_after(0, 0)]
        columns = TABLES["events"]
        base_rows = [r for r in sample if r.get("_t") == "events"][:n_rows]
        while loader.step():  # drain the sample fill: warms chDB, the client and the insert path
            pass
        results: dict[str, list[float]] = {"bare": [], "loader": []}
        import uuid

        for r in range(rounds):
            # bare client.insert of the same rows, in the loader's batch size
            fresh = {"event_id": lambda row: str(uuid.uuid4()), "ts": lambda row: round(row["ts"] * 1000)}
            rows = [[fresh[c](row) if c in fresh else row.get(c) for c in columns] for row in base_rows]
            t0 = time.perf_counter()
            for i in range(0, len(rows), batch_size):
                client.insert(f"`{store.database}`.`events`", rows[i:i + batch_size], column_names=list(columns),
                              settings={"insert_deduplication_token": f"bare:{r}:{i}", "async_insert": 0})
            results["bare"].append(len(rows) / (time.perf_counter() - t0))
            # the loader draining a spool of as many records
            _fill(svc, site, mix.requests(n_rows // 20 + 1, 20), n_rows)
            svc.spool.sync()
            before = loader.loaded_records if hasattr(loader, "loaded_records") else 0
            t0 = time.perf_counter()
            while loader.step():
                pass
            elapsed = time.perf_counter() - t0
            moved = (loader.loaded_records - before) if hasattr(loader, "loaded_records") else n_rows
            results["loader"].append(moved / elapsed)
        # what a drain costs the event loop's thread: units of Python work timed on the main thread
        # while the loader drains in its thread, against the same units with nothing else running
        alone = _units(None)
        _fill(svc, site, mix.requests(n_rows // 20 + 1, 20), n_rows)
        svc.spool.sync()

        def drain() -> None:
            while loader.step():
                pass

        during = _units(drain)
        total = store.query_rows("SELECT count() FROM events")[0][0]
        svc.spool.close()
        store.close()
    bare, ours = max(results["bare"]), max(results["loader"])
    return {"bare_rows_per_s": bare, "loader_rows_per_s": ours, "ratio": ours / bare, "rows": n_rows,
            "batch_size": batch_size, "rounds": rounds, "stored_total": total, "all": results,
            "main_thread": {"alone": alone, "during_drain": during}}


def _units(work, seconds: float = 1.0) -> dict:
    """Gaps between the ends of ~0.1 ms units of Python work on this thread while ``work`` runs in
    another (or for ``seconds`` with nothing else): the longest gap is how long the request path's
    thread would wait."""
    import threading

    done = threading.Event()
    if work is None:
        threading.Timer(seconds, done.set).start()
    else:
        threading.Thread(target=lambda: (work(), done.set()), daemon=True).start()
    gaps, last = [], time.perf_counter()
    while not done.is_set():
        x = 0
        for i in range(1000):
            x += i
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    gaps.sort()
    return {"units": len(gaps), "p50_ms": gaps[len(gaps) // 2] * 1e3, "p99_ms": gaps[int(len(gaps) * 0.99)] * 1e3,
            "max_ms": gaps[-1] * 1e3}


def run(n_rows: int = 50_000, rounds: int = 2, timeout_s: float = 300) -> dict:
    proc = subprocess.run([sys.executable, "-m", "loadtests.loader", str(n_rows), str(rounds)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"loader benchmark failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    print(json.dumps(measure(n, rounds=k)))

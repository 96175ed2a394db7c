"""The load test's verdict: what the clients were told, against what ClickHouse holds and /metrics counts.

Inputs are the locust processes' ledgers (``ledger-*.tsv``, written by ``loadtests/locustfile.py``: one
line per request, ``status<TAB>class<TAB>marker,marker,...``), the rows holding this run's markers in
``events`` and ``member_events``, and the collector's conservation counters.

An answer in 2xx acknowledged its events; 429 and 503 refused them; anything else, or no answer (a
connection broken by kill -9, a request in flight when the run stopped), leaves them unknown. The
marker's class says what an acknowledged event must become: ``anon`` a row in ``events``, ``member`` a
row in ``member_events``, ``bot`` and ``origin`` nothing (dropped by policy, counted in
``collector_events_dropped_total{reason}``). The verdict fails on:

- an acknowledged event that should be stored and is not (lost);
- a marker stored more than once, or an ``event_id`` held by two rows (duplicated);
- a refused event stored, a dropped event stored, a stored marker no client sent;
- (when the collector's configuration is known) an event stored in the other plane;
- a request the collector rejected as malformed (4xx other than 429: the load itself is wrong);
- per process, ``inherited + accepted != stored + dead_lettered + dropped + unstored`` once drained;
- ``accepted`` and ``dropped{reason}`` outside what the ledgers allow.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

STORED_IN = {"anon": "events", "member": "member_events"}
DROP_REASON = {"bot": "bot", "origin": "origin"}
TABLES = ("events", "member_events")


def outcome(status: int) -> str:
    if 200 <= status < 300:
        return "acked"
    if status in (429, 503):
        return "refused"
    return "unknown"


@dataclass
class Ledger:
    """Every marker sent, with the answer and its class; request counts by status."""

    markers: dict[str, tuple[int, str]] = field(default_factory=dict)
    requests_by_status: Counter = field(default_factory=Counter)
    events_by_status: Counter = field(default_factory=Counter)
    reused: int = 0  # a marker written twice (would make the verdict meaningless)

    def add(self, status: int, cls: str, markers: list[str]) -> None:
        self.requests_by_status[status] += 1
        self.events_by_status[status] += len(markers)
        for m in markers:
            if m in self.markers:
                self.reused += 1
            self.markers[m] = (status, cls)

    def count(self, result: str, cls: str | None = None) -> int:
        return sum(1 for st, c in self.markers.values() if outcome(st) == result and (cls is None or c == cls))


def read_ledgers(directory: Path) -> Ledger:
    ledger = Ledger()
    for path in sorted(Path(directory).glob("ledger-*.tsv")):
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) != 3:
                continue  # a line cut short by a locust process killed mid-write
            ledger.add(int(parts[0]), parts[1], [m for m in parts[2].split(",") if m])
    return ledger


def parse_metrics(text: str) -> dict[str, float]:
    """/metrics as {name{labels}: value}, with each labelled family's total under its bare name."""
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.endswith(("_bucket", "_count", "_sum", "_created")):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            if labels:
                out[f"{s.name}{{{labels}}}"] = s.value
                out[s.name] = out.get(s.name, 0.0) + s.value
            else:
                out[s.name] = s.value
    return out


def conservation(m: dict[str, float]) -> dict[str, float]:
    terms = {k: m.get(name, 0.0) for k, name in (
        ("inherited", "collector_spool_inherited_records"), ("accepted", "collector_events_accepted_total"),
        ("stored", "collector_events_stored_total"), ("dead_lettered", "collector_events_dead_lettered_total"),
        ("dropped", "collector_events_dropped_total"), ("unstored", "collector_spool_unstored_records"))}
    terms["unaccounted"] = (terms["inherited"] + terms["accepted"] - terms["stored"] - terms["dead_lettered"]
                            - terms["dropped"] - terms["unstored"])
    return terms


class Internal:
    """The collector's internal listener: a Unix socket path (``DATA_DIR/admin.sock``) or an http URL."""

    def __init__(self, target: str, token: str = ""):
        self.target = str(target)
        if self.target.startswith(("http://", "https://")):
            self.base, transport = self.target.rstrip("/"), None
        else:
            self.base, transport = "http://collector", httpx.HTTPTransport(uds=self.target)
            if not token:
                tok = Path(self.target).parent / "admin.token"
                token = tok.read_text().strip() if tok.exists() else ""
        self.token = token
        self.client = httpx.Client(transport=transport, timeout=120)

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.client.request(method, self.base + path, headers=headers, **kw)

    def metrics(self) -> dict[str, float]:
        r = self.request("GET", "/metrics")
        r.raise_for_status()
        return parse_metrics(r.text)

    def flush(self) -> None:
        self.request("POST", "/admin/flush").raise_for_status()

    def query(self, sql: str) -> list[dict]:
        r = self.request("POST", "/admin/query", json={"sql": sql, "format": "JSONEachRow"})
        if r.status_code >= 400:
            raise RuntimeError(f"query failed ({r.status_code}): {r.text[:500]}")
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def stored_markers(db: Internal, prefix: str, page_rows: int = 400_000) -> tuple[dict[str, dict[str, int]], int]:
    """{table: {marker: rows}} for this run's markers, and the number of event_ids held by two rows or more.
    Read in pages (by a hash of the marker) to stay inside the admin role's result limit."""
    where = f"startsWith(props['m'], '{prefix}')"
    out: dict[str, dict[str, int]] = {}
    dup_ids = 0
    for table in TABLES:
        total = int(db.query(f"SELECT count() AS c FROM {table} WHERE {where}")[0]["c"])
        pages = max(1, -(-total // page_rows))
        counts: dict[str, int] = {}
        for i in range(pages):
            rows = db.query(f"SELECT props['m'] AS m, count() AS c FROM {table} WHERE {where} "
                            f"AND cityHash64(props['m']) % {pages} = {i} GROUP BY m")
            counts.update({r["m"]: int(r["c"]) for r in rows})
        out[table] = counts
        dup_ids += int(db.query(f"SELECT count() AS d FROM (SELECT event_id FROM {table} WHERE {where} "
                                "GROUP BY event_id HAVING count() > 1)")[0]["d"])
    return out, dup_ids


@dataclass
class Verdict:
    figures: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, what: str) -> None:
        self.failures.append(what)


def judge(ledger: Ledger, stored: dict[str, dict[str, int]], duplicate_event_ids: int,
          planes_known: bool = True) -> Verdict:
    """Compares the ledgers with the rows: loss, duplicates, leaks, phantoms, wrong plane."""
    v = Verdict()
    rows: Counter = Counter()
    where: dict[str, str] = {}
    for table, counts in stored.items():
        for m, c in counts.items():
            rows[m] += c
            where[m] = table
    lost, dup, leaked_refused, leaked_dropped, phantom, wrong_plane, unknown_stored = [], [], [], [], [], [], 0
    for m, c in rows.items():
        if c > 1:
            dup.append(m)
        if m not in ledger.markers:
            phantom.append(m)
    for m, (status, cls) in ledger.markers.items():
        res = outcome(status)
        n = rows.get(m, 0)
        if cls in DROP_REASON:
            if n:
                leaked_dropped.append(m)
            continue
        if res == "acked" and n == 0:
            lost.append(m)
        elif res == "refused" and n:
            leaked_refused.append(m)
        elif res == "unknown" and n:
            unknown_stored += 1
        if n and cls in STORED_IN and where[m] != STORED_IN[cls]:
            wrong_plane.append(m)
    by_class = {cls: {res: ledger.count(res, cls) for res in ("acked", "refused", "unknown")}
                for cls in sorted({c for _, c in ledger.markers.values()})}
    v.figures.update({
        "events_sent": len(ledger.markers), "events_acked": ledger.count("acked"),
        "events_refused": ledger.count("refused"), "events_unknown": ledger.count("unknown"),
        "events_by_class": by_class,
        "rows_stored": sum(rows.values()), "markers_stored": len(rows),
        "stored_by_table": {t: sum(c.values()) for t, c in stored.items()},
        "lost": len(lost), "duplicated": len(dup) + duplicate_event_ids, "duplicate_markers": len(dup),
        "duplicate_event_ids": duplicate_event_ids, "refused_but_stored": len(leaked_refused),
        "dropped_but_stored": len(leaked_dropped), "phantom": len(phantom), "wrong_plane": len(wrong_plane),
        "unknown_stored": unknown_stored,
        "requests_by_status": {str(k): v_ for k, v_ in sorted(ledger.requests_by_status.items())},
    })
    if ledger.reused:
        v.fail(f"{ledger.reused} markers were sent twice: the load generator is broken")
    if not ledger.count("acked"):
        v.fail("no event was acknowledged")
    if lost:
        v.fail(f"{len(lost)} acknowledged events not stored, e.g. {sorted(lost)[:3]}")
    if dup:
        v.fail(f"{len(dup)} events stored more than once, e.g. {sorted(dup)[:3]}")
    if duplicate_event_ids:
        v.fail(f"{duplicate_event_ids} event_ids held by more than one row")
    if leaked_refused:
        v.fail(f"{len(leaked_refused)} events answered 429/503 were stored, e.g. {sorted(leaked_refused)[:3]}")
    if leaked_dropped:
        v.fail(f"{len(leaked_dropped)} events that policy drops (bots, foreign origins) were stored")
    if phantom:
        v.fail(f"{len(phantom)} stored events were never sent, e.g. {sorted(phantom)[:3]}")
    if wrong_plane and planes_known:
        v.fail(f"{len(wrong_plane)} events stored in the other plane, e.g. {sorted(wrong_plane)[:3]}")
    bad = {s: n for s, n in ledger.requests_by_status.items() if 400 <= s < 500 and s != 429}
    if bad:
        v.fail(f"requests rejected as malformed (the load is wrong): {bad}")
    return v


def check_counters(v: Verdict, ledger: Ledger, accepted: float, dropped: dict[str, float], mode: str) -> None:
    """``accepted`` and ``dropped{reason}`` counted over the run against the ledgers.

    ``exact``: one collector started for the run and never restarted: acknowledged ≤ counted ≤
    acknowledged + unknown. ``upper``: restarted (counters of killed processes read just before each
    kill): counted ≤ acknowledged + unknown. ``lower``: a deployment with other traffic: counted ≥
    acknowledged."""
    checks = [("accepted", accepted, ledger.count("acked"), ledger.count("acked") + ledger.count("unknown"))]
    for cls, reason in DROP_REASON.items():
        acked, unknown = ledger.count("acked", cls), ledger.count("unknown", cls)
        checks.append((f"dropped{{reason={reason}}}", dropped.get(reason, 0.0), acked, acked + unknown))
    v.figures["counters"] = {}
    for name, got, lo, hi in checks:
        v.figures["counters"][name] = {"counted": int(got), "acked": lo, "acked_or_unknown": hi}
        low_ok = got >= lo or mode == "upper"
        high_ok = got <= hi or mode == "lower"
        if not (low_ok and high_ok):
            v.fail(f"collector_events_{name} counted {int(got)} over the run, the clients say "
                   f"{lo}..{hi} ({mode})")


def check_conservation(v: Verdict, name: str, terms: dict[str, float]) -> None:
    v.figures.setdefault("conservation", {})[name] = {k: int(x) for k, x in terms.items()}
    if terms["unstored"]:
        v.fail(f"{name}: {int(terms['unstored'])} records still unstored after the drain timeout")
    if terms["unaccounted"]:
        v.fail(f"{name}: inherited + accepted != stored + dead_lettered + dropped + unstored: {terms}")

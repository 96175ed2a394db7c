"""Load, bookkeeping and the conservation oracle shared by the fault tests.

Every event sent carries a unique marker in ``props.m``. The client side records what each response
said: 202 = acknowledged (must be stored exactly once), 503 = refused (must carry Retry-After and
must never be stored), anything else or no answer = unknown (may or may not be stored, at most once).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from collector.delivery.spool import scan
from collector.testing import CHROME_UA, ROOT, CollectorProcess, make_settings

BATCH = 10


def fault_settings(data_dir: Path, **overrides):
    """Settings for a collector under fault tests: per-client rate limits out of the way, fast loader."""
    base = dict(rate_per_ip=1e9, rate_burst=1_000_000_000, rate_global=1e9, flush_interval_ms=100,
                fsync_interval_ms=50, batch_size=2000, shutdown_deadline_s=10.0)
    base.update(overrides)
    return make_settings(data_dir, **base)


@dataclass
class Ledger:
    """What the clients were told, by marker."""

    acked: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    retry_after_missing: int = 0
    broken: int = 0  # requests sent on a connection that broke before the answer (not refused connects)
    other_status: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sent(self) -> set[str]:
        return self.acked | self.refused | self.unknown


_seq = itertools.count()


def marker(tag: str, n: int) -> str:
    """A unique marker the scrubbers leave alone (letters only: digit runs look like identifiers)."""
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = chr(97 + r) + out
        if n == 0:
            return f"{tag}x{out}"


def body(markers: list[str]) -> bytes:
    return json.dumps([{"n": "pageview", "d": "example.org", "u": f"https://example.org/p/{m}",
                        "p": {"m": m}} for m in markers]).encode()


def send_batch(client: httpx.Client, url: str, ledger: Ledger, tag: str, n: int = BATCH) -> int | None:
    markers = [marker(tag, next(_seq)) for _ in range(n)]
    try:
        r = client.post(url + "/api/batch", content=body(markers),
                        headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA})
    except httpx.HTTPError as exc:
        with ledger.lock:
            ledger.unknown.update(markers)
            if not isinstance(exc, httpx.ConnectError):
                ledger.broken += 1
        return None
    with ledger.lock:
        if r.status_code == 202:
            ledger.acked.update(markers)
        elif r.status_code == 503:
            ledger.refused.update(markers)
            if not r.headers.get("retry-after", "").isdigit():
                ledger.retry_after_missing += 1
        else:
            ledger.unknown.update(markers)
            ledger.other_status[r.status_code] = ledger.other_status.get(r.status_code, 0) + 1
    return r.status_code


class Load:
    """``threads`` clients posting batches as fast as they are answered, until stopped."""

    def __init__(self, url: str, ledger: Ledger, tag: str, threads: int = 3, pause_s: float = 0.0,
                 reconnect_every: int = 0):
        """``reconnect_every``: open a new connection after that many batches (0: keep one), so
        several processes sharing a port each get some of the connections."""
        self.url, self.ledger, self.tag, self.pause_s = url, ledger, tag, pause_s
        self.reconnect_every = reconnect_every
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            with httpx.Client(timeout=10) as client:
                sent = 0
                while not self._stop.is_set() and (not self.reconnect_every or sent < self.reconnect_every):
                    if send_batch(client, self.url, self.ledger, self.tag) is None:
                        time.sleep(0.02)
                    sent += 1
                    if self.pause_s:
                        time.sleep(self.pause_s)

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self.threads:
            t.join(30)

    def __exit__(self, *exc) -> None:
        self.stop()


def send_until(url: str, ledger: Ledger, tag: str, status: int, limit: int = 5000) -> int:
    """Send batches until one is answered with ``status``; returns how many batches were sent."""
    with httpx.Client(timeout=10) as client:
        for i in range(limit):
            if send_batch(client, url, ledger, tag) == status:
                return i + 1
    raise AssertionError(f"no {status} after {limit} batches")


def cli(env, *args) -> subprocess.CompletedProcess:
    """``collector ARGS…`` as a child process with the collector's environment."""
    return subprocess.run([sys.executable, "-m", "collector", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def wait_for(predicate, timeout: float = 30, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def metrics(proc: CollectorProcess) -> dict[str, float]:
    """The collector's /metrics as {name{labels}: value}, with totals per family under the bare name."""
    text = proc.metrics()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
            if labels and not s.name.endswith(("_bucket", "_count", "_sum")):
                out[s.name] = out.get(s.name, 0.0) + s.value
    return out


def conservation(proc: CollectorProcess) -> dict[str, float]:
    """The per-process oracle from /metrics: inherited + accepted = stored + dead + dropped + unstored."""
    m = metrics(proc)
    terms = {
        "inherited": m.get("collector_spool_inherited_records", 0.0),
        "accepted": m.get("collector_events_accepted_total", 0.0),
        "stored": m.get("collector_events_stored_total", 0.0),
        "dead_lettered": m.get("collector_events_dead_lettered_total", 0.0),
        "dropped": m.get("collector_events_dropped_total", 0.0),
        "unstored": m.get("collector_spool_unstored_records", 0.0),
    }
    terms["refused"] = m.get("collector_events_refused_total", 0.0)
    return terms


def assert_quiescent_conservation(proc: CollectorProcess) -> dict[str, float]:
    proc.flush()
    c = wait_for(lambda: (lambda t: t if t["unstored"] == 0 else None)(conservation(proc)), 30,
                 what="the spool to drain")
    assert c["inherited"] + c["accepted"] == c["stored"] + c["dead_lettered"] + c["dropped"], c
    return c


def stored_markers(proc: CollectorProcess) -> dict[str, int]:
    rows = proc.query("SELECT props['m'] AS m, count() AS c FROM events GROUP BY m")
    return {r["m"]: int(r["c"]) for r in rows}


def duplicate_event_ids(proc: CollectorProcess) -> int:
    rows = proc.query("SELECT event_id, count() AS c FROM events GROUP BY event_id HAVING count() > 1")
    return len(rows)


def assert_exactly_once(proc: CollectorProcess, ledger: Ledger, lost: set[str] = frozenset()) -> dict[str, int]:
    """Every acknowledged event stored once (except ``lost``, damaged on disk by the test itself),
    no refused event stored, nothing stored twice, nothing stored that was never sent."""
    stored = stored_markers(proc)
    assert duplicate_event_ids(proc) == 0
    twice = {m: c for m, c in stored.items() if c != 1}
    assert not twice, f"stored more than once: {list(twice.items())[:5]}"
    missing = ledger.acked - set(stored) - set(lost)
    assert not missing, f"{len(missing)} acknowledged events not stored, e.g. {sorted(missing)[:5]}"
    assert not (set(lost) & set(stored)), "events the test destroyed were stored"
    leaked = set(stored) & ledger.refused
    assert not leaked, f"{len(leaked)} events answered 503 were stored"
    unknown = set(stored) - ledger.sent
    assert not unknown, f"stored events that were never sent: {sorted(unknown)[:5]}"
    assert ledger.retry_after_missing == 0, "a 503 without Retry-After"
    return stored


def assert_segments_clean(spool_dir: Path) -> None:
    for p in sorted(spool_dir.glob("*.seg")):
        r = scan(p.read_bytes())
        assert not r.damaged and not r.torn, f"{p.name} has damaged or torn data"

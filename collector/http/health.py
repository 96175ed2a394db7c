"""Liveness, readiness and storage health, answered on both listeners.

- ``/healthz``: the process answers.
- ``/readyz``: the collector is *accepting into a healthy spool*: started and not draining, the spool
  open, below its quota (with room for a request), the disk under it not full, and no event refused
  since the last probe (or in the last ``REFUSAL_WINDOW_S``). Storage health is deliberately not part
  of it: while ClickHouse is down every collector keeps absorbing events into its spool, and taking
  them all out of a load balancer's rotation would turn a storage outage into an outage of ingest.
- ``/storagez``: the last write to storage succeeded and the schema is applied (also the
  ``collector_storage_healthy`` metric). Alert on it; do not route on it.
"""

from __future__ import annotations

import os
import time
import weakref

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

REFUSAL_WINDOW_S = 5.0
MAX_HEADROOM_BYTES = 1 << 20


class _RefusalWatch:
    """Remembers the refusal count seen at the last probe, and when it last grew."""

    def __init__(self, total: int):
        self.seen = total
        self.grew_at = float("-inf")

    def recent(self, total: int, now: float) -> bool:
        if total > self.seen:
            self.seen, self.grew_at = total, now
        return now - self.grew_at < REFUSAL_WINDOW_S


_watches: "weakref.WeakKeyDictionary[object, _RefusalWatch]" = weakref.WeakKeyDictionary()


def headroom(svc) -> int:
    """Bytes the spool must still be able to take to count as healthy: one request at its largest,
    bounded by a sixteenth of the quota so that small test quotas still have a usable range."""
    return max(4096, min(MAX_HEADROOM_BYTES, svc.settings.max_body_bytes * 2, svc.spool.quota_bytes // 16))


def spool_problem(svc, now: float | None = None) -> str:
    """Why the spool cannot take writes now, or "" when it can."""
    spool = svc.spool
    now = time.monotonic() if now is None else now
    refused = sum(svc.counts.refused.values())
    watch = _watches.get(svc)
    if watch is None:
        watch = _watches[svc] = _RefusalWatch(refused)
    recent = watch.recent(refused, now)
    if getattr(spool, "_fd", None) is None:
        return "closed"
    need = headroom(svc)
    if spool.quota_bytes - spool.total_bytes < need:
        return "quota reached"
    try:
        st = os.statvfs(spool.dir)
        if st.f_bavail * st.f_frsize < need:
            return "disk full"
    except OSError:
        return "spool directory unreadable"
    if recent:
        return "refusing writes"
    return ""


def storage_healthy(svc) -> bool:
    return bool(svc.loader.healthy and svc.migrated)


async def healthz(request: Request) -> Response:
    return JSONResponse({"alive": True})


async def readyz(request: Request) -> Response:
    svc = request.app.state.collector
    problem = spool_problem(svc)
    ok = svc.ready and not problem
    body = {"ready": ok, "accepting": svc.ready, "state": svc.state.value, "spool": problem or "ok",
            "storage": storage_healthy(svc)}
    return JSONResponse(body, status_code=200 if ok else 503)


async def storagez(request: Request) -> Response:
    svc = request.app.state.collector
    ok = storage_healthy(svc)
    body = {"storage": ok, "writes": bool(svc.loader.healthy), "schema": bool(svc.migrated)}
    return JSONResponse(body, status_code=200 if ok else 503)

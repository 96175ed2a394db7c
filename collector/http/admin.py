"""Admin endpoints for the CLI and operators: query, erasure, inventory, keys, spool.

They are served only on the internal listener (``collector.http.internal``). Each requires the admin
token (``collector.http.auth``). On the embedded engine these are how other processes reach the
data: chDB allows one process per data path.
"""

from __future__ import annotations

import asyncio
import math
import re
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collector.http.api import read_body
from collector.http.decode import parse_json
from collector.errors import BadRequest
from collector.http.auth import ADMIN, proof, require, role_of
from collector.privacy import inventory

FORMAT = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,40}$")


def require_admin(request: Request) -> None:
    require(request, ADMIN)


async def hello(request: Request) -> Response:
    """Unauthenticated: proves to the CLI that this is the collector of its data directory (it holds
    the admin token) before the CLI sends any credential."""
    nonce = request.query_params.get("nonce", "")
    if not 16 <= len(nonce) <= 128:
        raise BadRequest("nonce must be 16 to 128 characters")
    svc = request.app.state.collector
    return JSONResponse({"proof": proof(svc.admin_token, nonce), "data_dir": str(svc.parts.data.root.resolve())})


async def _json(request: Request) -> dict:
    require_admin(request)
    doc = parse_json(await read_body(request, 1 << 20))
    if not isinstance(doc, dict):
        raise BadRequest("body must be a JSON object")
    return doc


async def _storage(fn, *args):
    """Storage work off the event loop; its ``StorageError`` says by its kind which status answers."""
    return await asyncio.to_thread(fn, *args)


MEDIA = {"JSON": "application/json", "JSONEachRow": "application/x-ndjson", "CSV": "text/csv",
         "CSVWithNames": "text/csv", "TabSeparated": "text/tab-separated-values",
         "TabSeparatedWithNames": "text/tab-separated-values"}
SQL_TYPES = ("text/plain", "application/sql")


async def query(request: Request) -> Response:
    """SQL within the sandbox of the caller's role: ``/admin/query`` needs the admin token,
    ``/api/query`` answers the analyst (documented views only) and the admin alike. The body is JSON
    (``{"sql": ..., "format": ...}``) or the SQL itself as text/plain; a ``FORMAT`` clause in the SQL
    wins over the requested format."""
    role = require(request, ADMIN) if request.url.path.startswith("/admin/") else role_of(request)
    body = await read_body(request, 1 << 20)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in SQL_TYPES:
        sql, fmt = body.decode("utf-8", "replace"), request.query_params.get("format", "TabSeparatedWithNames")
    else:
        doc = parse_json(body)
        if not isinstance(doc, dict):
            raise BadRequest("body must be a JSON object with sql (or text/plain SQL)")
        sql, fmt = doc.get("sql"), doc.get("format", "TabSeparatedWithNames")
    if not isinstance(sql, str) or not sql.strip():
        raise BadRequest("sql must be a non-empty string")
    if not isinstance(fmt, str) or not FORMAT.match(fmt):
        raise BadRequest("format must be a ClickHouse output format name")
    store = request.app.state.collector.store
    result = await _storage(store.run_sandboxed, sql, role, fmt)
    return Response(result.body, media_type=MEDIA.get(result.format, "application/octet-stream"),
                    headers={"X-Collector-Format": result.format, "X-Collector-Role": role})


async def forget(request: Request) -> Response:
    doc = await _json(request)
    site, ref = doc.get("site"), doc.get("member_ref")
    if not isinstance(site, str) or not isinstance(ref, str) or not ref:
        raise BadRequest("site and member_ref are required strings")
    svc = request.app.state.collector
    removed = await _storage(svc.forget, site, ref)
    return JSONResponse({"removed": removed})


async def inventory_list(request: Request) -> Response:
    require_admin(request)
    items = await _storage(inventory.inventory, request.app.state.collector.store)
    return JSONResponse(items)


async def keys_status(request: Request) -> Response:
    require_admin(request)
    return JSONResponse(request.app.state.collector.keys.status())


async def keys_rotate(request: Request) -> Response:
    require_admin(request)
    key = request.app.state.collector.keys.rotate()
    return JSONResponse(key.public())


async def spool_status(request: Request) -> Response:
    require_admin(request)
    svc = request.app.state.collector
    return JSONResponse(spool_report(svc))


def spool_report(svc) -> dict:
    """This process's spool; under ``serve --workers N`` also every other worker's, as its latest
    metrics say (``collector.metrics.Peers``: at most a second or two old, ``metrics_age_s``)."""
    report = svc.delivery_status()
    peers = svc.metrics.peers
    if peers is not None:
        report["workers"] = [worker_spool(peers, k) for k in peers.others()]
    return report


# a worker's spool fields in ``spool_report``, from its metrics
_WORKER_SPOOL = {"segments": "collector_spool_segments", "bytes": "collector_spool_bytes",
                 "quota_bytes": "collector_spool_quota_bytes", "unstored_bytes": "collector_spool_unstored_bytes",
                 "unstored_records": "collector_spool_unstored_records",
                 "oldest_unstored_age_s": "collector_oldest_unstored_seconds",
                 "storage_healthy": "collector_storage_healthy", "dead_lettered": "collector_events_dead_lettered_total"}


def worker_spool(peers, worker: int) -> dict:
    got = peers.latest(worker)
    if got is None:
        return {"worker": worker, "reported": False}
    at, values = got
    out: dict = {"worker": worker, "reported": True, "metrics_age_s": round(max(0.0, peers.clock() - at), 3)}
    for field, name in _WORKER_SPOOL.items():
        v = values.get(name)
        if v is None or not math.isfinite(v):
            out[field] = None
        elif field == "storage_healthy":
            out[field] = bool(v)
        else:
            out[field] = round(v, 3) if field == "oldest_unstored_age_s" else int(v)
    return out


async def flush(request: Request) -> Response:
    """Store everything spooled so far, within 30 s. Under ``serve --workers N`` the other workers are
    asked too (through the answers to their metrics pushes): each flushes its own spool and says so."""
    require_admin(request)
    svc = request.app.state.collector
    peers = svc.metrics.peers
    number = peers.request_flush() if peers is not None else 0
    deadline = time.monotonic() + 30
    done = await asyncio.to_thread(svc.loader.flush_wait, 30)
    while peers is not None and peers.flushed(number):
        if time.monotonic() >= deadline:
            done = False
            break
        await asyncio.sleep(0.05)
    return JSONResponse({"flushed": done, **spool_report(svc)})

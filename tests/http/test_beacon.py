"""The lean beacon route: the same answers as the general stack, counted by route and status."""

from __future__ import annotations

import asyncio

from tests.conftest import metrics
from collector.testing import CHROME_UA

EVENT = '{"n":"pageview","u":"https://example.org/plans","d":"example.org"}'


def test_beacon_answers_carry_security_cors_and_close_while_draining(app_client):
    h = {"Content-Type": "text/plain", "User-Agent": CHROME_UA, "Origin": "https://example.org"}
    r = app_client.post("/api/event", content=EVENT, headers=h)
    assert r.status_code == 202 and r.text == "ok" and r.headers["access-control-allow-origin"] == "https://example.org"
    assert r.headers["vary"] == "origin" and r.headers["x-frame-options"] == "DENY"
    r = app_client.post("/api/event", content=EVENT, headers={**h, "Origin": "https://evil.example"})
    assert r.status_code == 202 and "access-control-allow-origin" not in r.headers
    r = app_client.post("/api/event", content="x" * 100_000, headers=h)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large" and r.headers["connection"] == "close"
    svc = app_client.app.state.collector
    svc.request_shutdown()
    r = app_client.post("/api/event", content=EVENT, headers=h)
    assert r.status_code == 202 and r.headers["connection"] == "close"


def test_requests_are_counted_by_route_and_status_with_latency(app_client):
    h = {"Content-Type": "text/plain", "User-Agent": CHROME_UA}
    for _ in range(3):
        assert app_client.post("/api/event", content=EVENT, headers=h).status_code == 202
    assert app_client.post("/api/event", content="{", headers=h).status_code == 400
    assert app_client.get("/healthz").status_code == 200
    assert app_client.get("/nope").status_code == 404
    text = metrics(app_client)
    assert 'collector_http_requests_total{route="/api/event",status="202"} 3.0' in text
    assert 'collector_http_requests_total{route="/api/event",status="400"} 1.0' in text
    assert 'collector_http_requests_total{route="other",status="404"} 1.0' in text
    assert 'collector_http_request_seconds_count{route="/healthz",status="200"} 1.0' in text
    assert 'collector_http_request_seconds_bucket{le="+Inf",route="/api/event",status="202"} 3.0' in text
    assert "_created" not in text
    assert app_client.app.state.collector.counts.rejected[400] == 1


def test_requests_finishing_in_one_loop_turn_share_one_write(tmp_path):
    from collector.delivery.spool import Spool
    from collector.delivery.sync import SharedWrite

    spool = Spool(tmp_path / "spool")
    spool.recover()
    shared = SharedWrite(spool)

    async def go():
        await asyncio.gather(*(shared.append([b"r%d" % i, b"s%d" % i]) for i in range(10)))

    asyncio.run(go())
    assert shared.writes == 1 and shared.appends == 10 and spool.appended_records == 20
    spool.quota_bytes = spool.total_bytes + 30  # room for one request's records, not two

    async def two():
        return await asyncio.gather(shared.append([b"a" * 10]), shared.append([b"b" * 10]), return_exceptions=True)

    results = asyncio.run(two())
    assert results[0] is None and type(results[1]).__name__ == "SpoolFull"  # each its own answer
    assert spool.appended_records == 21

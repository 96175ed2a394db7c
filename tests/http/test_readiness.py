"""Readiness means accepting into a healthy spool; storage health is its own endpoint and metric."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from collector.http import health
from collector.http.app import create_app
from collector.testing import CHROME_UA, make_settings
from tests.conftest import metrics

EVENT = '{"n":"pageview","u":"https://example.org/","d":"example.org"}'


def post(client):
    return client.post("/api/event", content=EVENT, headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA})


@pytest.fixture
def outage(tmp_path):
    """A collector whose inserts fail (the storage drill) from the start."""
    flag = tmp_path / "storage-down"
    flag.touch()
    settings = make_settings(tmp_path / "data", fault_store_file=str(flag), spool_quota_bytes=1 << 20,
                             segment_bytes=64 * 1024)
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        with TestClient(client.app.state.internal, client=("127.0.0.1", 50001)) as internal:
            yield client, internal, flag


def wait_for(cond, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def wait_unhealthy(client):
    svc = client.app.state.collector
    assert post(client).status_code == 202
    wait_for(lambda: not svc.loader.healthy, 10)


def test_storage_outage_keeps_the_collector_ready_and_storagez_says_so(outage):
    client, internal, flag = outage
    wait_unhealthy(client)
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"ready": True, "accepting": True, "state": "ready", "spool": "ok", "storage": False}
    assert internal.get("/readyz").status_code == 200
    s = internal.get("/storagez")
    assert s.status_code == 503 and s.json()["storage"] is False and s.json()["writes"] is False
    assert "collector_storage_healthy 0.0" in metrics(client)
    flag.unlink()
    wait_for(lambda: internal.get("/storagez").status_code == 200, 30)
    assert "collector_storage_healthy 1.0" in metrics(client)


def test_a_full_spool_takes_the_collector_out_of_rotation_until_it_drains(outage):
    client, internal, flag = outage
    svc = client.app.state.collector
    wait_unhealthy(client)
    svc.spool.quota_bytes = svc.spool.total_bytes + 1000  # a few events' room: less than one request at its largest
    assert health.headroom(svc) > 1000
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["spool"] == "quota reached" and r.json()["accepting"] is True
    svc.spool.quota_bytes = 1 << 20
    assert client.get("/readyz").status_code == 200


def test_a_refused_write_makes_readiness_fail_for_a_while(outage, monkeypatch):
    client, internal, flag = outage
    svc = client.app.state.collector
    assert client.get("/readyz").status_code == 200
    svc.spool.quota_bytes = svc.spool.total_bytes + 10  # the next event does not fit
    assert post(client).status_code == 503
    svc.spool.quota_bytes = 1 << 20  # room again, but a write was just refused
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["spool"] == "refusing writes"
    monkeypatch.setattr(health, "REFUSAL_WINDOW_S", 0.0)
    assert client.get("/readyz").status_code == 200


def test_not_ready_while_starting_or_draining(settings):
    app = create_app(settings)
    svc = app.state.collector
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        assert client.get("/readyz").status_code == 200
        svc.request_shutdown()
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["state"] == "draining" and r.json()["spool"] == "ok"
    starting = create_app(settings.with_(data_dir=settings.data_dir.parent / "other"))
    client = TestClient(starting)  # no lifespan: never started
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["state"] == "starting"

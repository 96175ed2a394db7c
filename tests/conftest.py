from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from collector.http.app import create_app
from collector.testing import ASN, GEO, make_settings, write_mmdb


@pytest.fixture(scope="session")
def geo_dbs(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("mmdb")
    return (write_mmdb(d / "city.mmdb", GEO, "GeoLite2-City"), write_mmdb(d / "asn.mmdb", ASN, "GeoLite2-ASN"))


@pytest.fixture
def settings(tmp_path, geo_dbs):
    city, asn = geo_dbs
    return make_settings(tmp_path / "data", geoip_city_db=str(city), geoip_asn_db=str(asn))


@pytest.fixture
def app_client(settings):
    """The app in process with its lifespan, on real chDB in a temporary directory."""
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        yield client


@pytest.fixture
def internal(app_client):
    """The same collector's internal listener (admin, analyst queries, metrics)."""
    with TestClient(app_client.app.state.internal, client=("127.0.0.1", 50001)) as client:
        yield client


def metrics(client) -> str:
    """Prometheus text of the collector behind a public-app test client."""
    return client.app.state.collector.metrics.render().decode()


def flush(client) -> None:
    client.app.state.collector.loader.flush_wait(30)


def rows(client, sql: str) -> list[dict]:
    store = client.app.state.collector.store
    import json

    return [json.loads(x) for x in store.query_raw(sql, "JSONEachRow").decode().splitlines() if x]

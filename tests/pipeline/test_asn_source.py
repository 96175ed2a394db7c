"""The default ASN database: ``@ip-location-db/asn`` converted to GeoLite2-ASN's layout, read by the ISP step.

The sample rows below are an excerpt of ``@ip-location-db/asn`` 2.3.2026061719 (ip-location-db, from
RouteViews, NRO and the IP to ASN Lite database by DB-IP, https://db-ip.com; CC BY 4.0), unchanged.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import maxminddb
import pytest

from collector.pipeline import asnsource
from collector.pipeline.isp import IspStep
from collector.testing import CHROME_UA, make_settings

IPV4 = """\
1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."
1.0.4.0,1.0.7.255,38803,Gtelecom Pty Ltd
1.1.1.0,1.1.1.255,13335,"Cloudflare, Inc."
1.236.60.0,1.236.60.255,9692,"Hanwha Investment   Securities Co., Ltd."
8.8.4.0,8.8.4.255,15169,Google LLC
8.8.5.0,8.8.5.255,3356,"Level 3 Communications, Inc."
8.8.8.0,8.8.8.255,15169,Google LLC
102.214.24.0,102.214.27.255,329180,Akenten Appiah-Menka University of Skills Training and Entrepreneurial Development \
- Akenten Appiah-Menka University of Skills Training and Entrepreneurial Development
214.95.0.0,215.0.255.255,749,United States Department of Defense (DoD)
215.0.0.0,215.1.3.255,721,DoD Network Information Center
"""
IPV6 = """\
2001:4860::,2001:4860:4804:ffff:ffff:ffff:ffff:ffff,15169,Google LLC
2001:4860:4805::,2001:4860:4805:ffff:ffff:ffff:ffff:ffff,43515,Google Ireland Limited
2606:4700::,2606:4700:1:ffff:ffff:ffff:ffff:ffff,13335,"Cloudflare, Inc."
"""
LONG = ("Akenten Appiah-Menka University of Skills Training and Entrepreneurial Development - "
        "Akenten Appiah-Menka University of Skills Training and Entrepreneurial Development")
SAMPLE_ORGS = {"Cloudflare, Inc.", "Gtelecom Pty Ltd", "Hanwha Investment Securities Co., Ltd.", "Google LLC",
               "Level 3 Communications, Inc.", LONG, "United States Department of Defense (DoD)",
               "DoD Network Information Center", "Google Ireland Limited"}


def sample_tarball(path: Path, version: str = asnsource.VERSION) -> Path:
    """A tarball laid out like the npm package, with the sample rows."""
    files = {
        "package/package.json": json.dumps({"name": asnsource.PACKAGE, "version": version}),
        "package/asn-ipv4.csv": IPV4,
        "package/asn-ipv6.csv": IPV6,
        "package/ROUTEVIEWS-LICENSE": "The IP to AS Number database by Route Views is licensed under CC BY 4.0.",
        "package/NRO_LICENSE": "The statistics data provided by NRO is licensed under CC BY 4.0.",
        "package/DBIP-LICENSE": "The free IP to ASN Lite database by DB-IP is licensed under CC BY 4.0.",
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("asn")
    tarball = sample_tarball(d / "asn.tgz")
    out = d / "asn.mmdb"
    assert asnsource.build(tarball, out, asnsource.sha256_of(tarball)) == 13
    return out


def isp(tmp_path, db: Path) -> IspStep:
    return IspStep(make_settings(tmp_path, geoip_asn_db=str(db)))


def test_the_isp_step_reads_ipv4_and_ipv6_records_of_the_converted_sample(tmp_path, sample_db):
    step = isp(tmp_path, sample_db)
    assert step.resolve("1.1.1.1") == (13335, "Cloudflare, Inc.", "")
    assert step.resolve("8.8.8.8") == (15169, "Google LLC", "")
    assert step.resolve("8.8.8.9") == (15169, "Google LLC", "")  # the same /24, remembered
    assert step.resolve("8.8.5.1") == (3356, "Level 3 Communications, Inc.", "")
    # inclusive range ends
    assert step.resolve("1.0.4.0")[:2] == step.resolve("1.0.7.255")[:2] == (38803, "Gtelecom Pty Ltd")
    assert step.resolve("2001:4860:1::8888") == (15169, "Google LLC", "")
    assert step.resolve("2001:4860:4804:ffff:ffff:ffff:ffff:ffff") == (15169, "Google LLC", "")
    assert step.resolve("2001:4860:4805::1") == (43515, "Google Ireland Limited", "")
    assert step.resolve("2606:4700:1:ffff:ffff:ffff:ffff:ffff") == (13335, "Cloudflare, Inc.", "")


def test_an_address_in_no_range_has_empty_fields(tmp_path, sample_db):
    step = isp(tmp_path, sample_db)
    for ip in ("1.0.3.255", "1.0.8.0", "9.9.9.9", "10.0.0.1", "127.0.0.1",
               "2001:4860:4806::1", "2606:4700:2::1", "2001:db8::1", "::1"):
        assert step.resolve(ip) == (0, "", ""), ip


def test_records_have_the_geolite2_asn_layout_and_organisation_names_are_tidied(tmp_path, sample_db):
    with maxminddb.open_database(str(sample_db)) as reader:
        assert reader.get("1.236.60.1") == {"autonomous_system_number": 9692,
                                             "autonomous_system_organization": "Hanwha Investment Securities Co., Ltd."}
        assert reader.get("102.214.25.1")["autonomous_system_organization"] == LONG  # stored whole
        meta = reader.metadata()
    assert "ASN" in meta.database_type  # what `collector doctor` expects of COLLECTOR_GEOIP_ASN_DB
    assert meta.build_epoch == 1781722800  # the data's date, 2026-06-17T19:00Z, not the conversion's
    assert "DB-IP" in meta.description["en"] and "CC BY 4.0" in meta.description["en"]
    attribution = sample_db.with_suffix(".ATTRIBUTION.txt").read_text()
    assert "https://db-ip.com" in attribution and "routeviews" in attribution.lower() and "NRO" in attribution
    # the ISP step stores at most 128 characters of a name, and only names from the database
    step = isp(tmp_path, sample_db)
    assert step.resolve("102.214.25.1")[1] == LONG[:128]
    seen = {step.resolve(ip)[1] for ip in ("1.0.0.1", "1.0.5.5", "1.1.1.1", "1.236.60.1", "8.8.4.4", "8.8.5.5",
                                           "214.96.0.1", "215.1.0.1", "2001:4860::1", "2001:4860:4805::1")}
    assert seen <= {o[:128] for o in SAMPLE_ORGS} and len(seen) == 8


def test_where_ranges_overlap_the_later_row_answers(tmp_path, sample_db):
    step = isp(tmp_path, sample_db)
    assert step.resolve("214.255.255.255")[:2] == (749, "United States Department of Defense (DoD)")
    assert step.resolve("215.0.0.1")[:2] == (721, "DoD Network Information Center")
    assert step.resolve("215.0.255.255")[:2] == (721, "DoD Network Information Center")
    assert step.resolve("215.1.3.255")[:2] == (721, "DoD Network Information Center")
    assert step.resolve("215.1.4.0")[:2] == (0, "")


def test_the_conversion_is_reproducible(tmp_path, sample_db):
    tarball = sample_tarball(tmp_path / "asn.tgz")
    again = tmp_path / "again.mmdb"
    asnsource.build(tarball, again, asnsource.sha256_of(tarball))
    assert again.read_bytes() == sample_db.read_bytes()


def test_a_tarball_that_is_not_the_pinned_one_is_refused(tmp_path):
    tarball = sample_tarball(tmp_path / "asn.tgz")
    out = tmp_path / "asn.mmdb"
    with pytest.raises(ValueError, match="SHA-256"):
        asnsource.build(tarball, out)  # the pinned digest
    assert not out.exists()
    assert asnsource.main(["--tarball", str(tarball), "--out", str(out)]) == 1
    assert not out.exists()


def test_ensure_builds_only_when_the_database_is_missing(tmp_path):
    tarball = sample_tarball(tmp_path / "asn.tgz")
    digest = asnsource.sha256_of(tarball)
    out = tmp_path / "share" / "asn.mmdb"
    assert asnsource.ensure(out, tarball, sha256=digest) == out
    built = out.stat().st_mtime_ns
    assert asnsource.ensure(out, tarball, sha256="0" * 64) == out  # present: neither checked nor rebuilt
    assert out.stat().st_mtime_ns == built
    assert not list(out.parent.glob("*.tmp"))


def test_pinned_release_and_default_location():
    assert asnsource.tarball_url() == ("https://registry.npmjs.org/@ip-location-db/asn/-/asn-"
                                       f"{asnsource.VERSION}.tgz")
    assert len(asnsource.SHA256) == 64
    path = asnsource.default_path()
    assert path.name == f"ip-location-db-asn-{asnsource.VERSION}.mmdb" and path.parts[-3:-1] == ("share", "collector")


# -- the full database, built by the install step (`make install`, `make run`, `make test`) ------------------

@pytest.fixture(scope="module")
def full_db() -> Path:
    path = asnsource.default_path()
    assert path.exists(), (f"{path} is missing: `make install` builds it "
                           "(or run `.venv/bin/python -m collector.pipeline.asnsource`)")
    return path


def test_the_installed_database_answers_well_known_addresses(tmp_path, full_db):
    step = isp(tmp_path, full_db)
    assert step.resolve("8.8.8.8")[:2] == (15169, "Google LLC")
    assert step.resolve("1.1.1.1")[:2] == (13335, "Cloudflare, Inc.")
    assert step.resolve("2001:4860:4860::8888")[:2] == (15169, "Google LLC")
    assert step.resolve("2606:4700:4700::1111")[:2] == (13335, "Cloudflare, Inc.")
    for ip in ("10.0.0.1", "192.168.1.1", "127.0.0.1", "::1", "fd00::1"):
        assert step.resolve(ip)[:2] == (0, ""), ip
    with maxminddb.open_database(str(full_db)) as reader:
        meta = reader.metadata()
    assert meta.database_type == asnsource.DATABASE_TYPE and asnsource.VERSION in meta.description["en"]
    assert full_db.with_suffix(".ATTRIBUTION.txt").exists()


def test_beacons_store_the_isp_of_the_installed_database(tmp_path, full_db):
    from starlette.testclient import TestClient

    from collector.http.app import create_app
    from tests.conftest import flush, rows

    s = make_settings(tmp_path / "data", geoip_city_db="", geoip_asn_db=str(full_db))
    with TestClient(create_app(s), client=("127.0.0.1", 50000)) as c:
        for path, ip in (("/google", "8.8.8.8"), ("/cloudflare", "2606:4700:4700::1111")):
            body = {"n": "pageview", "u": f"https://example.org{path}", "d": "example.org"}
            r = c.post("/api/event", content=json.dumps(body), headers={
                "Content-Type": "text/plain", "User-Agent": CHROME_UA, "X-Forwarded-For": ip})
            assert r.status_code == 202
        flush(c)
        got = rows(c, "SELECT path, asn, isp FROM events ORDER BY path")
    assert [(r["path"], r["asn"], r["isp"]) for r in got] == [
        ("/cloudflare", 13335, "Cloudflare, Inc."), ("/google", 15169, "Google LLC")]

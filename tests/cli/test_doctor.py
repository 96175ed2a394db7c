"""`collector doctor` on good and broken installations: every problem named with its fix, exit 1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from collector import settings as settings_mod
from collector.testing import ASN, CHROME_UA, GEO, ROOT, CollectorProcess, env_for, make_settings, write_mmdb

STRONG = {"example.org": "Zk3q9V_pL2mR8xT4wB6nJ1cY7hD0sF5g", "localhost": "a8Jd0Lq2Wm5Rt7Yx9Pz1Bc3Nv6Kf4Hs_"}


def strong_sites(**secrets):
    return tuple(settings_mod.Site(d, secret=secrets.get(d, s)) for d, s in STRONG.items())


def doctor(settings, workdir: Path, *args: str) -> tuple[int, list[dict]]:
    env = env_for(settings, workdir / "doctor.toml")
    r = subprocess.run([sys.executable, "-m", "collector", "doctor", "--json", *args], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.stdout.startswith("["), r.stdout + r.stderr
    return r.returncode, json.loads(r.stdout)


def problems(findings, area=None) -> list[dict]:
    return [f for f in findings if f["level"] == "problem" and (area is None or f["area"] == area)]


def event(url: str, n: int = 1) -> None:
    for i in range(n):
        r = httpx.post(url + "/api/event", headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA},
                       content=json.dumps({"n": "pageview", "u": f"https://example.org/p{i}", "d": "example.org"}))
        assert r.status_code == 202


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A data directory a collector has served and stopped: schema, keys, tokens, one stored event."""
    d = tmp_path_factory.mktemp("doctor")
    city = write_mmdb(d / "city.mmdb", GEO, "GeoLite2-City")
    asn = write_mmdb(d / "asn.mmdb", ASN, "GeoLite2-ASN")
    settings = make_settings(d / "data", sites=strong_sites(), geoip_city_db=str(city), geoip_asn_db=str(asn))
    proc = CollectorProcess(settings, d).start()
    event(proc.url)
    proc.flush()
    assert proc.stop() == 0
    return proc.settings, d


def copy(installed, tmp_path, **changes):
    settings, d = installed
    shutil.copytree(settings.data_dir, tmp_path / "data", symlinks=True)
    os.chmod(tmp_path / "data", 0o700)
    return settings.with_(data_dir=tmp_path / "data", **changes)


def test_a_good_installation_passes(installed, tmp_path):
    settings = copy(installed, tmp_path)
    rc, findings = doctor(settings, tmp_path)
    assert rc == 0, problems(findings)
    ok = {f["area"] for f in findings if f["level"] == "ok"}
    assert {"config", "sites", "secrets", "tokens", "collector", "permissions", "keys", "geoip", "storage", "spool"} <= ok
    storage = next(f["message"] for f in findings if f["area"] == "storage")
    assert "schema version" in storage and "migrations applied" in storage
    geo = [f["message"] for f in findings if f["area"] == "geoip"]
    assert any("GeoLite2-City built " + time.strftime("%Y-%m-%d") in m for m in geo), geo
    keys = " ".join(f["message"] for f in findings if f["area"] == "keys")
    assert "visitor key" in keys and "member key" in keys
    # the human form says the same and ends with the tally
    r = subprocess.run([sys.executable, "-m", "collector", "doctor"], env=env_for(settings, tmp_path / "d.toml"),
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("0 problem(s), 0 warning(s)"), r.stdout


def test_a_running_collector_is_checked_through_its_socket(installed, tmp_path):
    settings = copy(installed, tmp_path)
    proc = CollectorProcess(settings, tmp_path).start()
    try:
        rc, findings = doctor(proc.settings, tmp_path)
        msgs = [f["message"] for f in findings if f["area"] == "collector"]
        assert rc == 0, problems(findings)
        assert any(m.startswith("running on ") for m in msgs) and "ready (accepting into the spool)" in msgs
        assert any("schema applied by the running collector" in f["message"] for f in findings)
    finally:
        assert proc.stop() == 0


def test_demo_weak_and_missing_secrets_are_problems(installed, tmp_path):
    settings = copy(installed, tmp_path, sites=(
        settings_mod.Site("example.org", secret="demo-secret-example-org-change-me"),
        settings_mod.Site("localhost", secret="short"),
        settings_mod.Site("shop.example", secret=""),
    ))
    rc, findings = doctor(settings, tmp_path)
    assert rc == 1
    got = {f["message"].split(":")[0]: f for f in problems(findings, "secrets")}
    assert set(got) == {"site example.org", "site localhost", "site shop.example"}
    assert "demo or placeholder" in got["site example.org"]["message"]
    assert "weak" in got["site localhost"]["message"] and "token_urlsafe" in got["site localhost"]["fix"]
    assert "no secret" in got["site shop.example"]["message"]


def test_loose_permissions_are_problems_with_the_chmod_to_fix_them(installed, tmp_path):
    settings = copy(installed, tmp_path)
    data = settings.data_dir
    os.chmod(data, 0o755)
    os.chmod(data / "analyst.token", 0o644)
    key = next((data / "keys").glob("member-*.key"))
    os.chmod(key, 0o640)
    rc, findings = doctor(settings, tmp_path)
    assert rc == 1
    fixes = {f["fix"] for f in problems(findings, "permissions")}
    assert fixes == {f"chmod 700 {data}", f"chmod 600 {data / 'analyst.token'}", f"chmod 600 {key}"}


def test_keys_past_destruction_and_a_lost_member_key(installed, tmp_path):
    settings = copy(installed, tmp_path)
    keys = settings.data_dir / "keys"
    old = int(time.time()) - 5 * 86400
    stale = keys / "visitor-old.key"
    stale.write_text(json.dumps({"id": "visitor-old", "purpose": "visitor", "not_before": old,
                                 "not_after": old + 86400, "secret": "00" * 32}))
    os.chmod(stale, 0o600)
    next(keys.glob("member-*.key")).unlink()
    rc, findings = doctor(settings, tmp_path)
    assert rc == 1
    msgs = {f["message"]: f["fix"] for f in problems(findings, "keys")}
    (past,) = [m for m in msgs if m.startswith("visitor key visitor-old is past its destruction time")]
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(old + 86400 + 48 * 3600)) in past
    assert "collector keys status" in msgs[past]
    (lost,) = [m for m in msgs if m.startswith("the member key is missing")]
    assert "restore" in msgs[lost]


def test_missing_and_mixed_up_geoip_databases(installed, tmp_path):
    settings = copy(installed, tmp_path)
    settings = settings.with_(geoip_city_db=str(tmp_path / "nowhere.mmdb"), geoip_asn_db=settings.geoip_city_db)
    rc, findings = doctor(settings, tmp_path)
    assert rc == 1
    msgs = [f["message"] for f in problems(findings, "geoip")]
    assert any("does not exist" in m for m in msgs)
    assert any("is a GeoLite2-City database, expected ASN or ISP" in m for m in msgs)


def test_unmigrated_storage_is_a_problem_until_migrate_runs(tmp_path):
    settings = make_settings(tmp_path / "data", sites=strong_sites())
    rc, findings = doctor(settings, tmp_path)
    assert rc == 1
    (p,) = problems(findings, "storage")
    assert "schema not applied" in p["message"] and "collector migrate" in p["fix"]
    env = env_for(settings, tmp_path / "m.toml")
    subprocess.run([sys.executable, "-m", "collector", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True,
                   timeout=120)
    rc, findings = doctor(settings, tmp_path)
    assert problems(findings, "storage") == []


def test_a_spool_near_its_quota_is_a_problem(tmp_path):
    flag = tmp_path / "storage-down"
    flag.touch()
    settings = make_settings(tmp_path / "data", sites=strong_sites(), fault_store_file=str(flag),
                             shutdown_deadline_s=1.0)
    proc = CollectorProcess(settings, tmp_path).start()
    event(proc.url, 40)
    assert proc.stop() == 0
    spooled = sum(p.stat().st_size for p in (settings.data_dir / "spool").glob("*.seg"))
    assert spooled > 0
    rc, findings = doctor(proc.settings.with_(fault_store_file="", spool_quota_bytes=int(spooled * 1.1)), tmp_path)
    assert rc == 1
    (p,) = problems(findings, "spool")
    assert "near the quota" in p["message"] and "40 records unstored" in p["message"]
    rc, findings = doctor(proc.settings.with_(fault_store_file=""), tmp_path)
    warn = [f for f in findings if f["area"] == "spool" and f["level"] == "warn"]
    assert any("wait for a collector" in f["message"] for f in warn)

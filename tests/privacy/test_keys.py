import os
import stat

from collector.privacy.keys import KeyStore, mac


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


DAY = 86400


def all_bytes(root) -> bytes:
    out = b""
    for dirpath, _, files in os.walk(root):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out += fh.read()
    return out


def test_files_are_private_and_audited_without_key_bytes(tmp_path):
    ks = KeyStore(tmp_path / "keys", clock=Clock(100 * DAY))
    ks.maintain()
    key = ks.visitor_key()
    for p in (tmp_path / "keys").iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    audit = (tmp_path / "keys" / "audit.log").read_bytes()
    assert key.secret.hex().encode() not in audit and key.secret not in audit
    assert {e["action"] for e in ks.audit_entries()} == {"create"}


def test_rotation_gives_unrelated_pseudonyms_and_destroys_old_keys(tmp_path):
    clock = Clock(100 * DAY + 10)
    ks = KeyStore(tmp_path / "keys", period_s=DAY, destroy_after_s=24 * 3600, clock=clock)
    k1 = ks.visitor_key()
    p1 = mac(k1, "visitor", "example.org", "client-1")
    clock.t += DAY
    k2 = ks.visitor_key()
    assert k2.id != k1.id
    assert mac(k2, "visitor", "example.org", "client-1") != p1
    # the previous period's key stays usable for visits that began before the rotation
    assert ks.visitor_key(at=100 * DAY + 10).id == k1.id
    assert [k.id for k in ks.visitor_keys(100 * DAY + 10)] == [k2.id, k1.id]  # today's and the visit's, together
    assert [k.id for k in ks.visitor_keys(None)] == [k2.id, k2.id]
    clock.t = 102 * DAY + 1  # k1's period ended at 101 days; destroy_after 24 h
    ks.maintain()
    assert ks.visitor_key(at=100 * DAY + 10).id != k1.id
    today = ks.visitor_key()
    assert [k.id for k in ks.visitor_keys(100 * DAY + 10)] == [today.id, today.id]  # gone: today's instead
    disk = all_bytes(tmp_path)
    assert k1.secret not in disk and k1.secret.hex().encode() not in disk
    assert k2.secret.hex().encode() in disk
    destroyed = [e for e in ks.audit_entries() if e["action"] == "destroy"]
    assert [e["id"] for e in destroyed] == [k1.id]


def test_destroy_after_is_capped_at_48_hours(tmp_path):
    ks = KeyStore(tmp_path / "keys", destroy_after_s=10 * DAY)
    assert ks.destroy_after_s == 48 * 3600


def test_forced_rotation_replaces_and_shreds_current_key(tmp_path):
    ks = KeyStore(tmp_path / "keys", clock=Clock(100 * DAY))
    old = ks.visitor_key()
    new = ks.rotate()
    assert ks.visitor_key().id == new.id != old.id
    assert old.secret.hex().encode() not in all_bytes(tmp_path)
    status = ks.status()
    assert {s["purpose"] for s in status} == {"visitor", "member"}
    assert all("secret" not in s for s in status)


def test_member_key_is_stable_across_restarts(tmp_path):
    a = KeyStore(tmp_path / "keys").member_key()
    b = KeyStore(tmp_path / "keys").member_key()
    assert a.secret == b.secret


def test_visitor_keys_are_destroyed_on_a_timer_and_at_startup_without_anonymous_traffic(tmp_path):
    import json
    import time

    import httpx

    from collector.testing import CollectorProcess, make_settings

    # short periods: a key's period ends after 2 s and it must be gone 1 s later
    s = make_settings(tmp_path / "data", key_period_s=2, key_destroy_after_s=1)
    proc = CollectorProcess(s, tmp_path).start()
    keys = tmp_path / "data" / "keys"
    try:
        first = {p.name for p in keys.glob("*.key")}
        time.sleep(4.5)  # no traffic at all
        assert first - {p.name for p in keys.glob("*.key")}, "the first visitor key is still on disk"
        destroyed = [json.loads(x) for x in (keys / "audit.log").read_text().splitlines()
                     if json.loads(x)["action"] == "destroy"]
        assert destroyed, "a visitor key past its destruction time is still on disk"
        assert httpx.get(proc.url + "/healthz").status_code == 200
    finally:
        assert proc.stop() == 0
    # while stopped, keys age; the next start destroys them before serving
    before = sum(1 for x in (keys / "audit.log").read_text().splitlines() if json.loads(x)["action"] == "destroy")
    time.sleep(3.5)
    proc = CollectorProcess(s, tmp_path).start()
    try:
        after = sum(1 for x in (keys / "audit.log").read_text().splitlines() if json.loads(x)["action"] == "destroy")
        assert after > before
    finally:
        assert proc.stop() == 0


def test_mac_is_hmac_sha256_for_any_key_and_parts():
    import hmac
    import random

    from collector.privacy.keys import Key

    rnd = random.Random(4)
    for n in (1, 16, 32, 63, 64, 65, 200):  # shorter than, equal to and longer than SHA-256's block
        secret = rnd.randbytes(n)
        key = Key("k", "visitor", 0, 1, secret)
        for parts in (("visitor", "example.org", "cid.1"), ("network", "x", "10.0.0.0"), ("", ), ("é", "\x1f", "日本")):
            want = hmac.digest(secret, "\x1f".join(parts).encode(), "sha256")[:16].hex()
            assert mac(key, *parts) == want
            assert mac(key, *parts) == want  # again, from the states kept on the key
    other = Key("k", "visitor", 0, 1, b"\x01" * 32)
    assert mac(other, "a") != mac(Key("k", "visitor", 0, 1, b"\x02" * 32), "a")

"""The raw IP, cookie values, client ids, User-Agent strings and member references sent to the
collector appear in no artifact: spool, logs, dead letters, data directory files or any ClickHouse table."""

import json
import os

import httpx

from collector.privacy.tokens import mint
from collector.testing import SECRET, CollectorProcess, make_settings

IP = "81.2.69.142"
COOKIE = "SECRETCOOKIEVALUE9931"
CLIENT_ID = "lq2x5k.ClientIdNeverStored42"
MEMBER_REF = "MBR7700420042"  # matches the site's configured member-id pattern
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 Marker77"


def read_all(root) -> bytes:
    out = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out.append(fh.read())
    return b"".join(out)


def test_sent_identifiers_are_in_no_artifact(tmp_path, geo_dbs):
    city, asn = geo_dbs
    settings = make_settings(tmp_path / "data", geoip_city_db=str(city), geoip_asn_db=str(asn),
                             ip_prefix="24", flush_interval_ms=60000)
    proc = CollectorProcess(settings, tmp_path).start()
    try:
        token = mint(SECRET, "example.org", MEMBER_REF, ["analytics_linking"], 600)
        headers = {"Content-Type": "text/plain", "User-Agent": UA, "X-Forwarded-For": IP,
                   "Cookie": f"session={COOKIE}", "Authorization": f"Bearer {COOKIE}"}
        for body in (
            {"n": "pageview", "u": f"https://example.org/?ip={IP}", "d": "example.org", "cid": CLIENT_ID},
            {"n": "pageview", "u": "https://example.org/account", "d": "example.org", "cid": CLIENT_ID,
             "identity": token, "p": {"note": MEMBER_REF}},
            {"n": "Signup", "u": "https://example.org/x", "d": "example.org", "identity": "forged." + MEMBER_REF},
        ):
            assert httpx.post(proc.url + "/api/event", content=json.dumps(body), headers=headers).status_code == 202
        pixel = httpx.get(proc.url + "/p.gif", params={"d": "example.org", "u": "https://example.org/px"},
                          headers={"User-Agent": UA, "X-Forwarded-For": IP, "Cookie": f"c={COOKIE}"})
        assert pixel.status_code == 200
        # the spool, before loading
        spool = read_all(tmp_path / "data" / "spool")
        assert spool and b"example.org" in spool
        proc.flush()
        tables = proc.tables()
        # TabSeparated as stored: aggregate-state columns are binary and are grepped byte for byte
        dump = b"".join(proc.query_raw(f"SELECT * FROM {t}") for t in tables)
        assert b"81.2.69" in dump  # the /24 prefix was stored as configured
        assert len(proc.query("SELECT * FROM member_events WHERE member_id != ''")) == 1
        assert len(proc.query("SELECT * FROM events")) == 3
    finally:
        assert proc.stop() == 0
    disk = read_all(tmp_path / "data") + spool
    logs = proc.log_path.read_bytes()
    for secret in (IP, COOKIE, CLIENT_ID, MEMBER_REF, UA, "Marker77"):
        assert secret.encode() not in dump, secret
        assert secret.encode() not in disk, secret
        assert secret.encode() not in logs, secret

"""Erasure through `collector forget` (via the running collector), and the data inventory."""

import hashlib
import hmac
import json
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from collector.privacy.tokens import mint
from collector.testing import CHROME_UA, ROOT, SECRET, CollectorProcess, make_settings

REF, OTHER = "MBR0000111", "MBR0000222"


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "collector", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def proc(tmp_path_factory):
    d = tmp_path_factory.mktemp("forget")
    p = CollectorProcess(make_settings(d / "data"), d).start()
    yield p
    assert p.stop() == 0


def link_and_consent(proc, ref):
    token = mint(SECRET, "example.org", ref, ["analytics_linking"], 600)
    for path in ("/claims", "/benefits"):
        body = {"n": "pageview", "u": f"https://example.org{path}", "d": "example.org", "identity": token}
        r = httpx.post(proc.url + "/api/event", content=json.dumps(body),
                       headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA})
        assert r.status_code == 202
    doc = json.dumps({"site": "example.org", "member_ref": ref, "purpose": "email", "action": "grant",
                      "policy_version": "v3", "ts": time.time(), "nonce": secrets.token_hex(16)}).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), doc, hashlib.sha256).hexdigest()
    assert httpx.post(proc.url + "/api/consent", content=doc, headers={"X-Collector-Signature": sig,
                                                                       "Content-Type": "application/json"}
                      ).status_code == 202


def test_forget_removes_everything_for_the_member_and_is_idempotent(proc):
    link_and_consent(proc, REF)
    link_and_consent(proc, OTHER)
    proc.flush()
    # a row of each member that ClickHouse had rejected, in the dead letters
    from collector.privacy.erasure import member_pseudonym
    from collector.privacy.keys import KeyStore

    keys = KeyStore(proc.settings.data_dir / "keys")
    dead = proc.settings.data_dir / "deadletter" / "20260101.jsonl"
    dead.parent.mkdir(exist_ok=True)
    dead.write_bytes(b"".join(json.dumps({"reason": "rejected", "token": f"t{i}", "row": {
        "site": "example.org", "member_id": member_pseudonym(keys, "example.org", ref)}}).encode() + b"\n"
        for i, ref in enumerate((REF, OTHER))))
    assert len(proc.query("SELECT * FROM member_events")) == 4
    first = cli(proc.env, "forget", "--site", "example.org", "--member-ref", REF)
    assert first.returncode == 0, first.stderr
    assert "member_events: 2 removed" in first.stdout and "consent_ledger: 1 removed" in first.stdout
    assert "dead_letters: 1 removed" in first.stdout
    assert len(dead.read_bytes().splitlines()) == 1  # the other member's row stays
    assert REF not in first.stdout + first.stderr
    remaining = proc.query("SELECT member_id FROM member_events")
    assert len(remaining) == 2 and len({r["member_id"] for r in remaining}) == 1
    assert len(proc.query("SELECT * FROM consent_ledger")) == 1
    second = cli(proc.env, "forget", "--site", "example.org", "--member-ref", REF)
    assert second.returncode == 0 and "nothing found for this member" in second.stdout


def live_columns(tmp_path) -> list[dict]:
    """The schema the migrations make, read from ClickHouse's own catalogue in a fresh database (the
    running collector's sandbox keeps system tables closed)."""
    from collector.storage import migrate
    from collector.storage.store import Store

    s = make_settings(tmp_path / "schema")
    store = Store(s.dsn, s.database)
    try:
        migrate.apply(store, s)
        return [json.loads(x) for x in store.query_raw(
            "SELECT table, name FROM system.columns WHERE database = currentDatabase()", "JSONEachRow").splitlines()]
    finally:
        store.close()


def test_inventory_describes_every_stored_column(proc, tmp_path):
    out = cli(proc.env, "inventory", "--json")
    assert out.returncode == 0, out.stderr
    items = json.loads(out.stdout)
    live = live_columns(tmp_path)
    assert {(i["table"], i["column"]) for i in items} == {(r["table"], r["name"]) for r in live}
    assert not [i for i in items if "UNDOCUMENTED" in (i["meaning"], i["table_meaning"])]
    retention = {i["table"]: i["retention"] for i in items}
    assert retention["events"] == "25 months" and retention["member_events"] == "13 months"
    identifying = {i["column"] for i in items if i["identifies_person"].startswith("yes")}
    assert identifying == {"member_id", "session_id"}
    text = cli(proc.env, "inventory").stdout
    assert "member_events" in text and "visitor_id" in text


def test_privacy_doc_lists_every_stored_column(tmp_path):
    doc = (Path(ROOT) / "docs" / "privacy.md").read_text()
    live = live_columns(tmp_path)
    missing = [r["name"] for r in live if not re.search(rf"`{re.escape(r['name'])}`", doc)]
    assert not missing, f"docs/privacy.md does not describe: {missing}"


def test_tokens_issued_before_an_erasure_never_link_again(proc):
    import time

    ref = "MBR0000333"
    old = mint(SECRET, "example.org", ref, ["analytics_linking"], 600, now=time.time() - 5)

    def send(token):
        body = {"n": "pageview", "u": "https://example.org/after", "d": "example.org", "identity": token}
        assert httpx.post(proc.url + "/api/event", content=json.dumps(body),
                          headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA}).status_code == 202
        proc.flush()

    from collector.privacy.erasure import member_pseudonym
    from collector.privacy.keys import KeyStore

    member = member_pseudonym(KeyStore(proc.settings.data_dir / "keys"), "example.org", ref)
    linked = f"SELECT count() AS n FROM member_events WHERE member_id = '{member}'"
    send(old)
    assert proc.query(linked)[0]["n"] == 1
    assert cli(proc.env, "forget", "--site", "example.org", "--member-ref", ref).returncode == 0
    send(old)
    assert proc.query(linked)[0]["n"] == 0
    time.sleep(1.1)
    send(mint(SECRET, "example.org", ref, ["analytics_linking"], 600))  # a new login after the erasure
    assert proc.query(linked)[0]["n"] == 1

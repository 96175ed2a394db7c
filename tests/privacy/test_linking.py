"""Forward-only, consent-gated linking through the HTTP API on real chDB."""

import hashlib
import hmac
import json
import secrets
import time

from collector.privacy.tokens import mint
from tests.conftest import flush, rows
from collector.testing import CHROME_UA, SECRET

HEADERS = {"Content-Type": "text/plain", "User-Agent": CHROME_UA}
CID = "abcdefg.RandomClientId1234"


def send(client, path, identity=None, headers=None, cid=CID):
    body = {"n": "pageview", "u": f"https://example.org{path}", "d": "example.org", "cid": cid}
    if identity:
        body["identity"] = identity
    r = client.post("/api/event", content=json.dumps(body), headers={**HEADERS, **(headers or {})})
    assert r.status_code == 202
    return r


def token(ref="MEMBER-REF-777", purposes=("analytics_linking",), ttl=600, now=None):
    return mint(SECRET, "example.org", ref, list(purposes), ttl, now=now)


def consent(client, action, ref="MEMBER-REF-777", secret=SECRET):
    body = json.dumps({"site": "example.org", "member_ref": ref, "purpose": "analytics_linking", "action": action,
                       "policy_version": "2026-01", "ts": time.time(), "nonce": secrets.token_hex(16)}).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post("/api/consent", content=body, headers={"Content-Type": "application/json",
                                                              "X-Collector-Signature": sig})


def refused(client) -> dict:
    return dict(client.app.state.collector.identity.refused)


def test_anonymous_then_login_is_forward_only(app_client):
    for p in ("/", "/plans", "/find-a-doctor"):
        send(app_client, p)
    t = token()
    for p in ("/claims", "/benefits"):
        send(app_client, p, identity=t)
    flush(app_client)
    before = rows(app_client, "SELECT * FROM events")
    after = rows(app_client, "SELECT * FROM member_events")
    assert [r["path"] for r in before] and len(before) == 3 and len(after) == 2
    assert len({r["visitor_id"] for r in before}) == 1 and before[0]["visitor_id"]
    assert all(r["member_id"] and r["session_id"] for r in after)
    before_values = {v for r in before for v in (r["visitor_id"], r["key_id"], r["event_id"])}
    after_values = {v for r in after for v in (r["member_id"], r["session_id"], r["event_id"])}
    assert not before_values & after_values
    assert "MEMBER-REF-777" not in json.dumps(after)


def test_no_table_has_both_kinds_of_pseudonym(app_client):
    cols = rows(app_client, "SELECT table, groupArray(name) AS c FROM system.columns "
                            "WHERE database = currentDatabase() GROUP BY table")
    for t in cols:
        assert not ({"visitor_id", "key_id"} & set(t["c"]) and {"member_id", "session_id"} & set(t["c"])), t


def test_forged_expired_unconsented_tokens_never_link(app_client):
    now = int(time.time())
    forged = mint("not-the-site-secret", "example.org", "MEMBER-REF-777", ["analytics_linking"], 600)
    expired = token(now=now - 7200, ttl=60)
    unconsented = token(purposes=("email",))
    for t in (forged, expired, unconsented, "garbage"):
        send(app_client, "/claims", identity=t)
    flush(app_client)
    assert rows(app_client, "SELECT count() AS n FROM member_events WHERE member_id != ''")[0]["n"] == 0
    assert rows(app_client, "SELECT count() AS n FROM events")[0]["n"] == 4
    assert refused(app_client) == {"bad_signature": 1, "expired": 1, "unconsented": 1, "malformed": 1}


def test_withdrawal_stops_tokens_issued_before_it(app_client):
    early = token(now=int(time.time()) - 5)
    assert consent(app_client, "grant").status_code == 202
    send(app_client, "/a", identity=early)
    assert consent(app_client, "withdraw").status_code == 202
    send(app_client, "/b", identity=early)
    time.sleep(1.1)
    fresh = token()
    assert consent(app_client, "grant").status_code == 202
    send(app_client, "/c", identity=fresh)
    flush(app_client)
    linked = {r["path"] for r in rows(app_client, "SELECT path FROM member_events WHERE member_id != ''")}
    assert linked == {"/a", "/c"}
    assert refused(app_client) == {"withdrawn": 1}
    ledger = rows(app_client, "SELECT action, policy_version, member_id FROM consent_ledger ORDER BY ts")
    assert [r["action"] for r in ledger] == ["grant", "withdraw", "grant"]
    assert all(len(r["member_id"]) == 32 for r in ledger)


def test_consent_requires_the_site_signature(app_client):
    assert consent(app_client, "grant", secret="wrong").status_code == 401


def test_gpc_and_dnt_events_carry_no_linkable_pseudonym(app_client):
    send(app_client, "/gpc", headers={"Sec-GPC": "1"})
    send(app_client, "/dnt", headers={"DNT": "1"})
    send(app_client, "/gpc-login", identity=token(), headers={"Sec-GPC": "1"})
    flush(app_client)
    got = rows(app_client, "SELECT path, visitor_id, key_id, privacy FROM events ORDER BY path")
    assert [(r["path"], r["visitor_id"], r["key_id"], r["privacy"]) for r in got] == [
        ("/dnt", "", "", "gpc"), ("/gpc", "", "", "gpc"), ("/gpc-login", "", "", "gpc")]
    assert rows(app_client, "SELECT count() AS n FROM member_events")[0]["n"] == 0
    assert refused(app_client) == {"gpc": 1}


def test_authenticated_prefix_goes_to_member_plane_without_visitor_pseudonym(app_client):
    send(app_client, "/member/claims")
    flush(app_client)
    (row,) = rows(app_client, "SELECT * FROM member_events")
    assert row["path"] == "/member/claims" and row["member_id"] == "" and "visitor_id" not in row
    assert rows(app_client, "SELECT count() AS n FROM events")[0]["n"] == 0


def test_nothing_timed_before_the_token_was_issued_links(app_client):
    now = time.time()
    t = token(now=now)
    body = {"n": "pageview", "u": "https://example.org/claims", "d": "example.org", "cid": CID, "identity": t,
            "ts": int((now - 240) * 1000)}
    assert app_client.post("/api/event", content=json.dumps(body), headers=HEADERS).status_code == 202
    send(app_client, "/benefits", identity=t)
    flush(app_client)
    assert [r["path"] for r in rows(app_client, "SELECT path FROM events")] == ["/claims"]
    assert [r["path"] for r in rows(app_client, "SELECT path FROM member_events")] == ["/benefits"]
    assert refused(app_client).get("before_issue") == 1


def test_tokens_with_a_long_lifetime_never_link(app_client):
    import base64

    import pytest

    from collector.privacy.tokens import MAX_TTL_S

    with pytest.raises(ValueError):
        token(ttl=MAX_TTL_S + 1)
    # a token signed by a backend that ignores the cap
    now = int(time.time())
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    claims = {"sub": "MEMBER-REF-777", "aud": "example.org", "pur": ["analytics_linking"], "iat": now - 10,
              "exp": now + 30 * 86400, "jti": "x"}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    sig = hmac.new(SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    long_lived = f"{header}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    send(app_client, "/claims", identity=long_lived)
    flush(app_client)
    assert rows(app_client, "SELECT count() AS n FROM member_events")[0]["n"] == 0
    assert refused(app_client).get("lifetime_too_long") == 1


def test_authenticated_prefixes_match_the_normalized_path(app_client):
    # the test site's prefix is /member/
    variants = ["/member", "/Member/claims", "//member/claims", "/./member/claims", "/member;x=1/claims",
                "/MEMBER/", "/%6Dember/claims", "/x/../member/claims", "/%252Fmember/claims"]
    for i, path in enumerate(variants):
        send(app_client, path, cid=f"abcdefg.Variant{i:04d}xyz")
    send(app_client, "/members-news", cid="abcdefg.Other0000xyz")  # a different page, not the prefix
    flush(app_client)
    anon = [r["path"] for r in rows(app_client, "SELECT path FROM events")]
    assert anon == ["/members-news"], anon
    assert rows(app_client, "SELECT count() AS n FROM member_events")[0]["n"] == len(variants)


def test_member_plane_keeps_only_coarse_quasi_identifiers(app_client):
    t = token()
    send(app_client, "/claims", identity=t, headers={"X-Forwarded-For": "2.125.160.216"})
    flush(app_client)
    (row,) = rows(app_client, "SELECT * FROM member_events")
    assert row["browser"] == "Chrome" and row["os"] == "Windows" and row["device"] == "desktop"
    assert row["country"] == "US"
    assert (row["browser_version"], row["os_version"], row["region"], row["city"], row["isp"], row["asn"]) == \
        ("", "", "", "", "", 0)
    assert row["ts"][11:].startswith("00:00:0"), row["ts"]  # the login's day plus seconds since the login


def test_signed_consent_calls_cannot_be_replayed_or_sent_late(app_client):
    body = json.dumps({"site": "example.org", "member_ref": "MEMBER-REF-777", "purpose": "analytics_linking",
                       "action": "grant", "policy_version": "1", "ts": time.time(), "nonce": secrets.token_hex(16)})
    sig = "sha256=" + hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Collector-Signature": sig}
    assert app_client.post("/api/consent", content=body, headers=headers).status_code == 202
    assert consent(app_client, "withdraw").status_code == 202
    replay = app_client.post("/api/consent", content=body, headers=headers)  # the grant again, after the withdrawal
    assert replay.status_code == 409
    t = token(now=time.time() - 5)
    send(app_client, "/claims", identity=t)
    flush(app_client)
    assert rows(app_client, "SELECT count() AS n FROM member_events")[0]["n"] == 0  # still withdrawn
    for stale in ({"ts": time.time() - 3600}, {"ts": "now"}, {}):
        doc = {"site": "example.org", "member_ref": "MEMBER-REF-777", "purpose": "analytics_linking",
               "action": "grant", "nonce": secrets.token_hex(16), **stale}
        raw = json.dumps(doc).encode()
        s = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        r = app_client.post("/api/consent", content=raw, headers={"Content-Type": "application/json",
                                                                  "X-Collector-Signature": s})
        assert r.status_code == 401, stale
    no_nonce = json.dumps({"site": "example.org", "member_ref": "M", "purpose": "p", "action": "grant",
                           "ts": time.time()}).encode()
    s2 = "sha256=" + hmac.new(SECRET.encode(), no_nonce, hashlib.sha256).hexdigest()
    assert app_client.post("/api/consent", content=no_nonce, headers={"Content-Type": "application/json",
                                                                      "X-Collector-Signature": s2}).status_code == 400

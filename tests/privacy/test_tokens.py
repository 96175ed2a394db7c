import base64
import json

import pytest

from collector.privacy.tokens import TokenRefused, mint, verify

S = "site-secret"


def test_valid_token_round_trip():
    t = mint(S, "example.org", "M-1", ["analytics_linking"], 600, now=1000)
    ident = verify(t, S, "example.org", now=1100)
    assert (ident.member_ref, ident.purposes, ident.issued_at, ident.expires_at) == ("M-1", ("analytics_linking",),
                                                                                      1000, 1600)


@pytest.mark.parametrize("token,secret,site,now,reason", [
    (mint("other", "example.org", "M", ["analytics_linking"], 60, now=0), S, "example.org", 10, "bad_signature"),
    (mint(S, "example.org", "M", ["analytics_linking"], 60, now=0), S, "example.org", 61, "expired"),
    (mint(S, "other.org", "M", ["analytics_linking"], 60, now=0), S, "example.org", 10, "wrong_site"),
    (mint(S, "example.org", "M", ["analytics_linking"], 60, now=1000), S, "example.org", 10, "not_yet_valid"),
    ("not-a-token", S, "example.org", 0, "malformed"),
    (mint(S, "example.org", "M", ["analytics_linking"], 60, now=0), "", "example.org", 10, "no_site_secret"),
])
def test_refusals(token, secret, site, now, reason):
    with pytest.raises(TokenRefused) as exc:
        verify(token, secret, site, now=now)
    assert exc.value.reason == reason


def test_tampered_claims_are_refused():
    t = mint(S, "example.org", "M-1", ["analytics_linking"], 600, now=1000)
    h, body, sig = t.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "M-2"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenRefused):
        verify(f"{h}.{forged}.{sig}", S, "example.org", now=1100)
    none_header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    with pytest.raises(TokenRefused):
        verify(f"{none_header}.{body}.", S, "example.org", now=1100)

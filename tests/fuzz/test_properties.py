"""Properties of the parsers that face the network: the request decoder (and the pipeline after it),
client address resolution, identity tokens, origins and the rate limiter. Any input either parses or
is refused with the typed error; nothing else ever escapes."""

from __future__ import annotations

import ipaddress
import json
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from collector.http.clientip import ClientIp
from collector.http.decode import LIMITS, decode_events, parse_json
from collector.errors import BadRequest, CollectorError, RateLimited
from collector.pipeline.origin import OriginPolicy, normalize, origin_of_url
from collector.http.ratelimit import RateLimiter
from collector.settings import Site
from collector.privacy.tokens import LINKING, TokenRefused, mint, verify
from tests.fuzz.budget import examples
from tests.fuzz.harness import Harness
from collector.testing import make_settings

FUZZ = settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=40))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
    st.text(max_size=10), inner, max_size=5), max_leaves=30)
keys = st.sampled_from(["n", "name", "u", "url", "d", "domain", "r", "p", "props", "m", "h", "e", "ts", "cid",
                        "identity", "search", "title", "auth", "link", "text", "screen", "i", "sd", "$", "v",
                        "device_id", "platform", "app_version", "device_model", "gpc", "country", "region", "zz"])
urls = st.one_of(
    st.text(max_size=60),
    st.builds(lambda s, h, p: f"{s}://{h}/{p}", st.sampled_from(["http", "https", "app", "HTTP"]),
              st.one_of(st.sampled_from(["example.org", "[::1]", "[", "]", "example.org:99999", "a@b", "ex%41.org",
                                          "ex\uff0fample.org", "exa\u2100mple.org", "xn--e1afmkfd"]),
                        st.text(max_size=15)),
              st.text(max_size=40)),
)
domains = st.one_of(st.sampled_from(["example.org", "localhost", "EXAMPLE.org", "example.org,localhost"]),
                    st.sampled_from(["example.org"]), st.text(max_size=20))


@st.composite
def events(draw):
    ev = draw(st.dictionaries(keys, json_value, max_size=8))
    if draw(st.integers(0, 3)):  # mostly events that get past the required fields into the pipeline
        ev.update({"n": draw(st.one_of(st.just("pageview"), st.text(max_size=20))), "d": draw(domains),
                   "u": draw(urls)})
    if draw(st.booleans()):
        ev["p"] = draw(st.dictionaries(st.text(max_size=70), json_leaf, max_size=35))
    return ev


@pytest.fixture(scope="module")
def harness(tmp_path_factory, geo_dbs):
    city, asn = geo_dbs
    return Harness(tmp_path_factory.mktemp("fuzz-props"), geoip_city_db=str(city), geoip_asn_db=str(asn))


@FUZZ
@given(body=st.binary(max_size=300), mode=st.integers(0, 2))
def test_any_bytes_are_decoded_or_refused(harness, body, mode):
    assert harness.request(body, mode) in (202, 400, 422)


@FUZZ
@given(doc=st.one_of(events(), st.lists(events(), max_size=4), json_value,
                     st.builds(lambda es, c: {"events": es, **c}, st.lists(events(), max_size=3),
                               st.dictionaries(keys, json_leaf, max_size=3))),
       mode=st.integers(0, 1), ip=st.sampled_from(["81.2.69.142", "2.125.160.1", "::1", "fe80::1%eth0", "", "x"]))
def test_structured_input_is_decoded_enriched_or_refused(harness, doc, mode, ip):
    body = json.dumps(doc).encode()
    assert harness.request(body, mode, ip=ip) in (202, 400, 422)


@FUZZ
@given(url=urls, ref=urls, link=urls, mode=st.integers(0, 2))
def test_any_url_is_enriched_or_refused(harness, url, ref, link, mode):
    doc = {"n": "pageview", "d": "example.org", "u": url, "r": ref, "link": link}
    if mode == 2:
        from urllib.parse import urlencode

        body = urlencode(doc).encode()
    else:
        body = json.dumps([doc] if mode else doc).encode()
    assert harness.request(body, mode) in (202, 400)


@FUZZ
@given(doc=events())
def test_decoded_events_respect_the_limits(harness, doc):
    try:
        (ev,) = decode_events(json.dumps(doc).encode(), harness.settings, batch=False)
    except BadRequest:
        return
    for key, limit in LIMITS.items():
        if key in ev:
            assert isinstance(ev[key], str) and len(ev[key]) <= limit
    assert ev["domain"] == ev["domain"].strip().lower() and "," not in ev["domain"]
    assert all(isinstance(k, str) and isinstance(v, str) and len(v) <= harness.settings.max_string_bytes
               for k, v in ev["props"].items())
    for key in ("ts", "engagement_ms"):
        if key in ev:
            assert isinstance(ev[key], int) and abs(ev[key]) <= 2**53


@FUZZ
@given(text=st.text(max_size=200))
def test_parse_json_agrees_with_the_standard_library_on_text(text):
    try:
        ours = parse_json(text.encode("utf-8", "surrogatepass"))
    except BadRequest:
        return
    # anything we accept is valid JSON with the same value; orjson reads an integer beyond 64 bits as the
    # nearest double (the decoder refuses it where an integer is meant: ts, engagement_ms)
    assert _same(json.loads(text), ours) or ours != ours


def _same(std, ours) -> bool:
    if isinstance(std, int) and not isinstance(std, bool) and abs(std) >= 2**64:
        return isinstance(ours, float) and ours == float(std)
    if isinstance(std, list):
        return isinstance(ours, list) and len(std) == len(ours) and all(map(_same, std, ours))
    if isinstance(std, dict):
        return isinstance(ours, dict) and std.keys() == ours.keys() and all(_same(std[k], ours[k]) for k in std)
    return std == ours and type(std) is type(ours) or (std == ours and {type(std), type(ours)} <= {int, float})


@FUZZ
@given(depth=st.integers(1, 3000), opener=st.sampled_from(["[", '{"a":']))
def test_any_nesting_depth_is_a_400(harness, depth, opener):
    closer = "]" if opener == "[" else "}"
    body = (opener * depth + "1" + closer * depth).encode()
    status = harness.request(body, 0)
    assert status == 400


ip_text = st.one_of(st.ip_addresses().map(str), st.text(max_size=30),
                    st.sampled_from(["[::1]:80", "1.2.3.4:5", "unknown", "::ffff:10.0.0.1", "fe80::1%eth0", " "]))


@FUZZ
@given(peer=ip_text, hops=st.lists(ip_text, max_size=20), trusted=st.sampled_from([(), ("127.0.0.0/8", "::1/128"),
                                                                                  ("10.0.0.0/8", "1.2.3.4/32")]))
def test_client_address_is_the_peer_or_a_forwarded_address(peer, hops, trusted):
    xff = ", ".join(hops)
    got = ClientIp(trusted).resolve(peer, xff)
    if not trusted:
        assert got == peer
    elif got != peer:
        ipaddress.ip_address(got)
        assert got in [h.strip().strip("[]").split("]")[0] for h in hops] or any(got in h for h in hops)


@FUZZ
@given(peer=st.ip_addresses(v=4).map(str), spoof=st.lists(st.ip_addresses().map(str), max_size=5))
def test_untrusted_peer_is_never_overridden(peer, spoof):
    assume(not peer.startswith("127."))
    assert ClientIp(("127.0.0.0/8",)).resolve(peer, ", ".join(spoof)) == peer


@FUZZ
@given(token=st.one_of(st.text(max_size=300), st.text(alphabet=string.ascii_letters + string.digits + "-_.",
                                                      max_size=300)))
def test_any_token_text_is_verified_or_refused(token):
    try:
        verify(token, "site-secret", "example.org")
    except TokenRefused as r:
        assert r.reason in ("malformed", "bad_signature", "wrong_site", "expired", "not_yet_valid")


@FUZZ
@given(ref=st.text(min_size=1, max_size=100), purposes=st.lists(st.text(max_size=20), max_size=3),
       pos=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_tokens_round_trip_and_any_change_is_refused(ref, purposes, pos, flip):
    token = mint("site-secret", "example.org", ref, [LINKING, *purposes], 600)
    ident = verify(token, "site-secret", "example.org")
    assert ident.member_ref == ref and LINKING in ident.purposes
    i = pos % len(token)
    changed = token[:i] + chr((ord(token[i]) + flip) % 128) + token[i + 1:]
    assume(changed != token)
    with pytest.raises(TokenRefused):
        got = verify(changed, "site-secret", "example.org")
        # base64 padding bits can absorb a change that decodes to the same bytes: same identity then
        if got == ident:
            raise TokenRefused("same")
    with pytest.raises(TokenRefused):
        verify(token, "other-secret", "example.org")


@FUZZ
@given(nested=st.integers(0, 2000))
def test_deeply_nested_token_claims_are_refused(nested):
    import base64

    part = base64.urlsafe_b64encode(b"[" * nested + b"]" * nested).rstrip(b"=").decode()
    with pytest.raises(TokenRefused):
        verify(f"{part}.{part}.x", "site-secret", "example.org")


@FUZZ
@given(origin=st.one_of(st.text(max_size=60), urls), domain=domains)
def test_origin_checks_never_raise(origin, domain):
    policy = OriginPolicy((Site("example.org", origins=("https://example.org", "https://*.example.org")),))
    assert policy.site_allows(domain, origin) in (True, False)
    assert policy.cors_allowed(origin) in (True, False)
    normalize(origin)
    got = origin_of_url(origin)
    assert got is None or got.split("://")[0].lower() in ("http", "https")


@FUZZ
@given(ips=st.lists(ip_text, max_size=50))
def test_rate_limiter_only_ever_refuses_with_429(ips):
    rl = RateLimiter(1.0, 2, 10.0, ("127.0.0.0/8",), max_clients=16)
    for ip in ips:
        try:
            rl.check(ip)
        except RateLimited as exc:
            assert exc.status == 429 and exc.retry_after >= 1
    assert len(rl.buckets) <= 16


def test_every_collector_error_is_a_4xx_or_a_503():
    import collector.errors as errors

    kinds = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, CollectorError)]
    statuses = {c.status for c in kinds if c is not errors.StorageError}
    statuses |= {errors.StorageError("x", kind).status for kind in (errors.PERMANENT, errors.TRANSIENT, errors.BUSY)}
    assert statuses <= {400, 401, 403, 408, 409, 413, 415, 422, 429, 503}
    assert make_settings  # the harness builds settings the same way the app does

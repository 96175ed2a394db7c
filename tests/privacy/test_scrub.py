"""No email, SSN, phone number or Luhn-valid card number survives scrubbing, in any stored text field."""

import re
import string

from hypothesis import HealthCheck, given, settings, strategies as st

from collector.privacy.scrub import Scrubber, luhn_ok

TEXT = st.text(alphabet=string.ascii_letters + " ,;:!?()[]'\"", max_size=30)


def luhn_complete(prefix: list[int]) -> str:
    for check in range(10):
        s = "".join(map(str, prefix + [check]))
        if luhn_ok(s):
            return s
    raise AssertionError


cards = st.lists(st.integers(0, 9), min_size=15, max_size=15).map(lambda d: luhn_complete([4] + d[1:]))
card_formats = st.tuples(cards, st.sampled_from(["", " ", "-"])).map(
    lambda t: t[1].join(t[0][i:i + 4] for i in range(0, 16, 4)))
ssns = st.tuples(st.integers(1, 899), st.integers(1, 99), st.integers(1, 9999)).flatmap(
    lambda t: st.sampled_from([f"{t[0]:03d}-{t[1]:02d}-{t[2]:04d}", f"{t[0]:03d} {t[1]:02d} {t[2]:04d}",
                               f"{t[0]:03d}{t[1]:02d}{t[2]:04d}"]))
phones = st.tuples(st.integers(201, 989), st.integers(200, 999), st.integers(0, 9999)).flatmap(
    lambda t: st.sampled_from([f"({t[0]}) {t[1]}-{t[2]:04d}", f"{t[0]}-{t[1]}-{t[2]:04d}",
                               f"{t[0]}.{t[1]}.{t[2]:04d}", f"+1 {t[0]} {t[1]} {t[2]:04d}",
                               f"1-{t[0]}-{t[1]}-{t[2]:04d}"]))
emails = st.emails().filter(lambda e: len(e) < 120)
pii = st.one_of(card_formats, ssns, phones, emails)


def survives(value: str, out: str) -> bool:
    if value in out:
        return True
    if "@" not in value:
        digits = re.sub(r"\D", "", value)
        return digits in re.sub(r"\D", "", out)
    return False


@settings(max_examples=300, deadline=None)
@given(TEXT, pii, TEXT)
def test_text_detectors(before, value, after):
    out = Scrubber().text(before + value + after, limit=1000)
    assert not survives(value, out), (value, out)


@settings(max_examples=200, deadline=None)
@given(pii, TEXT)
def test_path_segments(value, word):
    from urllib.parse import quote

    out = Scrubber().path(f"/claims/{quote(value)}/{quote(word)}")
    assert not survives(value, out), (value, out)


def test_typed_tokens_and_placeholders():
    s = Scrubber(member_id_patterns=(r"MBR\d{6,}",))
    assert s.text("mail jane.doe@example.com now") == "mail [email] now"
    assert s.text("ssn 123-45-6789") == "ssn [ssn]"
    assert s.text("card 4111 1111 1111 1111") == "card [card]"
    assert s.text("call (617) 555-0199") == "call [phone]"
    assert s.text("born 04/17/1961") == "born [date]"
    assert s.text("id MBR1234567 please") == "id [member_id] please"
    assert s.path("/members/123456/claims/0f8fad5b-d9cb-469f-a165-70867728950e/a1b2c3d4e5f60718") == \
        "/members/:id/claims/:uuid/:hex"
    assert s.path("/profile/jane%40example.com") == "/profile/:email"
    assert s.path("/plans/gold-ppo/compare") == "/plans/gold-ppo/compare"
    assert len(s.text("x" * 5000)) == 256


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=pii)
def test_no_pii_in_any_stored_field(tmp_path_factory, value):
    """Through the whole pipeline: PII placed in every free-text field is absent from the row."""
    from urllib.parse import quote

    import orjson

    from collector.pipeline import Event, build_pipeline
    from collector.privacy.consent import ConsentState
    from collector.privacy.keys import KeyStore
    from collector.testing import CHROME_UA, make_settings

    d = tmp_path_factory.mktemp("scrub")
    s = make_settings(d)
    pipe = build_pipeline(s, KeyStore(d / "keys"), ConsentState(d / "consent"))
    payload = {
        "name": "Search", "domain": "example.org",
        "url": f"https://example.org/find/{quote(value)}?q={quote(value)}&utm_term={quote(value)}&other={quote(value)}",
        "referrer": f"https://ref.example.net/{quote(value)}", "title": f"Results for {value}",
        "text": f"Contact {value}", "link": f"https://out.example.net/{quote(value)}?x={quote(value)}",
        "props": {"note": f"about {value}", value[:60]: "key"},
    }
    ev = pipe.apply(Event(site=s.sites[0], payload=payload, ip="81.2.69.1", user_agent=CHROME_UA, received_ms=0))
    stored = orjson.dumps(ev.row).decode()
    assert not survives(value, stored), (value, stored)

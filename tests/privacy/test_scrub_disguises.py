"""Disguised personal data does not survive scrubbing, real content does, and every detector runs in
linear time.

The corpora live next to this file: ``corpus/pii.txt`` (input, fragment that must not survive) and
``corpus/benign.txt`` (values that must come out unchanged). The property test builds disguises
from the same ingredients as the corpus: other separators, zero-width characters, fullwidth and
other-script digits, nested percent-encoding and character references.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings, strategies as st

from collector.privacy.scrub import ENCODED, Scrubber, luhn_ok, normalize

CORPUS = Path(__file__).parent / "corpus"


def _lines(name: str) -> list[str]:
    out = []
    for line in (CORPUS / name).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            out.append(line.encode("ascii", "backslashreplace").decode("unicode_escape"))
    return out


PII = [tuple(line.split("\t", 1)) for line in _lines("pii.txt")]
BENIGN = _lines("benign.txt")


@pytest.mark.parametrize("value,fragment", PII)
def test_corpus_of_disguises_is_scrubbed(value, fragment):
    s = Scrubber()
    for out in (s.text(value, 1000), s.text(value, 1000, form=True), s.path("/x/" + quote(value, safe=""))):
        assert fragment not in out and fragment not in (normalize(out) or ""), (value, out)


@pytest.mark.parametrize("value", BENIGN)
def test_corpus_of_real_content_survives(value):
    assert Scrubber().text(value, 1000) == normalize(value) == value


def test_typed_tokens_for_disguises():
    s = Scrubber()
    assert s.text("ssn 123_45_6789") == "ssn [ssn]"
    assert s.text("ssn 123 \u2013 45 \u2013 6789") == "ssn [ssn]"
    assert s.text("card 4111/1111/1111/1111") == "card [card]"
    assert s.text("call 617_555_0199") == "call [phone]"
    assert s.text("born 17 April 1961 in Boston") == "born [date] in Boston"
    assert s.text("write to jane%2540example.com") == "write to [email]"
    assert s.text("write to jane\uff20example.com") == "write to [email]"
    assert s.text("jane (at) example (dot) com") == "[email]"
    assert s.text("jane tag@example.com", form=True) == "[email]"  # jane+tag@…, form-decoded
    assert s.text("mail jane@example.com", form=False) == "mail [email]"
    assert s.text("%" + "25" * 40 + "40") == ENCODED  # nested deeper than anyone encodes by accident


def test_path_tokens_that_decode_to_pii():
    s = Scrubber()
    assert s.path("/u/amFuZS5kb2VAZXhhbXBsZS5jb20") == "/u/:token"  # base64url of an e-mail
    assert s.path("/u/MTIzLTQ1LTY3ODk=") == "/u/:token"  # base64 of an SSN
    assert s.path("/auth/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2ln") == "/auth/:token"
    assert s.path("/x/john-doe-at-example-com") == "/x/:email"
    assert s.path("/blog/SGVsbG9Xb3JsZA") == "/blog/SGVsbG9Xb3JsZA"  # base64 of "HelloWorld" stays
    assert s.path("/plans/gold-ppo/compare") == "/plans/gold-ppo/compare"


def test_hosts_keep_only_plain_labels():
    s = Scrubber()
    assert s.host("123-45-6789.john-doe-at-example-com.example.org", "example.org") == "*.*.example.org"
    assert s.host("shop.example.org", "example.org") == "shop.example.org"
    assert s.host("www.example.org", "example.org") == "www.example.org"
    assert s.host("81.2.69.142", "example.org") == "[ip]"
    assert s.host("jane-doe-at-gmail-com.blogspot.com") == "*.blogspot.com"
    assert s.host("eu-west-1.cdn.example.net") == "eu-west-1.cdn.example.net"


def test_numeric_segments_kept_when_the_site_asks_unless_they_read_as_pii():
    keep = Scrubber(member_id_patterns=(r"7\d{6}",), keep_numeric_segments=True)
    assert keep.path("/products/12345/reviews/1234567") == "/products/12345/reviews/1234567"
    assert keep.path("/p/123456789") == "/p/:id"  # an SSN's length
    assert keep.path("/p/6175550199") == "/p/:id"  # a phone number's length
    assert keep.path("/p/4111111111111111") == "/p/:id"  # Luhn-valid card
    assert keep.path("/p/19610417") == "/p/:id"  # a compact date
    assert keep.path("/p/7123456") == "/p/:member_id"
    assert Scrubber().path("/products/12345") == "/products/:id"


# --- property test: disguised PII ---------------------------------------------------------------

def _luhn_complete(prefix: list[int]) -> str:
    return next(s for s in ("".join(map(str, prefix + [c])) for c in range(10)) if luhn_ok(s))


SEPS = st.sampled_from(["-", "_", "/", "\u2013", "\u2014", " - ", " ", ".", "\u2212"])
ssn_groups = st.tuples(st.integers(1, 899), st.integers(1, 99), st.integers(1, 9999)).map(
    lambda t: [f"{t[0]:03d}", f"{t[1]:02d}", f"{t[2]:04d}"])
card_groups = st.lists(st.integers(0, 9), min_size=15, max_size=15).map(
    lambda d: _luhn_complete([4] + d[1:])).map(lambda c: [c[i:i + 4] for i in range(0, 16, 4)])
phone_groups = st.tuples(st.integers(201, 989), st.integers(200, 999), st.integers(0, 9999)).map(
    lambda t: [str(t[0]), str(t[1]), f"{t[2]:04d}"])
numbers = st.tuples(st.one_of(ssn_groups, card_groups, phone_groups), SEPS).map(lambda t: t[1].join(t[0]))
emails = st.tuples(st.from_regex(r"[a-z][a-z0-9._+]{2,20}[a-z0-9]", fullmatch=True),
                   st.from_regex(r"[a-z][a-z0-9-]{1,15}\.(com|org|net|co\.uk)", fullmatch=True)).map(
    lambda t: f"{t[0]}@{t[1]}")
FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "0123456789@"}


def _zero_width(v: str) -> str:
    return "\u200b".join(v)


def _fullwidth(v: str) -> str:
    return "".join(FULLWIDTH.get(c, c) for c in v)


def _encode(v: str, times: int) -> str:
    for _ in range(times):
        v = quote(v, safe="")
    return v


disguise = st.sampled_from(["plain", "zero-width", "fullwidth", "encoded-1", "encoded-2", "encoded-3", "entity"])
TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ,;:!?()'", max_size=20)


def _apply(kind: str, v: str) -> str:
    if kind == "zero-width":
        return _zero_width(v)
    if kind == "fullwidth":
        return _fullwidth(v)
    if kind.startswith("encoded"):
        return _encode(v, int(kind[-1]))
    if kind == "entity":
        return v.replace("@", "&#64;").replace("-", "&#45;")
    return v


def _leaks(value: str, out: str) -> bool:
    if "@" in value:
        local = value.split("@")[0]
        return len(local) >= 4 and local in out
    digits = re.sub(r"\D", "", value)
    return digits[-4:] in re.sub(r"\D", "", out) if len(digits) >= 9 else False


@settings(max_examples=400, deadline=None)
@given(TEXT, st.one_of(numbers, emails), disguise, TEXT)
def test_disguised_pii_never_survives(before, value, kind, after):
    s = Scrubber()
    raw = before + " " + _apply(kind, value) + " " + after
    out = s.text(raw, 1000)
    assert not _leaks(value, normalize(out) or out), (raw, out)
    assert not _leaks(value, s.path("/a/" + _apply(kind, value) + "/b")), raw


# --- linear time --------------------------------------------------------------------------------

ADVERSARIAL = {
    "local-part run": lambda n: "a" * n + "@",
    "dotted local part": lambda n: "a." * (n // 2) + "@",
    "domain without dot": lambda n: "@" + "a" * n,
    "at pairs": lambda n: "a@" * (n // 2),
    "at and dots": lambda n: "a@b." * (n // 4),
    "spaced digits": lambda n: "1 " * (n // 2),
    "dashed digits": lambda n: "1 - " * (n // 4),
    "parenthesised digits": lambda n: "(1)" * (n // 3),
    "nested percent": lambda n: "%" + "25" * (n // 2) + "40",
    "repeated percent": lambda n: "%25" * (n // 3) + "40",
    "many escapes": lambda n: "%2540" * (n // 5),
    "word at": lambda n: "x at " * (n // 5) + "dot",
    "bracket at": lambda n: "a(at)" * (n // 5) + "dot",
    "base64 run": lambda n: "QUJD" * (n // 4),
    "base64 words": lambda n: "QUJDREVGR0hJSktM " * (n // 17),
    "jwt prefix": lambda n: "eyJ" * (n // 3),
    "month words": lambda n: "Jan 1 " * (n // 6),
    "zero-width": lambda n: "a\u200b" * (n // 2) + "@b.com",
    "fullwidth": lambda n: "\uff41" * n + "\uff20b.com",
    "form plus": lambda n: "a " * (n // 2) + "@",
    "whitespace": lambda n: " " * n + "@x",
}


def _best(fn, value: str, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(value)
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.mark.parametrize("family", sorted(ADVERSARIAL))
def test_scrub_time_grows_linearly(family):
    """Scrubbing 8x the input takes well under 16x the time (quadratic would be 64x)."""
    s = Scrubber(member_id_patterns=(r"\bMBR\d{6,}\b",))
    make = ADVERSARIAL[family]
    small, large = make(4000), make(32000)
    for fn in (lambda v: s.text(v, 10**6, form=True), lambda v: s.path("/" + v)):
        base = max(_best(fn, small), 20e-6)  # a floor keeps timer noise on tiny runs out of the ratio
        ratio = _best(fn, large) / base
        assert ratio < 16, (family, ratio)

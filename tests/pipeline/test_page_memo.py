"""The page memory (``collector.pipeline.page``): rows are the same with and without it, repeated pages
are answered from it, and it holds nothing but keyed hashes and the scrubbed values that are stored."""

from __future__ import annotations

import random
from urllib.parse import quote

import pytest

from collector.http.decode import normalize
from collector.pipeline import Dropped, Event, build_pipeline
from collector.pipeline.page import FIELDS, PageMemo
from collector.privacy.consent import ConsentState
from collector.privacy.keys import KeyStore
from collector.settings import Site
from collector.testing import SECRET, make_settings
from loadtests import traffic
from tests.privacy.test_scrub_disguises import PII

SITES = (Site(traffic.SITE, secret=SECRET, member_id_patterns=(r"\bMBR\d{6,}\b",), auth_prefixes=("/member/",)),
         Site("shop.example", secret="shop-secret", keep_numeric_segments=True, search_params=("k",)))


def payloads() -> list[tuple[dict, str, str]]:
    """The benchmark's realistic mix, plus pages, queries and referrers carrying disguised personal data,
    for both sites, each twice (the second time from the memory)."""
    return ([(p, ua, ip) for p, ua, ip in traffic.Mix(seed=5).events(600)] + pii_payloads()) * 2


def pii_payloads() -> list[tuple[dict, str, str]]:
    """Three events per entry of the PII corpus, in its order."""
    rnd = random.Random(9)
    out = []
    for value, _ in PII:
        q = quote(value, safe="")
        for raw in ({"n": "pageview", "u": f"https://{traffic.SITE}/p/{q}?utm_source={q}&q={q}&email={q}",
                     "r": f"https://{q[:40]}.example.net/x?{q}"},
                    {"n": "click", "u": f"https://{traffic.SITE}/member/{q}#/{q}", "h": True, "r": f"https://{traffic.SITE}/"},
                    {"n": "pageview", "u": f"https://shop.example/item/123456?k={q}&ref={q}", "d": "shop.example"}):
            raw.setdefault("d", traffic.SITE)
            out.append((raw, "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                        f"81.2.69.{rnd.randint(1, 250)}"))
    return out


@pytest.fixture
def env(tmp_path):
    s = make_settings(tmp_path / "data", sites=SITES)
    keys = KeyStore(tmp_path / "keys")
    keys.maintain()
    return s, keys, ConsentState(tmp_path / "consent")


def rows(pipe, s, events) -> list[dict | str]:
    out: list[dict | str] = []
    for raw, ua, ip in events:
        payload = normalize(dict(raw), s)
        ev = Event(site=s.site(payload["domain"]), payload=payload, ip=ip, user_agent=ua, received_ms=1_760_000_000_000)
        try:
            ev = pipe.apply(ev)
        except Dropped as d:
            out.append(d.reason)
            continue
        out.append({k: v for k, v in ev.row.items() if k != "event_id"} | {"_table": ev.table, "_hit": ev.page is not None})
    return out


def test_rows_are_the_same_with_and_without_the_memory_and_repeats_come_from_it(env):
    s, keys, consent = env
    events = payloads()
    remembered = build_pipeline(s, keys, consent)
    plain = build_pipeline(s, keys, consent)
    plain.step("url").pages = plain.step("scrub").pages = None
    a, b = rows(remembered, s, events), rows(plain, s, events)
    hits = [r["_hit"] for r in a if isinstance(r, dict)]
    for r in a + b:
        if isinstance(r, dict):
            r.pop("_hit")
    assert a == b
    half = len(events) // 2
    assert a[:half] == a[half:]
    second = [r["_hit"] for r in rows(remembered, s, events[half:]) if isinstance(r, dict)]
    assert all(second)  # every page seen before is answered from the memory
    assert 0.2 < sum(hits) / len(hits) < 1  # the first pass both missed and hit


def test_the_memory_holds_only_keyed_hashes_and_scrubbed_values(env):
    s, keys, consent = env
    pipe = build_pipeline(s, keys, consent)
    events = payloads()
    stored = rows(pipe, s, events)
    memo = pipe.step("url").pages
    assert memo is pipe.step("scrub").pages
    held = [(k, v) for _, table in memo._by_site.values() for k, v in table.items()]
    assert held
    values = {x for r in stored if isinstance(r, dict) for f in FIELDS for x in [r.get(f)]}
    for key, value in held:
        assert isinstance(key, bytes) and len(key) == 16
        assert set(value) <= values  # each remembered value is one a stored row holds
    text = repr(held)
    for raw, _, _ in events:
        assert raw["u"] not in text and quote(raw["u"], safe="") not in text


def test_disguised_personal_data_is_remembered_only_as_the_database_holds_it(env):
    s, keys, consent = env
    pipe = build_pipeline(s, keys, consent)
    corpus = pii_payloads()
    for i in range(0, len(corpus), 3):
        value, fragment = PII[i // 3]
        memo = PageMemo()
        pipe.step("url").pages = pipe.step("scrub").pages = memo
        stored = repr(rows(pipe, s, corpus[i:i + 3]))
        held = repr([v for _, table in memo._by_site.values() for v in table.values()])
        assert held != "[]"
        assert fragment not in held or fragment in stored, (value, held)
        assert value not in held or value in stored, (value, held)

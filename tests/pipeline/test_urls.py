"""``collector.pipeline.urls``: the same answers as ``urlsplit`` and ``parse_qsl``, and no raw URL kept."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings, strategies as st

from collector.http.decode import decode_events
from collector.pipeline import Event, build_pipeline
from collector.pipeline.urls import query_pairs, split
from collector.privacy.consent import ConsentState
from collector.privacy.keys import KeyStore

uncached = urlsplit.__wrapped__

CORPUS = [
    "https://example.org/", "https://example.org", "http://example.org/a/b?x=1#frag", "https://EXAMPLE.org:8443/p",
    "https://user:pw@example.org:80/p?q", "HTTPS://example.org/p", "https://example.org?x=1", "https://example.org#/a?b",
    "https://example.org/p?#", "https://[::1]:8080/p", "https://ex ample.org/", "https://example.org/\tp",
    " https://example.org/p", "https://exämple.org/p", "https:example.org", "https:///p", "//example.org/p",
    "/relative?x=1", "", "mailto:jane@example.org", "https://example.org/p?a=1&a=2&b=&=c&d", "https://a.b/%41?x=%20",
    "https://example.org/p;params?x", "https://example.org:notaport/", "http://[::1/p", "app://example.org/screen",
    "https://example.org/a#b#c", "https://example.org/a?b?c#d", "ftp://files.example.org/x",
]


def assert_splits_like_urlsplit(url: str) -> None:
    try:
        want = uncached(url)
    except ValueError:
        with pytest.raises(ValueError):
            split(url)
        return
    got = split(url)
    assert got == want and type(got) is type(want)
    assert got.hostname == want.hostname and got.path == want.path


@pytest.mark.parametrize("url", CORPUS)
def test_split_answers_like_urlsplit(url):
    assert_splits_like_urlsplit(url)


url_chars = st.sampled_from(list("abcAZ09-._~:/?#[]@!$&'()*+,;=% \t\n") + ["é", "\x00", "\x7f", "ｅ"])


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(["https://", "http://", "HTTP://", "", "//", "https:"]), st.text(url_chars, max_size=40))
def test_split_matches_urlsplit_on_generated_urls(prefix, rest):
    assert_splits_like_urlsplit(prefix + rest)


@settings(max_examples=1500, deadline=None)
@given(st.text(st.sampled_from(list("ab=&+%2 0;é")), max_size=30))
def test_query_pairs_answer_like_parse_qsl(query):
    assert query_pairs(query) == dict(parse_qsl(query, keep_blank_values=False))


def test_no_raw_url_stays_in_the_standard_librarys_cache(settings, tmp_path):
    keys = KeyStore(tmp_path / "keys")
    keys.maintain()
    pipe = build_pipeline(settings, keys, ConsentState(tmp_path / "consent.jsonl"))
    body = (b'{"n":"click","u":"https://example.org/claims?email=jane.doe@example.com","d":"example.org",'
            b'"r":"https://mail.example.com/?to=jane.doe@example.com","link":"https://partner.example.com/x?e=jane"}')
    urlsplit.cache_clear()
    payloads = decode_events(body, settings, False)
    out = pipe.run([Event(site=settings.site("example.org"), payload=payloads[0], ip="81.2.69.142",
                          user_agent="Mozilla/5.0", received_ms=0)])
    assert out.events and out.events[0].row["path"] == "/claims"
    assert urlsplit.cache_info().currsize == 0

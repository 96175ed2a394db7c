"""Through the product's pipeline: every free-text field of a stored row is scrubbed or drawn from a
closed set, hosts are checked against the site, links keep a non-default port, and a site can keep
numeric path segments."""

from __future__ import annotations

import orjson
import pytest

from collector.pipeline import Event, build_pipeline
from collector.privacy.consent import ConsentState
from collector.privacy.keys import KeyStore
from collector.settings import Site
from collector.testing import CHROME_UA, SECRET, make_settings

SSN = "123-45-6789"


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    d = tmp_path_factory.mktemp("fields")
    sites = (Site("example.org", secret=SECRET, member_id_patterns=(r"\bMBR\d{6,}\b",)),
             Site("shop.example", secret="shop-secret", keep_numeric_segments=True))
    s = make_settings(d, sites=sites)
    return s, build_pipeline(s, KeyStore(d / "keys"), ConsentState(d / "consent"))


def run(pipe, payload, ua=CHROME_UA, site=0):
    s, p = pipe
    payload = {"name": "pageview", "domain": s.sites[site].domain, "url": "https://example.org/", **payload}
    return p.apply(Event(site=s.sites[site], payload=payload, ip="81.2.69.1", user_agent=ua, received_ms=0)).row


def test_page_host_is_checked_against_the_site(pipe):
    row = run(pipe, {"url": f"https://{SSN}.john-doe-at-example-com.example.org/plans"})
    assert row["host"] == "*.*.example.org"
    assert run(pipe, {"url": "https://www.example.org/"})["host"] == "www.example.org"
    assert run(pipe, {"url": "https://81.2.69.142/"})["host"] == "[ip]"


def test_referring_host_keeps_no_pii_in_sub_domains(pipe):
    row = run(pipe, {"referrer": f"https://{SSN}.jane-doe-at-gmail-com.blogspot.com/post"})
    assert row["referrer_host"] == "*.*.blogspot.com" and row["referrer_source"] == "*.*.blogspot.com"
    assert run(pipe, {"referrer": "https://www.google.com/"})["referrer_source"] == "Google"


def test_event_name_and_app_fields(pipe):
    row = run(pipe, {"name": f"Signup {SSN} jane@example.com", "platform": "JaneDoe", "app_version": SSN,
                     "device_model": "Jane's iPhone"})
    assert row["name"] == "Signup [ssn] [email]"
    assert (row["platform"], row["app_version"], row["device_model"]) == ("other", "", "")
    row = run(pipe, {"platform": "Android", "app_version": "2.14.0-beta+7", "device_model": "Pixel 8"},
              ua="Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UD1A.230803.041)")
    assert (row["platform"], row["app_version"], row["device_model"]) == ("android", "2.14.0", "Pixel 8")
    assert (row["browser"], row["os"], row["device"]) == ("Dalvik", "Android", "mobile")
    row = run(pipe, {"platform": "android", "device_model": "SM-X700"}, ua="okhttp/4.12.0")
    assert (row["browser"], row["device"]) == ("OkHttp", "tablet")


def test_app_user_agent_cannot_inject_a_browser_name(pipe):
    row = run(pipe, {"platform": "ios"}, ua="JaneDoeSSN123456789/1.0 CFNetwork/1410.0.3 Darwin/22.6.0")
    assert row["browser"] == "CFNetwork" and "JaneDoe" not in orjson.dumps(row).decode()
    row = run(pipe, {"platform": "ios"}, ua="Mozilla/5.0 (compatible; JaneDoeSSN123456789/1.0)")
    assert (row["browser"], row["os"]) == ("Other", "Other")


def test_link_urls_keep_a_non_default_port_and_scrub_every_part(pipe):
    row = run(pipe, {"name": "Outbound Link: Click", "link": "https://tools.example.net:8443/u/123456?x=1#f"})
    assert row["link_url"] == "https://tools.example.net:8443/u/:id"
    row = run(pipe, {"name": "Outbound Link: Click", "link": "https://tools.example.net:443/a"})
    assert row["link_url"] == "https://tools.example.net/a"
    row = run(pipe, {"name": "Outbound Link: Click", "link": "https://jane-doe-at-gmail-com.example.net/a"})
    assert row["link_url"] == "https://*.example.net/a"


def test_urls_and_paths_copied_into_props_are_scrubbed_as_links(pipe):
    row = run(pipe, {"name": "Share", "props": {"url": "https://example.org/members/123456/jane%40example.com?t=1",
                                                "page": "/claims/MBR1234567/view", "note": f"ssn {SSN}"}})
    assert row["props"] == {"url": "https://example.org/members/:id/:email", "page": "/claims/:member_id/view",
                            "note": "ssn [ssn]"}


def test_query_values_read_plus_as_part_of_an_address(pipe):
    row = run(pipe, {"url": "https://example.org/search?q=jane+tag%40example.com&utm_term=a%2540b.com"})
    assert row["search_term"] == "[email]"
    assert "jane" not in row["query"] and "tag" not in row["query"]


def test_numeric_segments_per_site(pipe):
    assert run(pipe, {"url": "https://example.org/products/12345"})["path"] == "/products/:id"
    row = run(pipe, {"url": "https://shop.example/products/12345/123456789"}, site=1)
    assert row["path"] == "/products/12345/:id"


def test_settings_file_reads_keep_numeric_segments(tmp_path):
    from collector.settings import ConfigError, load

    cfg = tmp_path / "c.toml"
    cfg.write_text('[sites."shop.example"]\nkeep_numeric_segments = true\n')
    assert load({"COLLECTOR_CONFIG": str(cfg)}).site("shop.example").keep_numeric_segments is True
    cfg.write_text('[sites."shop.example"]\nkeep_numeric_segments = "yes"\n')
    with pytest.raises(ConfigError):
        load({"COLLECTOR_CONFIG": str(cfg)})

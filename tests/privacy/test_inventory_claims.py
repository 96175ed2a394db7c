"""The inventory calls a column "identifies: no" only with its reason, and every free-text column the
pipeline fills from the client is marked scrubbed (or drawn from a closed set)."""

from collector.privacy.inventory import CLOSED, COLUMNS, SCRUBBED

REASONS = ("no (scrubbed)", "no (closed set)", "no (server-set", "no (aggregate)", "no (number)",
           "no (signed by the site)")
CLIENT_TEXT = ("name", "host", "path", "query", "title", "referrer_host", "referrer_source", "utm_source",
               "utm_medium", "utm_campaign", "utm_term", "utm_content", "search_term", "link_url", "click_text",
               "props", "app_version", "device_model")
CLIENT_CHOICES = ("browser", "os", "device", "platform", "country", "region")


def test_every_no_has_a_reason():
    bare = {c: v[2] for c, v in COLUMNS.items() if v[2].startswith("no") and not v[2].startswith(REASONS)}
    assert bare == {}


def test_client_text_is_scrubbed_and_client_choices_closed():
    assert {c: COLUMNS[c][2] for c in CLIENT_TEXT if COLUMNS[c][2] != SCRUBBED} == {}
    assert {c: COLUMNS[c][2] for c in CLIENT_CHOICES if COLUMNS[c][2] != CLOSED} == {}

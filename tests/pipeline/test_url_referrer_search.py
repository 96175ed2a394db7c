from collector.settings import Site
from collector.pipeline.bots import is_bot
from collector.pipeline.event import Event
from collector.pipeline.referrer import ReferrerStep, source_for
from collector.pipeline.sitesearch import SiteSearchStep
from collector.pipeline.url import UrlStep
from collector.pipeline.utm import UtmStep

SITE = Site("example.org", search_params=("q", "s"))


def run(payload, *steps):
    ev = Event(site=SITE, payload={"url": "", **payload}, ip="", user_agent="", received_ms=0)
    ev.row = {"name": "pageview", "props": {}}
    for s in steps:
        ev = s(ev)
    return ev


def test_url_drops_fragment_and_keeps_hash_route_when_asked():
    ev = run({"url": "https://Example.org/a/b?x=1#frag"}, UrlStep())
    assert (ev.row["host"], ev.row["path"], ev.query) == ("example.org", "/a/b", {"x": "1"})
    ev = run({"url": "https://example.org/app#/settings/profile?tab=1", "hash": True}, UrlStep())
    assert ev.row["path"] == "/settings/profile"


def test_referrer_host_only_and_named_sources():
    ev = run({"url": "https://example.org/", "referrer": "https://www.google.co.uk/search?q=my+diagnosis"},
             UrlStep(), ReferrerStep())
    assert (ev.row["referrer_host"], ev.row["referrer_source"]) == ("google.co.uk", "Google")
    ev = run({"url": "https://example.org/x", "referrer": "https://example.org/y"}, UrlStep(), ReferrerStep())
    assert ev.row["referrer_host"] == ""
    assert source_for("news.ycombinator.com") == "Hacker News"
    assert source_for("blog.example.net") == "blog.example.net"


def test_utm_and_site_search_from_configured_params():
    ev = run({"url": "https://example.org/search?s=Flu+Shots&utm_source=nl&utm_medium=email"},
             UrlStep(), ReferrerStep(), UtmStep(), SiteSearchStep())
    assert ev.row["search_term"] == "flu shots"
    assert (ev.row["utm_source"], ev.row["utm_medium"], ev.row["utm_campaign"]) == ("nl", "email", "")
    ev = run({"url": "https://example.org/x?query=ignored", "search": "Dental  Plans"}, UrlStep(), SiteSearchStep())
    assert ev.row["search_term"] == "dental plans"
    ev = run({"url": "https://example.org/x?query=not-configured"}, UrlStep(), SiteSearchStep())
    assert ev.row["search_term"] == ""


def test_other_events_on_a_search_page_do_not_repeat_the_term():
    ev = Event(site=SITE, payload={"url": "https://example.org/search?q=flu"}, ip="", user_agent="", received_ms=0)
    ev.row = {"name": "engagement", "props": {}}
    assert SiteSearchStep()(UrlStep()(ev)).row["search_term"] == ""


def test_bot_user_agents():
    assert is_bot("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    assert is_bot("curl/8.4.0") and is_bot("")
    assert is_bot("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0")
    assert not is_bot("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36")

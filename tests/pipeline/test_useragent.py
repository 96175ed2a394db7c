import pytest

from collector.pipeline.useragent import UserAgentParser
from collector.testing import CHROME_UA, IPHONE_UA

IPAD = ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 "
        "Mobile/15E148 Safari/604.1")
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36")


@pytest.mark.parametrize("ua,expected", [
    (CHROME_UA, ("Chrome", "124", "Windows", "10", "desktop")),
    (IPHONE_UA, ("Mobile Safari", "17", "iOS", "17", "mobile")),
    (IPAD, ("Mobile Safari", "16", "iOS", "16", "tablet")),
    (FIREFOX_LINUX, ("Firefox", "125", "Linux", "", "desktop")),
    (ANDROID_TABLET, ("Chrome", "120", "Android", "13", "tablet")),
])
def test_families_major_versions_and_device_class(ua, expected):
    assert tuple(UserAgentParser().parse(ua)) == expected


def test_results_are_cached():
    p = UserAgentParser(cache_size=10)
    p.parse(CHROME_UA)
    p.parse(CHROME_UA)
    assert p.parse.cache_info().hits == 1

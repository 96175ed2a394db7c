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


DALVIK = "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UD1A.230803.041)"
DALVIK_TABLET = "Dalvik/2.1.0 (Linux; U; Android 13; SM-X700 Build/TP1A.220624.014)"
ANDROID_WEBVIEW = ("Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UD1A.230803.041; wv) AppleWebKit/537.36 "
                   "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36")
IOS_WEBVIEW = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Mobile/15E148")
IPAD_WEBVIEW = IOS_WEBVIEW.replace("iPhone; CPU iPhone OS", "iPad; CPU OS")


@pytest.mark.parametrize("ua,expected", [
    (DALVIK, ("Dalvik", "2", "Android", "14", "mobile")),
    (DALVIK_TABLET, ("Dalvik", "2", "Android", "13", "tablet")),
    ("okhttp/4.12.0", ("OkHttp", "4", "Android", "", "mobile")),
    (ANDROID_WEBVIEW, ("Android WebView", "124", "Android", "14", "mobile")),
    (IOS_WEBVIEW, ("iOS WebView", "", "iOS", "17", "mobile")),
    (IPAD_WEBVIEW, ("iOS WebView", "", "iOS", "17", "tablet")),
    ("MyApp/1.0 CFNetwork/1410.0.3 Darwin/22.6.0", ("CFNetwork", "1410", "iOS", "16", "mobile")),
    ("MyApp/2.3 (iPad; iOS 17.4; Scale/2.00)", ("AFNetworking", "", "iOS", "17", "tablet")),
])
def test_app_clients_and_web_views(ua, expected):
    assert tuple(UserAgentParser().parse(ua)) == expected


@pytest.mark.parametrize("ua", [
    "JaneDoeSSN123456789/1.0 CFNetwork/1410.0.3 Darwin/22.6.0",
    "Mozilla/5.0 (compatible; JaneDoeSSN123456789/1.0)",
    "JaneDoeSSN123456789/1.0 (JaneDoe OS 4; x)",
    "Mozilla/5.0 (JaneDoeOS 123456789; Mobile) JaneDoeBrowser/99.0",
])
def test_browser_and_os_names_come_from_closed_sets(ua):
    from collector.pipeline.useragent import BROWSERS, OSES

    a = UserAgentParser().parse(ua)
    assert a.browser in BROWSERS and a.os in OSES
    assert "JaneDoe" not in "".join(a) and "123456789" not in "".join(a)
    assert a.browser_version.isdigit() or a.browser_version == ""

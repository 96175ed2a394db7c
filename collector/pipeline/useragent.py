"""Browser family and major version, OS family and major version, and device class from the User-Agent.

The parse is ua-parser 1.0 (the Rust matcher when ``ua-parser-rs`` is installed) wrapped in a cache:
composed by wrapping, as ua-parser's own ``CachingResolver`` is. Only the derived fields are kept.

Browser and OS names come from closed sets (``BROWSERS``, ``OSES``): ua-parser copies some names out
of the User-Agent itself (an iOS app ``JaneDoe/1.0 CFNetwork/…`` is "browser" ``JaneDoe``), so any
name outside the sets is stored as ``Other``, and versions are digits only. App traffic is named by
its HTTP client or web view (``Dalvik``, ``OkHttp``, ``CFNetwork``, ``Android WebView``, ``iOS
WebView``, …) and its device class comes from the device model (in the User-Agent or the app's
``device_model``), not from browser conventions: an Android app without "Mobile" is a phone unless
its model is a tablet.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import ua_parser
from ua_parser import Domain

from collector.pipeline.event import Event

BROWSERS = frozenset((
    "Chrome", "Chrome Mobile", "Chrome Mobile iOS", "Chromium", "Firefox", "Firefox Mobile", "Firefox iOS",
    "Firefox Focus", "Safari", "Mobile Safari", "Edge", "Edge Mobile", "Opera", "Opera Mobile", "Opera Mini",
    "Opera Touch", "Samsung Internet", "UC Browser", "Yandex Browser", "Vivaldi", "Brave", "DuckDuckGo Mobile",
    "Amazon Silk", "IE", "IE Mobile", "QQ Browser", "QQ Browser Mobile", "MiuiBrowser", "Huawei Browser",
    "Whale", "Coc Coc", "Puffin", "Pale Moon", "Waterfox", "SeaMonkey", "Konqueror", "Epiphany", "Electron",
    "Android", "Facebook", "Instagram", "Pinterest", "Snapchat", "WeChat", "LINE", "Twitter", "Google",
    "LinkedIn", "Chrome Mobile WebView",
    # app clients and web views (named by this module, not by ua-parser)
    "Android WebView", "iOS WebView", "Dalvik", "OkHttp", "CFNetwork", "AFNetworking", "Alamofire", "Dart",
    "Ktor", "Cronet", "Expo",
    "Other",
))
OSES = frozenset((
    "Windows", "Mac OS X", "iOS", "iPadOS", "Android", "Linux", "Ubuntu", "Fedora", "Debian", "Red Hat",
    "openSUSE", "Arch Linux", "Mint", "Chrome OS", "Windows Phone", "BlackBerry OS", "KaiOS", "Tizen",
    "HarmonyOS", "FreeBSD", "OpenBSD", "NetBSD", "Firefox OS", "Symbian OS", "webOS", "Sailfish", "watchOS",
    "tvOS", "visionOS", "Fire OS", "Other",
))
_RENAME = {"Mobile Safari UI/WKWebView": "iOS WebView", "Chrome Mobile WebView": "Android WebView"}
_VERSION = re.compile(r"\d{1,6}")

_TABLET = re.compile(r"ipad|tablet|kindle|silk|playbook|nexus (7|9|10)|sm-t\d|android(?!.*mobile)", re.I)
_MOBILE = re.compile(r"mobi|iphone|ipod|android.*mobile|windows phone|blackberry|opera mini", re.I)
# Case-sensitive twins for lowercased ASCII input: same matches, several times faster than re.I.
_TABLET_LOWER = re.compile(_TABLET.pattern)
_MOBILE_LOWER = re.compile(_MOBILE.pattern)
# tablets by model name: iPads, Galaxy Tab (SM-T, SM-X, SM-P), Pixel Tablet, Nexus 7/9/10, Fire (KF…),
# Lenovo Tab (TB-…), Huawei MatePad/MediaPad, Xiaomi/Redmi/OnePlus Pad, Surface
_TABLET_MODEL = re.compile(
    r"ipad|tablet|\btab\b|galaxy tab|sm-[tpx]\d|pixel (?:c|tablet)|nexus (?:7|9|10)\b|\bkf[a-z]{2,6}\b|"
    r"\btb-?\d|lenovo tb|mediapad|matepad|\bpad\b|surface|kindle|silk", re.I)
_DESKTOP_PLATFORMS = ("macos", "windows", "linux", "chromeos")

# app HTTP clients, by the User-Agent's first product token (lowercased)
_CLIENTS = {"dalvik": "Dalvik", "okhttp": "OkHttp", "alamofire": "Alamofire", "dart": "Dart",
            "ktor-client": "Ktor", "cronet": "Cronet", "expo": "Expo", "afnetworking": "AFNetworking"}
_PRODUCT = re.compile(r"([A-Za-z][\w.-]{0,40})/(\d{1,6})")
_CFNETWORK = re.compile(r"\bCFNetwork/(\d{1,6})")
_AFN = re.compile(r"\((?:iPhone|iPad|iPod)[^;)]{0,40}; iOS (\d{1,3})[\d.]{0,12}; Scale/")
_ANDROID_MODEL = re.compile(r"Android [\d.]{1,12}; (?:[a-z]{2}[-_][a-z]{2}; )?([^;)]{1,64}?)(?: Build/|\)|;)", re.I)


def device_class(ua: str) -> str:
    if ua.isascii():
        text, tablet, mobile = ua.lower(), _TABLET_LOWER, _MOBILE_LOWER
    else:
        text, tablet, mobile = ua, _TABLET, _MOBILE
    if tablet.search(text):
        return "tablet"
    if mobile.search(text):
        return "mobile"
    return "desktop"


def model_class(model: str) -> str:
    """tablet or mobile, for an app's device model."""
    return "tablet" if _TABLET_MODEL.search(model) else "mobile"


class Agent(NamedTuple):
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str


def _resolver():
    # ua_parser.regex is the Rust matcher from ua-parser-rs; the pure-Python one is ~40x slower.
    return ua_parser.BestAvailableResolver(ua_parser.load_builtins())


def _version(v: str | None) -> str:
    return v if v and _VERSION.fullmatch(v) else ""


class UserAgentParser:
    def __init__(self, cache_size: int = 20000):
        resolver = _resolver()
        self._resolve = resolver
        self.parse = lru_cache(maxsize=cache_size)(self._parse)

    def _parse(self, ua: str) -> Agent:
        r = self._resolve(ua, Domain.USER_AGENT | Domain.OS)
        browser = r.user_agent.family if r.user_agent else "Other"
        bmajor = _version(r.user_agent.major) if r.user_agent else ""
        os_family = r.os.family if r.os else "Other"
        omajor = _version(r.os.major) if r.os else ""
        device = device_class(ua)
        client = self._client(ua)
        if client is not None:
            browser, bmajor, app_os, app_omajor, device = client
            if app_os:
                os_family, omajor = app_os, app_omajor
        browser = _RENAME.get(browser, browser)
        if browser == "iOS WebView" or (browser == "Other" and os_family == "iOS"):
            device = "tablet" if "iPad" in ua else "mobile"
        if browser not in BROWSERS:
            browser, bmajor = "Other", ""
        if os_family not in OSES:
            os_family, omajor = "Other", ""
        return Agent(browser, bmajor, os_family, omajor, device)

    @staticmethod
    def _client(ua: str) -> tuple[str, str, str, str, str] | None:
        """(client, version, os, os version, device) for an app's HTTP client, else None."""
        m = _PRODUCT.match(ua)
        name = _CLIENTS.get(m.group(1).lower()) if m else None
        cf = _CFNETWORK.search(ua) if "CFNetwork/" in ua else None
        if cf is not None:
            return "CFNetwork", cf.group(1), "", "", "tablet" if "iPad" in ua else "mobile"
        afn = _AFN.search(ua) if "Scale/" in ua else None
        if afn is not None:
            return "AFNetworking", "", "iOS", afn.group(1), "tablet" if "(iPad" in ua else "mobile"
        if name is None:
            return None
        model = _ANDROID_MODEL.search(ua)
        android = "Android" if "Android" in ua or name in ("Dalvik", "OkHttp", "Cronet") else ""
        over = re.search(r"Android (\d{1,3})", ua) if android else None
        return (name, m.group(2), android, over.group(1) if over else "",
                model_class(model.group(1)) if model else "mobile")


class UserAgentStep:
    name = "useragent"

    def __init__(self, parser: UserAgentParser | None = None):
        self.parser = parser or UserAgentParser()

    def __call__(self, ev: Event) -> Event:
        a = self.parser.parse(ev.user_agent[:512])
        row = ev.row
        row["browser"], row["browser_version"], row["os"], row["os_version"], row["device"] = a
        platform = row.get("platform", "web")
        if platform != "web":
            model = row.get("device_model") or ""
            if platform in _DESKTOP_PLATFORMS:
                row["device"] = "desktop"
            elif model:
                row["device"] = model_class(model)
            elif platform == "ipados":
                row["device"] = "tablet"
            elif a.device == "desktop":
                row["device"] = "mobile"
        return ev

"""Location sent by a mobile app, coarsened like IP geography: ISO country and region codes only.

An app may send ``country`` (ISO 3166-1 alpha-2, "US") and ``region`` (ISO 3166-2, "US-MA" or "MA").
A valid country replaces the IP-derived country and region (a device knows where it is better than its
carrier's address does); the city is cleared and the configured geo precision still applies, so
``country`` precision keeps the country only. Invalid codes leave the IP geography as it was.
Coordinates, postal codes and city names are never read: the decoder does not accept such keys.
Web pages (platform ``web``) cannot set a location this way.

The app's own descriptive fields are held to closed forms before anything else reads them: ``platform``
is one of ``PLATFORMS`` (anything else is ``other``), ``app_version`` keeps its leading numeric version
(``2.14.0-beta+build.7`` -> ``2.14.0``), and ``device_model`` is kept only in the shape of a model
identifier (``Pixel 8``, ``iPhone15,2``, ``SM-X700``); the scrub step then runs the detectors over both.
"""

from __future__ import annotations

import re
from functools import lru_cache

from collector.pipeline.event import Event
from collector.pipeline.regions import subdivision
from collector.privacy.scrub import Scrubber

_PLAIN = Scrubber()  # the built-in detectors; the scrub step adds the site's member-id patterns

PLATFORMS = frozenset(("web", "ios", "ipados", "android", "macos", "windows", "linux", "chromeos", "tvos",
                       "watchos", "visionos", "wearos", "androidtv", "fireos", "harmonyos", "other"))
_PLATFORM_ALIASES = {"iphoneos": "ios", "iphone": "ios", "ipad": "ipados", "osx": "macos", "mac": "macos",
                     "macosx": "macos", "win": "windows", "win32": "windows", "cros": "chromeos"}
_APP_VERSION = re.compile(r"[vV]?(\d{1,5}(?:\.\d{1,6}){0,3})")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ,._()+-]{0,63}")


def platform_of(raw: str | None) -> str:
    """The platform from a closed set: ``web`` when none was sent, ``other`` when it is not known."""
    if not raw:
        return "web"
    p = raw.strip().lower().replace(" ", "").replace("_", "")
    p = _PLATFORM_ALIASES.get(p, p)
    return p if p in PLATFORMS else "other"


@lru_cache(maxsize=4096)
def app_version_of(raw: str | None) -> str:
    """The leading numeric version (at most four parts), or empty; empty too when the value as sent
    holds anything a detector flags (``123-45-6789`` is not version 123)."""
    m = _APP_VERSION.match(raw.strip()) if raw else None
    return m.group(1) if m and not _PLAIN.pii(raw) else ""


@lru_cache(maxsize=4096)
def device_model_of(raw: str | None) -> str:
    """A model identifier as sent, or empty when it is not shaped like one (``Jane's iPhone``)."""
    if not raw:
        return ""
    raw = " ".join(raw.split())
    return raw if _MODEL.fullmatch(raw) and not _PLAIN.pii(raw) else ""


_COUNTRY = re.compile(r"[A-Z]{2}")
_SUBDIVISION = re.compile(r"[A-Z0-9]{1,3}")


def coarsen(country: str, region: str, precision: str) -> tuple[str, str] | None:
    """(country, region) as stored, or None when the app sent no usable country."""
    country, region = country.strip().upper(), region.strip().upper()
    head, dash, sub = region.partition("-")
    if not dash:
        head, sub = country, region
    country = country or head
    if not _COUNTRY.fullmatch(country):
        return None
    if precision == "country" or head != country or not _SUBDIVISION.fullmatch(sub):
        return country, ""
    return country, f"{country}-{sub}"


class AppLocationStep:
    name = "applocation"

    def __init__(self, settings):
        self.precision = settings.geo_precision

    def __call__(self, ev: Event) -> Event:
        p = ev.payload
        if ev.row["platform"] == "web" or not (p.get("country") or p.get("region")):
            return ev
        place = coarsen(p.get("country") or "", p.get("region") or "", self.precision)
        if place is not None:
            country, region = place
            code, name = subdivision(country, region) if region else ("", "")
            ev.row["country"], ev.row["region"], ev.row["region_name"] = country, code, name
            ev.row["city"] = ""
        return ev

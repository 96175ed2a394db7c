"""Location sent by a mobile app, coarsened like IP geography: ISO country and region codes only.

An app may send ``country`` (ISO 3166-1 alpha-2, "US") and ``region`` (ISO 3166-2, "US-MA" or "MA").
A valid country replaces the IP-derived country and region (a device knows where it is better than its
carrier's address does); the city is cleared and the configured geo precision still applies, so
``country`` precision keeps the country only. Invalid codes leave the IP geography as it was.
Coordinates, postal codes and city names are never read: the decoder does not accept such keys.
Web pages (platform ``web``) cannot set a location this way.
"""

from __future__ import annotations

import re

from collector.pipeline.event import Event

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
            ev.row["country"], ev.row["region"] = place
            ev.row["city"] = ""
        return ev

"""Country, region and (only when configured) city from a MaxMind-format City or Country database.

Never latitude, longitude or postal code: those keys are not read. The facts are memoized per
/24 or /48 network (``collector.pipeline.network``), never per address.
"""

from __future__ import annotations

from collector.pipeline.event import Event
from collector.pipeline.mmdb import open_database
from collector.pipeline.network import NetworkMemo, network_of
from collector.pipeline.regions import subdivision


def _name(node: dict) -> str:
    names = node.get("names") or {}
    return names.get("en") or next(iter(names.values()), "") if names else ""


class GeoStep:
    name = "geo"

    def __init__(self, settings):
        self.reader = open_database(settings.geoip_city_db, "COLLECTOR_GEOIP_CITY_DB", "country/region/city")
        self.precision = settings.geo_precision
        # looked up once per /24 or /48 network whose addresses all share one record
        self.resolve = NetworkMemo(self.reader, self.facts)

    def facts(self, rec: dict) -> tuple[str, str, str, str]:
        country = (rec.get("country") or rec.get("registered_country") or {}).get("iso_code", "") or ""
        region = region_name = city = ""
        if self.precision in ("region", "city"):
            subs = rec.get("subdivisions") or []
            if subs:
                region, region_name = subdivision(country, subs[0].get("iso_code") or _name(subs[0]))
        if self.precision == "city":
            city = _name(rec.get("city") or {})
        return country, region, region_name, city

    def __call__(self, ev: Event) -> Event:
        shared = ev.shared  # once per request: the events of a batch share the address
        facts = shared.get(GEO)
        if facts is None:
            facts = shared[GEO] = self.resolve(ev.ip, network_of(ev))
        row = ev.row
        row["country"], row["region"], row["region_name"], row["city"] = facts
        return ev


GEO = "geo"  # the request's geography in ``Event.shared``

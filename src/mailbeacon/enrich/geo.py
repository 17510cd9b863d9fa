"""Country and network (ASN, AS organisation) of an IP address, from a local MaxMind DB file.

The default is the IPinfo Lite database shipped in parsedmarc's wheel; a user may point to their own
IPinfo file or to MaxMind's GeoLite2 Country (or City) and ASN files. Nothing is downloaded.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import maxminddb

IPINFO_ATTRIBUTION = (
    "IP address data powered by IPinfo (https://ipinfo.io), IPinfo Lite, licensed under CC BY-SA 4.0"
)
MAXMIND_ATTRIBUTION = (
    "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com"
)

# Keyed by a word of the file's database_type: licences of other files ask for nothing we know of.
_ATTRIBUTIONS = {"ipinfo": IPINFO_ATTRIBUTION, "geolite": MAXMIND_ATTRIBUTION}


@dataclass(frozen=True, slots=True)
class Network:
    """Where an address is: its country (ISO 3166 alpha-2) and its autonomous system."""

    country: str | None = None
    asn: int | None = None
    as_org: str | None = None


NO_NETWORK = Network()


def bundled_database() -> Path:
    """The IPinfo Lite file that parsedmarc's wheel ships."""
    return Path(str(resources.files("parsedmarc") / "resources" / "ipinfo" / "ipinfo_lite.mmdb"))


def public_address(ip: str | None) -> str | None:
    """The address to look up: IPv4-mapped IPv6 as plain IPv4; None for private, loopback and bad ones."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address) if address.is_global else None


def _asn(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.upper().startswith("AS") and value[2:].isdigit():
        return int(value[2:])
    return None


def _country(record: dict[str, Any]) -> str | None:
    # IPinfo Lite: "country_code"; MaxMind: {"country": {"iso_code": ...}}; older IPinfo files:
    # "country" is itself the code.
    code = record.get("country_code")
    country = record.get("country")
    if code is None and isinstance(country, dict):
        code = country.get("iso_code") or (record.get("registered_country") or {}).get("iso_code")
    if code is None and isinstance(country, str) and len(country) == 2:
        code = country
    return code.upper() if isinstance(code, str) else None


def network_of(record: dict[str, Any] | None) -> Network:
    """Read a record of any of the supported layouts (IPinfo, GeoLite2 Country/City, GeoLite2 ASN)."""
    if not record:
        return NO_NETWORK
    asn = _asn(record.get("asn", record.get("autonomous_system_number")))
    org = record.get("as_name") or record.get("autonomous_system_organization") or record.get("name")
    return Network(_country(record), asn, org if isinstance(org, str) else None)


class GeoLookup:
    """Look-ups in one or two memory-mapped files: a country+ASN file, or a country file and an ASN file.

    The files are shared by every process that opens them; a lookup takes a few microseconds.
    """

    def __init__(self, readers: list[maxminddb.Reader]) -> None:
        self._readers = readers

    @classmethod
    def open(cls, database: Path | None = None, asn_database: Path | None = None) -> GeoLookup:
        """Open `database` (the bundled IPinfo Lite file when None) and, if given, a separate ASN file."""
        paths = [database or bundled_database()]
        if asn_database is not None:
            paths.append(asn_database)
        readers = []
        for path in paths:
            try:
                readers.append(maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT))
            except OSError as exc:
                raise ValueError(f"cannot read the IP database {path}: {exc.strerror or exc}") from exc
            except (ValueError, maxminddb.InvalidDatabaseError) as exc:
                raise ValueError(f"{path} is not a MaxMind DB (.mmdb) file: {exc}") from exc
        return cls(readers)

    def close(self) -> None:
        for reader in self._readers:
            reader.close()

    @property
    def sources(self) -> list[str]:
        """The database type and build date of each file, e.g. 'GeoLite2-ASN (built 2026-10-01)'."""
        described = []
        for reader in self._readers:
            meta = reader.metadata()
            built = datetime.fromtimestamp(meta.build_epoch, UTC).date().isoformat()
            described.append(f"{meta.database_type} (built {built})")
        return described

    @property
    def attribution(self) -> list[str]:
        """The notices the data's licences ask for, one per data source."""
        notices: list[str] = []
        for reader in self._readers:
            kind = reader.metadata().database_type.lower()
            notice = _ATTRIBUTIONS.get(next((k for k in _ATTRIBUTIONS if k in kind), ""))
            if notice and notice not in notices:
                notices.append(notice)
        return notices

    def lookup(self, ip: str | None) -> Network:
        """Country, ASN and AS organisation of `ip`; all None for private, loopback or unknown addresses."""
        address = public_address(ip)
        if address is None:
            return NO_NETWORK
        country = asn = org = None
        for reader in self._readers:
            record = reader.get(address)
            found = network_of(record if isinstance(record, dict) else None)
            country = country or found.country
            asn = asn or found.asn
            org = org or found.as_org
        return Network(country, asn, org)

"""Country and network of real addresses, from the bundled IPinfo Lite file and from GeoLite2 files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbeacon.enrich.geo import GeoLookup, Network

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def ipinfo() -> Iterator[GeoLookup]:
    geo = GeoLookup.open()
    yield geo
    geo.close()


@pytest.mark.parametrize(
    ("ip", "country", "asn", "org_word"),
    [
        ("17.58.0.1", "US", 714, "Apple"),  # Apple's network, where Mail Privacy Protection fetches from
        ("66.249.84.1", "US", 15169, "Google"),  # GoogleImageProxy
        ("40.107.22.1", "NL", 8075, "Microsoft"),  # Exchange Online Protection / Safe Links
        ("98.137.11.163", "US", 36647, "Yahoo"),
        ("2a00:1450:4001::1", "DE", 15169, "Google"),
    ],
)
def test_bundled_ipinfo_lite_names_country_and_network(
    ipinfo: GeoLookup, ip: str, country: str, asn: int, org_word: str
) -> None:
    found = ipinfo.lookup(ip)
    assert (found.country, found.asn) == (country, asn)
    assert org_word in (found.as_org or "")


def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4(ipinfo: GeoLookup) -> None:
    assert ipinfo.lookup("::ffff:17.58.0.1") == ipinfo.lookup("17.58.0.1")
    assert ipinfo.lookup("::FFFF:66.249.84.1").asn == 15169


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",
        "192.168.0.10",
        "172.16.5.4",
        "127.0.0.1",
        "::1",
        "fe80::1",
        "100.64.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_private_and_loopback_addresses_have_no_country(ipinfo: GeoLookup, ip: str) -> None:
    assert ipinfo.lookup(ip) == Network()


@pytest.mark.parametrize("ip", [None, "", "not-an-ip", "999.1.1.1"])
def test_missing_or_bad_addresses_have_nothing(ipinfo: GeoLookup, ip: str | None) -> None:
    assert ipinfo.lookup(ip) == Network()


def test_ipinfo_data_carries_its_attribution(ipinfo: GeoLookup) -> None:
    assert ipinfo.attribution == [
        "IP address data powered by IPinfo (https://ipinfo.io), IPinfo Lite, licensed under CC BY-SA 4.0"
    ]
    assert "ipinfo" in ipinfo.sources[0]


def test_geolite2_country_and_asn_files_are_read_together() -> None:
    geo = GeoLookup.open(DATA / "GeoLite2-Country-Test.mmdb", DATA / "GeoLite2-ASN-Test.mmdb")
    try:
        assert geo.lookup("81.2.69.142") == Network("GB", None, None)  # in the country file only
        assert geo.lookup("1.0.0.1") == Network(None, 15169, "Google Inc.")  # in the ASN file only
        assert geo.lookup("::ffff:81.2.69.142").country == "GB"
        assert geo.lookup("10.0.0.1") == Network()
        assert geo.attribution == [
            "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com"
        ]
        assert [source.split(" ")[0] for source in geo.sources] == ["GeoLite2-Country", "GeoLite2-ASN"]
    finally:
        geo.close()


def test_a_missing_or_wrong_database_file_is_reported_by_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nowhere\.mmdb: No such file or directory"):
        GeoLookup.open(tmp_path / "nowhere.mmdb")
    text = tmp_path / "countries.csv"
    text.write_text("1.0.0.0,1.0.0.255,AU\n")
    with pytest.raises(ValueError, match=r"countries\.csv is not a MaxMind DB"):
        GeoLookup.open(text)

"""MX routing against a real (test) authoritative DNS server over UDP."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.asyncresolver
import dns.nameserver
import dns.rdatatype
import pytest

from mailbeacon.delivery.mx import DnsFailure, MailHost, Route, make_resolver, resolve_route
from tests.dns_server import AAAA, CNAME, MX, TXT, A, DnsServer

Shuffle = Callable[[list[MailHost]], None]


@pytest.fixture
def server() -> Iterator[DnsServer]:
    with DnsServer() as running:
        yield running


def route(server: DnsServer, domain: str, *, shuffle: Shuffle | None = None, timeout_s: float = 3.0) -> Route:
    resolver = make_resolver([server.nameserver], timeout_s=timeout_s)
    return asyncio.run(resolve_route(domain, resolver, shuffle=shuffle))


def failure(server: DnsServer, domain: str, *, timeout_s: float = 3.0) -> DnsFailure:
    with pytest.raises(DnsFailure) as caught:
        route(server, domain, timeout_s=timeout_s)
    return caught.value


def names(found: Route) -> list[str]:
    return [host.name for host in found.hosts]


def test_hosts_in_preference_order_with_their_addresses(server: DnsServer) -> None:
    server.set(
        "example.test", [MX(20, "mx2.example.test"), MX(10, "mx1.example.test"), MX(30, "mx3.example.test")]
    )
    server.set("mx1.example.test", [A("127.0.0.1")])
    server.set("mx2.example.test", [A("127.0.0.2"), A("127.0.0.3")])
    server.set("mx3.example.test", [A("127.0.0.4")])

    found = route(server, "example.test")

    assert found == Route(
        domain="example.test",
        hosts=(
            MailHost("mx1.example.test", 10, ("127.0.0.1",)),
            MailHost("mx2.example.test", 20, ("127.0.0.2", "127.0.0.3")),
            MailHost("mx3.example.test", 30, ("127.0.0.4",)),
        ),
        implicit_mx=False,
    )


def test_ties_are_shuffled_and_only_ties(server: DnsServer) -> None:
    server.set("example.test", [MX(10, "b.example.test"), MX(10, "a.example.test"), MX(20, "c.example.test")])
    for host in ("a", "b", "c"):
        server.set(f"{host}.example.test", [A("127.0.0.1")])
    groups: list[list[str]] = []

    def reverse(hosts: list[MailHost]) -> None:
        groups.append([h.name for h in hosts])
        hosts.reverse()

    assert names(route(server, "example.test", shuffle=reverse)) == [
        "b.example.test",
        "a.example.test",
        "c.example.test",
    ]
    assert groups == [["a.example.test", "b.example.test"]]
    assert names(route(server, "example.test", shuffle=None))[:2] == ["a.example.test", "b.example.test"]

    rng = random.Random(7)
    firsts = {names(route(server, "example.test", shuffle=rng.shuffle))[0] for _ in range(20)}
    assert firsts == {"a.example.test", "b.example.test"}


def test_the_default_shuffle_keeps_preference_order(server: DnsServer) -> None:
    server.set("example.test", [MX(5, "low.example.test"), MX(50, "high.example.test")])
    server.set("low.example.test", [A("127.0.0.1")])
    server.set("high.example.test", [A("127.0.0.2")])
    resolver = make_resolver([server.nameserver], timeout_s=3.0)

    found = asyncio.run(resolve_route("example.test", resolver))

    assert names(found) == ["low.example.test", "high.example.test"]


def test_ipv4_addresses_come_before_ipv6(server: DnsServer) -> None:
    server.set("example.test", [MX(10, "mx.example.test"), MX(20, "v6only.example.test")])
    server.set("mx.example.test", [AAAA("::1"), A("127.0.0.1"), AAAA("2001:db8::25")])
    server.set("v6only.example.test", [AAAA("2001:db8::26")])

    found = route(server, "example.test")

    assert found.hosts == (
        MailHost("mx.example.test", 10, ("127.0.0.1", "::1", "2001:db8::25")),
        MailHost("v6only.example.test", 20, ("2001:db8::26",)),
    )


def test_no_mx_falls_back_to_the_domains_addresses(server: DnsServer) -> None:
    server.set("example.test", [A("127.0.0.9"), AAAA("::1"), TXT("v=spf1 -all")])

    found = route(server, "example.test")

    assert found == Route(
        "example.test", (MailHost("example.test", 0, ("127.0.0.9", "::1")),), implicit_mx=True
    )


def test_no_mx_and_no_address_is_permanent(server: DnsServer) -> None:
    server.set("example.test", [TXT("v=spf1 -all")])

    error = failure(server, "example.test")

    assert not error.temporary
    assert "no MX records and no address" in error.reason


def test_null_mx_is_permanent(server: DnsServer) -> None:
    server.set("example.test", [MX(0, "."), A("127.0.0.1")])

    error = failure(server, "example.test")

    assert not error.temporary
    assert "null MX" in error.reason


def test_a_null_mx_among_other_records_is_ignored(server: DnsServer) -> None:
    server.set("example.test", [MX(0, "."), MX(10, "mx.example.test")])
    server.set("mx.example.test", [A("127.0.0.1")])

    assert names(route(server, "example.test")) == ["mx.example.test"]


def test_nxdomain_is_permanent(server: DnsServer) -> None:
    error = failure(server, "nowhere.test")

    assert not error.temporary
    assert "NXDOMAIN" in error.reason
    assert str(error) == error.reason


def test_servfail_is_temporary(server: DnsServer) -> None:
    server.set("example.test", [MX(10, "mx.example.test")])
    server.servfail("example.test")

    error = failure(server, "example.test")

    assert error.temporary
    assert "SERVFAIL" in error.reason


def test_no_answer_at_all_is_temporary_after_the_timeout(server: DnsServer) -> None:
    server.set("example.test", [MX(10, "mx.example.test")])
    server.drop("example.test")

    started = time.monotonic()
    error = failure(server, "example.test", timeout_s=0.4)
    elapsed = time.monotonic() - started

    assert error.temporary
    assert "timed out" in error.reason
    assert elapsed < 2.0


def test_cname_is_followed_for_the_domain_and_for_mx_hosts(server: DnsServer) -> None:
    server.set("alias.test", [CNAME("real.test")])
    server.set("real.test", [MX(10, "mx-alias.real.test")])
    server.set("mx-alias.real.test", [CNAME("mx.real.test")])
    server.set("mx.real.test", [A("127.0.0.5")])

    found = route(server, "alias.test")

    assert found.domain == "alias.test"
    assert found.hosts == (MailHost("mx-alias.real.test", 10, ("127.0.0.5",)),)


def test_cname_to_a_missing_name_is_nxdomain(server: DnsServer) -> None:
    server.set("alias.test", [CNAME("gone.test")])

    error = failure(server, "alias.test")

    assert not error.temporary


def test_mx_hosts_without_addresses_are_dropped(server: DnsServer) -> None:
    server.set(
        "example.test",
        [MX(10, "empty.example.test"), MX(20, "missing.example.test"), MX(30, "mx.example.test")],
    )
    server.set("empty.example.test", [TXT("nothing here")])
    server.set("mx.example.test", [A("127.0.0.1")])

    assert names(route(server, "example.test")) == ["mx.example.test"]


def test_mx_hosts_all_without_addresses_is_permanent(server: DnsServer) -> None:
    server.set("example.test", [MX(10, "empty.example.test"), MX(20, "missing.example.test")])
    server.set("empty.example.test", [])

    error = failure(server, "example.test")

    assert not error.temporary
    assert "none of its MX hosts has an address" in error.reason


def test_a_host_whose_lookup_fails_temporarily_is_skipped_when_another_works(server: DnsServer) -> None:
    server.set("example.test", [MX(10, "primary.example.test"), MX(20, "backup.example.test")])
    server.set("primary.example.test", [A("127.0.0.1")])
    server.set("backup.example.test", [A("127.0.0.2")])
    server.servfail("primary.example.test")

    assert names(route(server, "example.test")) == ["backup.example.test"]


def test_every_host_failing_temporarily_is_temporary(server: DnsServer) -> None:
    server.set("example.test", [MX(10, "primary.example.test"), MX(20, "gone.example.test")])
    server.set("primary.example.test", [A("127.0.0.1")])
    server.servfail("primary.example.test")

    error = failure(server, "example.test")

    assert error.temporary
    assert "primary.example.test" in error.reason


def test_a_failing_aaaa_lookup_keeps_the_ipv4_addresses(server: DnsServer) -> None:
    server.set("example.test", [MX(10, "mx.example.test")])
    server.set("mx.example.test", [A("127.0.0.1"), AAAA("::1")])
    server.servfail("mx.example.test", "AAAA")

    assert route(server, "example.test").hosts == (MailHost("mx.example.test", 10, ("127.0.0.1",)),)


def test_implicit_mx_with_a_failing_address_lookup_is_temporary(server: DnsServer) -> None:
    server.set("example.test", [TXT("v=spf1 -all")])
    server.servfail("example.test", "A")
    server.servfail("example.test", "AAAA")

    assert failure(server, "example.test").temporary


def test_internationalised_domains_are_idna_encoded(server: DnsServer) -> None:
    server.set("xn--bcher-kva.test", [MX(10, "mx.xn--bcher-kva.test")])
    server.set("mx.xn--bcher-kva.test", [A("127.0.0.1")])

    found = route(server, "Bücher.test")

    assert found.domain == "xn--bcher-kva.test"
    assert names(found) == ["mx.xn--bcher-kva.test"]


def test_case_and_final_dot_are_normalised(server: DnsServer) -> None:
    server.set("example.test", [MX(10, "MX.Example.TEST")])
    server.set("mx.example.test", [A("127.0.0.1")])

    found = route(server, "EXAMPLE.test.")

    assert found.domain == "example.test"
    assert names(found) == ["mx.example.test"]


@pytest.mark.parametrize(
    ("literal", "address"),
    [("[192.0.2.1]", "192.0.2.1"), ("[IPv6:2001:DB8::1]", "2001:db8::1"), ("[127.0.0.1]", "127.0.0.1")],
)
def test_address_literals_route_straight_to_the_address(
    server: DnsServer, literal: str, address: str
) -> None:
    found = route(server, literal)

    assert found == Route(literal, (MailHost(address, 0, (address,)),), implicit_mx=False)
    assert server.queries == []


@pytest.mark.parametrize("domain", ["[999.0.0.1]", "[2001:db8::1]", "a..b.test", "-bad.test", "", "a b.test"])
def test_invalid_domains_are_permanent_failures(server: DnsServer, domain: str) -> None:
    assert not failure(server, domain).temporary


def test_localhost_is_not_special(server: DnsServer) -> None:
    assert not failure(server, "localhost").temporary
    assert ("localhost", "MX") in server.queries

    server.set("localhost", [A("127.0.0.1")])
    assert route(server, "localhost").hosts == (MailHost("localhost", 0, ("127.0.0.1",)),)


def test_the_test_server_answers_over_tcp_too(server: DnsServer) -> None:
    server.set("example.test", [MX(10, "mx.example.test")])
    resolver = make_resolver([server.nameserver], timeout_s=3.0)

    answer = asyncio.run(resolver.resolve("example.test.", dns.rdatatype.MX, tcp=True))

    assert [r.preference for r in answer] == [10]


@pytest.mark.parametrize(
    ("spec", "address", "port"),
    [
        ("192.0.2.53", "192.0.2.53", 53),
        ("192.0.2.53:5353", "192.0.2.53", 5353),
        ("[::1]:5353", "::1", 5353),
        ("[::1]", "::1", 53),
        ("2001:db8::53", "2001:db8::53", 53),
    ],
)
def test_make_resolver_parses_nameservers(spec: str, address: str, port: int) -> None:
    resolver = make_resolver([spec], timeout_s=1.5)

    (nameserver,) = resolver.nameservers
    assert isinstance(nameserver, dns.nameserver.Do53Nameserver)
    assert (nameserver.address, nameserver.port) == (address, port)
    assert resolver.lifetime == 1.5


@pytest.mark.parametrize("spec", ["mx.example.test", "192.0.2.1:0", "192.0.2.1:99999", "[::1]x", "1.2.3.4:x"])
def test_make_resolver_rejects_bad_nameservers(spec: str) -> None:
    with pytest.raises(ValueError, match="nameserver"):
        make_resolver([spec])


def test_make_resolver_without_nameservers_reads_the_system_configuration() -> None:
    if not Path("/etc/resolv.conf").exists():
        pytest.skip("no /etc/resolv.conf")
    resolver = make_resolver(None, timeout_s=2.0)

    assert isinstance(resolver, dns.asyncresolver.Resolver)
    assert resolver.nameservers
    assert resolver.lifetime == 2.0

"""Machine classification of real hits (real user agents, real networks from the bundled database)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailbeacon.enrich import CopyClick, Enricher, Enrichment, HitFacts, burst_clicks, classify
from mailbeacon.events import MachineClass

APPLE_MAIL_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36"
)
CHROMIUM_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)"
HOME = "81.2.69.142"  # a British ISP's address (Andrews & Arnold)


@pytest.fixture(scope="module")
def enricher() -> Iterator[Enricher]:
    enricher = Enricher.open()
    yield enricher
    enricher.close()


def test_apple_privacy_prefetch_from_apples_network(enricher: Enricher) -> None:
    found = enricher.enrich(HitFacts(kind="open", ip="17.58.0.1", user_agent=APPLE_MAIL_MAC))
    assert found.classification.machine_class == MachineClass.APPLE_PRIVACY
    assert not found.classification.human
    assert "AS714" in found.classification.reason
    assert (found.network.country, found.network.asn) == ("US", 714)
    assert (found.client, found.platform) == ("Apple Mail", "unknown")


def test_apple_mail_from_a_home_network_is_a_person(enricher: Enricher) -> None:
    found = enricher.enrich(HitFacts(kind="open", ip=HOME, user_agent=APPLE_MAIL_MAC))
    assert found.classification.machine_class == MachineClass.HUMAN
    assert found.classification.human
    assert (found.client, found.platform, found.network.country) == ("Apple Mail", "desktop", "GB")


def test_gmail_proxy_from_googles_network_counts_as_an_open(enricher: Enricher) -> None:
    found = enricher.enrich(HitFacts(kind="open", ip="66.249.84.1", user_agent=GMAIL_PROXY))
    assert found.classification.machine_class == MachineClass.GMAIL_PROXY
    assert found.classification.human
    assert found.network.asn == 15169
    assert (found.client, found.platform) == ("Gmail", "unknown")


def test_a_proxy_fetch_on_arrival_is_not_counted(enricher: Enricher) -> None:
    hit = HitFacts(kind="open", ip="66.249.84.1", user_agent=GMAIL_PROXY, seconds_since_sent=0.8)
    found = enricher.enrich(hit).classification
    assert found.machine_class == MachineClass.GMAIL_PROXY
    assert not found.human
    assert any("0.8 s after sending" in reason for reason in found.evidence)


def test_yahoo_proxy(enricher: Enricher) -> None:
    found = enricher.enrich(HitFacts(kind="open", ip="98.137.11.163", user_agent=YAHOO_PROXY))
    assert found.classification.machine_class == MachineClass.OTHER_PROXY
    assert found.classification.human
    assert found.client == "Yahoo Mail"


def test_safe_links_click_from_microsofts_network(enricher: Enricher) -> None:
    found = enricher.enrich(HitFacts(kind="click", ip="40.107.22.1", user_agent=CHROME))
    assert found.classification.machine_class == MachineClass.SCANNER
    assert not found.classification.human
    assert "AS8075" in found.classification.reason
    assert "Safe Links" in found.classification.reason


def test_outlook_on_a_cloud_pc_in_microsofts_network_is_a_person(enricher: Enricher) -> None:
    found = enricher.enrich(HitFacts(kind="open", ip="40.107.22.1", user_agent=OUTLOOK))
    assert found.classification.machine_class == MachineClass.HUMAN
    assert (found.client, found.platform) == ("Outlook", "desktop")


def test_a_click_in_chromium_is_a_person_whose_mail_client_is_unknown(enricher: Enricher) -> None:
    found = enricher.enrich(HitFacts(kind="click", ip=HOME, user_agent=CHROMIUM_LINUX, link_position=1))
    assert found.classification.machine_class == MachineClass.HUMAN
    assert found.classification.human
    assert (found.client, found.platform) == (None, "unknown")
    assert found.event_fields()["data"]["browser"] == "Chrome 131"


def test_an_open_in_chromium_is_webmail(enricher: Enricher) -> None:
    found = enricher.enrich(HitFacts(kind="open", ip=HOME, user_agent=CHROMIUM_LINUX))
    assert (found.classification.machine_class, found.platform) == (MachineClass.HUMAN, "webmail")


def test_curl_is_a_scanner(enricher: Enricher) -> None:
    found = enricher.enrich(HitFacts(kind="click", ip=HOME, user_agent="curl/8.5.0"))
    assert found.classification.machine_class == MachineClass.SCANNER
    assert found.classification.evidence[0] == "user agent of a command-line HTTP tool"


def test_a_head_request_is_a_scanner(enricher: Enricher) -> None:
    found = enricher.enrich(HitFacts(kind="click", ip=HOME, user_agent=CHROME, method="HEAD"))
    assert found.classification.machine_class == MachineClass.SCANNER
    assert found.classification.evidence[0].startswith("HEAD request")


def test_no_user_agent_is_unknown_and_not_a_person(enricher: Enricher) -> None:
    found = enricher.enrich(HitFacts(kind="open", ip=HOME))
    assert found.classification.machine_class == MachineClass.UNKNOWN
    assert not found.classification.human
    assert "no user agent" in found.classification.reason


def test_announced_prefetch_and_link_previews(enricher: Enricher) -> None:
    prefetch = enricher.enrich(HitFacts(kind="click", ip=HOME, user_agent=CHROME, purpose="prefetch"))
    assert prefetch.classification.machine_class == MachineClass.PREFETCH
    slack = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
    preview = enricher.enrich(HitFacts(kind="click", ip="3.5.6.7", user_agent=slack))
    assert preview.classification.machine_class == MachineClass.PREFETCH
    assert not preview.classification.human


def test_a_click_seconds_after_sending_is_a_scanner(enricher: Enricher) -> None:
    fast = enricher.enrich(HitFacts(kind="click", ip=HOME, user_agent=CHROME, seconds_since_sent=1.5))
    assert fast.classification.machine_class == MachineClass.SCANNER
    later = enricher.enrich(HitFacts(kind="click", ip=HOME, user_agent=CHROME, seconds_since_sent=95))
    assert later.classification.machine_class == MachineClass.HUMAN


def test_a_burst_over_every_link_within_seconds_is_a_scanner(enricher: Enricher) -> None:
    # A gateway follows all four links of a copy within 1.2 s, from an ordinary-looking browser.
    earlier = [
        CopyClick(1000.0, 1, "52.1.2.3"),
        CopyClick(1000.4, 2, "52.1.2.3"),
        CopyClick(1000.9, 3, "52.1.2.4"),
    ]
    hit = HitFacts(
        kind="click",
        ip="52.1.2.3",
        user_agent=CHROME,
        at=1001.2,
        link_position=4,
        link_count=4,
        copy_clicks=earlier,
    )
    found = enricher.enrich(hit).classification
    assert found.machine_class == MachineClass.SCANNER
    assert found.evidence == ("part of a burst: 4 of 4 links of this copy clicked within 5 s",)


def test_a_reader_clicking_two_links_minutes_apart_is_no_burst(enricher: Enricher) -> None:
    earlier = [CopyClick(1000.0, 1, HOME)]
    hit = HitFacts(
        kind="click",
        ip=HOME,
        user_agent=CHROME,
        at=1140.0,
        link_position=2,
        link_count=2,
        copy_clicks=earlier,
    )
    assert enricher.enrich(hit).classification.machine_class == MachineClass.HUMAN


def test_burst_clicks_marks_only_the_burst() -> None:
    clicks = [
        CopyClick(0.0, 1),
        CopyClick(0.5, 2),
        CopyClick(1.1, 3),
        CopyClick(3600.0, 2),  # the reader, an hour later
    ]
    assert burst_clicks(clicks, link_count=5) == {0, 1, 2}
    assert burst_clicks(clicks[:2], link_count=2) == {0, 1}  # every link of a two-link message
    assert burst_clicks([CopyClick(0.0, 1), CopyClick(0.3, 1)], link_count=1) == set()  # a double click
    assert burst_clicks([CopyClick(0.0, 1), CopyClick(0.5, 2)], link_count=9) == set()


def test_the_trap_link_marks_its_address_as_a_scanner_for_that_copy(enricher: Enricher) -> None:
    trap = enricher.enrich(HitFacts(kind="click", ip="52.1.2.3", user_agent=CHROME, trap=True))
    assert trap.classification.machine_class == MachineClass.SCANNER
    assert "trap link" in trap.classification.reason
    trapped = [CopyClick(1000.0, None, "52.1.2.3", trap=True)]
    same = HitFacts(
        kind="click", ip="52.1.2.3", user_agent=CHROME, at=1300.0, link_position=1, copy_clicks=trapped
    )
    assert enricher.enrich(same).classification.machine_class == MachineClass.SCANNER
    other = HitFacts(
        kind="click", ip=HOME, user_agent=CHROME, at=1300.0, link_position=1, copy_clicks=trapped
    )
    assert enricher.enrich(other).classification.machine_class == MachineClass.HUMAN
    # The trap decides even when the same address's hit looks like a proxy's or a prefetch.
    proxy = HitFacts(kind="open", ip="52.1.2.3", user_agent=GMAIL_PROXY, copy_clicks=trapped)
    found = enricher.enrich(proxy).classification
    assert (found.machine_class, found.human) == (MachineClass.SCANNER, False)
    assert found.evidence[0] == "52.1.2.3 also followed this copy's invisible trap link"


def test_classify_alone_describes_the_agent_itself() -> None:
    assert classify(HitFacts(kind="open", user_agent=CHROME)).machine_class == MachineClass.HUMAN
    assert (
        classify(HitFacts(kind="open", user_agent=CHROME, method="HEAD")).machine_class
        == MachineClass.SCANNER
    )


def test_event_fields_fill_the_events_columns(enricher: Enricher) -> None:
    from mailbeacon.store.tables import events

    found: Enrichment = enricher.enrich(HitFacts(kind="open", ip="17.58.0.1", user_agent=APPLE_MAIL_MAC))
    fields = found.event_fields()
    assert set(fields) <= set(events.c.keys())
    assert fields["machine_reason"] == "; ".join(fields["data"]["evidence"])
    assert (fields["country"], fields["asn"], fields["as_org"]) == ("US", 714, "Apple Inc.")

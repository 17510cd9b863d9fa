"""parse_inbound against the real bounce corpus (tests/data/bounces) and its expected answers."""

from __future__ import annotations

import re

import pytest

from mailbeacon.inbound import BounceClass, BounceReason, InboundKind, InboundReport, parse_inbound
from tests.inbound.corpus_score import BOUNCE_KINDS, DATA, Case, Score, load_cases, recipient_statuses, score

CASES = load_cases()
_ACTION = re.compile(rb"^action:[ \t]*+(\S++)", re.IGNORECASE | re.MULTILINE)


@pytest.fixture(scope="module")
def scored() -> tuple[Score, dict[str, InboundReport]]:
    result, reports = score(CASES)
    print("\ninbound corpus score (tests/data/bounces)")
    for line in result.lines():
        print("  " + line)
    for miss in result.misses:
        print("  miss: " + miss)
    return result, reports


def test_the_corpus_is_all_there() -> None:
    assert len(CASES) == 169
    assert sum(1 for case in CASES if case.is_dsn) >= 45


def test_at_least_90_percent_of_the_expected_addresses_are_found(
    scored: tuple[Score, dict[str, InboundReport]],
) -> None:
    result, _ = scored
    assert result.addresses_expected >= 170
    assert result.addresses_found / result.addresses_expected >= 0.90


def test_status_codes_and_kinds_mostly_match(scored: tuple[Score, dict[str, InboundReport]]) -> None:
    result, _ = scored
    assert result.statuses_matched / result.statuses_expected >= 0.90
    assert result.kinds_right / result.kinds_expected >= 0.95


@pytest.mark.parametrize("case", [c for c in CASES if c.is_dsn and c.addresses], ids=lambda c: c.name)
def test_every_dsn_bounce_gets_every_expected_address_and_status(
    case: Case, scored: tuple[Score, dict[str, InboundReport]]
) -> None:
    report = scored[1][case.name]
    assert report.kind in BOUNCE_KINDS
    found = recipient_statuses(report)
    assert case.addresses <= set(found)
    for address, status in case.statuses.items():
        assert found[address] == status, address


@pytest.mark.parametrize("case", [c for c in CASES if c.is_bounce is False], ids=lambda c: c.name)
def test_non_bounces_are_not_called_bounces(
    case: Case, scored: tuple[Score, dict[str, InboundReport]]
) -> None:
    report = scored[1][case.name]
    assert report.kind not in BOUNCE_KINDS
    assert report.recipients == ()


def _all_actions_delayed(case: Case) -> bool:
    actions = {match.lower() for match in _ACTION.findall(case.path.read_bytes())}
    return actions == {b"delayed"}


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.is_dsn and _all_actions_delayed(c)], ids=lambda c: c.name
)
def test_delayed_dsns_are_delay(case: Case, scored: tuple[Score, dict[str, InboundReport]]) -> None:
    report = scored[1][case.name]
    assert report.kind is InboundKind.DELAY
    assert report.format == "dsn"
    assert {recipient.action for recipient in report.recipients} == {"delayed"}
    assert {recipient.bounce_class for recipient in report.recipients} == {BounceClass.SOFT}


def test_there_are_delayed_dsns_to_check() -> None:
    names = {c.name for c in CASES if c.is_dsn and _all_actions_delayed(c)}
    assert {"flufl.bounce/dsn_05.txt", "flufl.bounce/dsn_06.txt", "flanker/no-mx.eml"} <= names


def _read(name: str) -> InboundReport:
    return parse_inbound((DATA / name).read_bytes())


def test_postfix_dsn_in_full() -> None:
    report = _read("flanker/zed.eml")
    assert report.kind is InboundKind.BOUNCE
    assert report.format == "dsn"
    [recipient] = report.recipients
    assert recipient.address == "asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com"
    assert recipient.action == "failed"
    assert recipient.status == "5.1.1"
    assert recipient.remote_code == 550
    assert recipient.diagnostic is not None
    assert recipient.diagnostic.startswith("550-5.1.1 The email account that you tried to reach does")
    assert recipient.bounce_class is BounceClass.HARD
    assert recipient.reason is BounceReason.USER_UNKNOWN
    assert report.original_message_ids == ("20090708054735.GC7578@example.com",)


def test_office365_dsn() -> None:
    report = _read("flanker/office365.eml")
    assert [r.address for r in report.recipients] == ["noname@example.com"]
    [recipient] = report.recipients
    assert recipient.status == "5.1.10"
    assert recipient.remote_code == 550
    assert recipient.diagnostic == (
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound;"
        " Recipient noname@example.com not found by SMTP address lookup"
    )
    assert (recipient.bounce_class, recipient.reason) == (BounceClass.HARD, BounceReason.USER_UNKNOWN)


def test_mailbox_full_is_soft() -> None:
    [recipient] = _read("flanker/mailbox-full.eml").recipients
    assert (recipient.address, recipient.status, recipient.remote_code) == ("user@aol.com", "5.2.2", 552)
    assert (recipient.bounce_class, recipient.reason) == (BounceClass.SOFT, BounceReason.MAILBOX_FULL)
    assert recipient.remote_mta == "air-dc.gair-dc.mail.aol.com"


def test_delay_notice() -> None:
    report = _read("flanker/no-mx.eml")
    assert report.kind is InboundKind.DELAY
    [recipient] = report.recipients
    assert (recipient.address, recipient.action, recipient.status, recipient.remote_code) == (
        "user@example.com",
        "delayed",
        "4.4.4",
        454,
    )


def test_original_recipient_is_kept_and_a_domainless_final_recipient_is_not_preferred() -> None:
    [recipient] = _read("flufl.bounce/dsn_17.txt").recipients
    assert (recipient.address, recipient.original_address) == ("xxx@example.fi", "userx@example.fi")
    assert (recipient.action, recipient.status) == ("delayed", "4.3.0")
    [recipient] = _read("flufl.bounce/dsn_01.txt").recipients
    assert (recipient.address, recipient.original_address) == ("userx@example.com", "userx@example.com")


def test_exim_bounce() -> None:
    report = _read("flufl.bounce/exim_01.txt")
    assert report.format == "flufl:exim"
    [recipient] = report.recipients
    assert (recipient.address, recipient.status, recipient.remote_code) == (
        "userx@its.example.nl",
        "5.1.1",
        553,
    )
    assert (recipient.bounce_class, recipient.reason) == (BounceClass.HARD, BounceReason.USER_UNKNOWN)


def test_qmail_bounce() -> None:
    report = _read("flufl.bounce/qmail_03.txt")
    assert report.format == "flufl:qmail"
    [recipient] = report.recipients
    assert (recipient.address, recipient.status) == ("userx@example.jp", "5.1.1")


def test_postfix_without_dsn_is_found_by_our_own_pattern() -> None:
    report = _read("postal/postfix-bounce.msg")
    assert report.kind is InboundKind.BOUNCE
    assert report.format == "flufl:text"
    [recipient] = report.recipients
    assert (recipient.address, recipient.status, recipient.remote_code) == ("bob@nutty.tk", "5.1.1", 550)
    assert recipient.reason is BounceReason.USER_UNKNOWN


def test_qmail_that_gave_up_after_retrying_is_a_soft_expired_bounce() -> None:
    report = _read("flufl.bounce/yahoo_01.txt")
    assert report.kind is InboundKind.BOUNCE
    [recipient] = report.recipients
    assert (recipient.address, recipient.action, recipient.status) == ("userx@example.com", "failed", "4.4.1")
    assert (recipient.bounce_class, recipient.reason) == (BounceClass.SOFT, BounceReason.EXPIRED)


def test_yahoo_bounce_with_several_recipients() -> None:
    report = _read("flufl.bounce/yahoo_08.txt")
    assert report.format == "flufl:yahoo"
    assert [r.address for r in report.recipients] == [f"user{c}@example.com" for c in "abcdef"]


def test_a_bounce_naming_no_recipient_is_still_a_bounce_with_the_original_id() -> None:
    report = _read("flufl.bounce/simple_43.txt")
    assert (report.kind, report.format, report.recipients) == (InboundKind.BOUNCE, "unparsed", ())
    assert report.original_message_ids == ("ea184277-2081-cdae-1478-0639bb427e8c@our-domain.de",)
    assert "looks like a bounce but names no failed recipient" in report.problems


def test_auto_reply_in_the_bounce_corpus() -> None:
    report = _read("flufl.bounce/qmail_08.txt")
    assert report.kind is InboundKind.AUTO_REPLY
    assert report.recipients == ()

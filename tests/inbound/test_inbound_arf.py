"""Feedback reports (tests/data/arf): complaints, and auth-failure reports that are not complaints."""

from __future__ import annotations

import email
import email.policy
import json
from email.message import Message
from pathlib import Path
from typing import Any, Final

import pytest

from mailbeacon.inbound import InboundKind, InboundReport, parse_inbound
from mailbeacon.inbound.message import normalize_address

DATA: Final = Path(__file__).resolve().parents[1] / "data" / "arf"
EXPECTED: Final[dict[str, dict[str, Any]]] = json.loads(
    (DATA / "expected" / "expected-by-file.json").read_text(encoding="utf-8")
)
ARF_FILES: Final = sorted(name for name, entry in EXPECTED.items() if entry["feedback_report_fields_stdlib"])


def _parse(name: str) -> InboundReport:
    return parse_inbound((DATA / name).read_bytes())


def _squeeze(value: str) -> str:
    # The expected values went through the email package's header policy, which collapses runs of spaces
    # (Yahoo's Authentication-Results has double spaces); the parser keeps the value as given.
    return " ".join(value.split())


def _fields(entry: dict[str, Any]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = entry["feedback_report_fields_stdlib"]
    return {name: [_squeeze(value) for value in values] for name, values in fields.items()}


def _attached_original_message_id(name: str) -> str | None:
    """The Message-ID of the attached original, read independently with the email package."""
    msg = email.message_from_bytes((DATA / name).read_bytes(), policy=email.policy.default)
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and isinstance(payload[0], Message):
                value = payload[0].get("Message-ID")
                return str(value).strip().strip("<>").replace(" ", "") if value else None
        if part.get_content_type() == "text/rfc822-headers":
            headers = email.message_from_string(part.get_content())
            value = headers.get("Message-ID")
            return str(value).strip().strip("<>").replace(" ", "") if value else None
    return None


def test_the_arf_samples_are_all_there() -> None:
    assert len(ARF_FILES) == 13


@pytest.mark.parametrize("name", ARF_FILES)
def test_kind_follows_the_feedback_type(name: str) -> None:
    report = _parse(name)
    feedback_type = _fields(EXPECTED[name])["feedback-type"][0].lower()
    if feedback_type == "auth-failure":
        assert (report.kind, report.format) == (InboundKind.UNKNOWN, "arf:auth-failure")
    else:
        assert (report.kind, report.format) == (InboundKind.COMPLAINT, "arf")
    assert report.feedback is not None
    assert report.feedback.feedback_type == feedback_type


@pytest.mark.parametrize("name", ARF_FILES)
def test_every_feedback_field_is_read_as_given(name: str) -> None:
    report = _parse(name)
    assert report.feedback is not None
    ours: dict[str, list[str]] = {}
    for field_name, value in report.feedback.fields:
        ours.setdefault(field_name, []).append(_squeeze(value))
    assert ours == _fields(EXPECTED[name])


@pytest.mark.parametrize("name", ARF_FILES)
def test_typed_feedback_fields(name: str) -> None:
    feedback = _parse(name).feedback
    assert feedback is not None
    expected = _fields(EXPECTED[name])

    def first(field_name: str) -> str | None:
        return expected.get(field_name, [None])[0]

    assert feedback.user_agent == first("user-agent")
    assert feedback.version == first("version")
    assert feedback.original_mail_from == normalize_address(first("original-mail-from"))
    assert feedback.original_rcpt_to == tuple(
        normalize_address(value) for value in expected.get("original-rcpt-to", [])
    )
    assert feedback.arrival_date == (first("arrival-date") or first("received-date"))
    assert feedback.source_ip == first("source-ip")
    assert feedback.reporting_mta == first("reporting-mta")
    assert feedback.reported_domain == tuple(expected.get("reported-domain", []))
    assert feedback.reported_uri == tuple(expected.get("reported-uri", []))
    assert tuple(map(_squeeze, feedback.authentication_results)) == tuple(
        expected.get("authentication-results", [])
    )
    assert feedback.auth_failure == first("auth-failure")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_original_message_id_is_found(name: str) -> None:
    report = _parse(name)
    attached = _attached_original_message_id(name)
    from_sisimai = {record["messageid"].replace(" ", "") for record in EXPECTED[name]["sisimai_p5"]} - {""}
    if attached:
        assert report.original_message_ids[:1] == (attached,)
    for message_id in from_sisimai:
        assert message_id in report.original_message_ids


def test_rfc_5965_example() -> None:
    report = _parse("stalwart-mail-auth/002.eml")
    assert report.kind is InboundKind.COMPLAINT
    assert [recipient.address for recipient in report.recipients] == ["user@example.com"]
    assert report.feedback is not None
    assert report.feedback.original_mail_from == "somespammer@example.net"
    assert report.feedback.source_ip == "192.0.2.1"
    assert report.feedback.removal_recipient == ("user@example.com",)
    assert report.from_address == "abusedesk@example.com"
    assert report.subject == "FW: Earn money"


def test_yahoo_feedback_loop_keeps_the_verp_return_path() -> None:
    report = _parse("flanker/yahoo.eml")
    assert report.kind is InboundKind.COMPLAINT
    assert report.feedback is not None
    assert report.feedback.original_mail_from == "bounce+705f77.d4a-user=yahoo.com@example.com"
    assert [recipient.address for recipient in report.recipients] == ["user@yahoo.com"]
    assert report.original_message_ids == ("20120711015015.4A8BE2E088E@www.example.com",)
    assert ("Message-Id", "<20120711015015.4A8BE2E088E@www.example.com>") in report.original_headers


def test_aol_feedback_loop_with_a_redacted_recipient() -> None:
    report = _parse("flanker/aol.eml")
    assert report.kind is InboundKind.COMPLAINT
    assert report.feedback is not None
    assert report.feedback.user_agent == "AOL SComp"
    assert report.feedback.reported_domain == ("mars-34.example.com",)
    assert report.original_message_ids == ("20101117174130.28884.55421@luna",)


def test_opt_out_is_handled_as_a_complaint() -> None:
    report = _parse("email-arf-perl/example1.msg")
    assert report.kind is InboundKind.COMPLAINT
    assert report.feedback is not None
    assert report.feedback.feedback_type == "opt-out"
    assert [recipient.address for recipient in report.recipients] == ["user@example.com"]


def test_base64_encoded_feedback_part_is_decoded() -> None:
    report = _parse("parsedmarc-failure-rfc6591/[Netease DMARC Failure Report] Rent Reminder.eml")
    assert (report.kind, report.format) == (InboundKind.UNKNOWN, "arf:auth-failure")
    assert report.feedback is not None
    assert report.feedback.original_mail_from == "bounces+1137616-c1ad-xsj399=163.com@email.entrata.com"
    assert report.feedback.reported_domain == ("cardinal.com",)


def test_dmarc_failure_report_without_an_arf_part_is_not_an_auto_reply() -> None:
    report = _parse("parsedmarc-failure-rfc6591/exim_plain_text_only_no_arf_part.eml")
    assert (report.kind, report.format) == (InboundKind.UNKNOWN, "dmarc-failure")
    assert report.original_message_ids == ("134117F8-2145-AECE-9CCA-25FC98731341@example.com",)


def test_message_id_with_a_stray_space_is_compacted() -> None:
    name = (
        "parsedmarc-failure-rfc6591/"
        "DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml"
    )
    assert _parse(name).original_message_ids == ("38.E7.30937.BD6E1BB5@mailrelay.de",)


def test_not_spam_is_not_a_complaint() -> None:
    raw = (
        (DATA / "stalwart-mail-auth/001.eml")
        .read_bytes()
        .replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    )
    report = parse_inbound(raw)
    assert (report.kind, report.format) == (InboundKind.UNKNOWN, "arf:not-spam")

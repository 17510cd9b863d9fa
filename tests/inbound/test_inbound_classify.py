"""The hard/soft and reason tables, and explain()."""

from __future__ import annotations

import json

import pytest

from mailbeacon.inbound import BounceClass, BounceReason, explain, parse_inbound
from mailbeacon.inbound.classify import classify, find_reply_code, find_status, infer_status

H, S = BounceClass.HARD, BounceClass.SOFT
R = BounceReason


@pytest.mark.parametrize(
    ("status", "code", "diagnostic", "action", "expected"),
    [
        ("5.1.1", 550, "550 5.1.1 User unknown", "failed", (H, R.USER_UNKNOWN)),
        ("5.1.2", None, "Host unknown", "failed", (H, R.DOMAIN_UNKNOWN)),
        ("5.2.1", 550, "mailbox disabled", "failed", (H, R.USER_UNKNOWN)),
        ("5.2.2", 552, "Mailbox full", "failed", (S, R.MAILBOX_FULL)),
        ("4.2.2", 452, "over quota", "delayed", (S, R.MAILBOX_FULL)),
        ("4.4.7", None, "Delivery expired", "failed", (S, R.EXPIRED)),
        ("5.4.7", None, "delivery time expired", "failed", (S, R.EXPIRED)),
        ("4.4.1", None, "connection refused", "failed", (S, R.EXPIRED)),
        ("5.7.1", 550, "Message rejected as spam", "failed", (S, R.BLOCKED)),
        ("5.7.26", 550, "Unauthenticated email is not accepted: DMARC policy", "failed", (S, R.POLICY)),
        ("5.7.1", 554, "Relay access denied", "failed", (S, R.POLICY)),
        (
            "5.7.1",
            550,
            "5.7.1 <x@example.com>: Recipient address rejected: User unknown",
            "failed",
            (H, R.USER_UNKNOWN),
        ),
        ("5.3.4", 552, "Message size exceeds fixed limit", "failed", (S, R.OTHER)),
        ("5.0.0", 550, "550 Requested action not taken", "failed", (H, R.OTHER)),
        ("5.0.0", None, "no such user here", "failed", (H, R.USER_UNKNOWN)),
        (
            "5.1.10",
            550,
            "RESOLVER.ADR.RecipientNotFound; not found by SMTP address lookup",
            "failed",
            (H, R.USER_UNKNOWN),
        ),
        (
            None,
            553,
            "sorry, that domain isn't in my list of allowed rcpthosts",
            "failed",
            (H, R.USER_UNKNOWN),
        ),
        (None, None, "Sorry, no mailbox here by that name", None, (H, R.USER_UNKNOWN)),
        ("2.0.0", 250, "OK", "delivered", (None, None)),
        ("4.0.0", 421, "try again later", "delayed", (S, R.OTHER)),
    ],
)
def test_classification_table(
    status: str | None,
    code: int | None,
    diagnostic: str,
    action: str | None,
    expected: tuple[BounceClass | None, BounceReason | None],
) -> None:
    assert classify(status=status, remote_code=code, diagnostic=diagnostic, action=action) == expected


def test_without_any_code_the_detector_decides() -> None:
    assert classify(status=None, remote_code=None, diagnostic="???", action="failed", permanent=False) == (
        S,
        R.OTHER,
    )
    assert classify(status=None, remote_code=None, diagnostic="???", action="failed", permanent=True) == (
        H,
        R.OTHER,
    )


@pytest.mark.parametrize(
    ("text", "status", "code"),
    [
        ("smtp; 550-5.1.1 The email account", "5.1.1", 550),
        ("host mx[10.0.0.1] said: 452 4.2.2 over quota", "4.2.2", 452),
        ("Sorry, no mailbox here by that name. (#5.1.1)", "5.1.1", None),
        ("Exchange 6.5.7638.1 at 192.168.1.5, version 2.0.12", None, None),
        ("220 mx.example.com ESMTP ready", None, None),
    ],
)
def test_codes_are_found_in_text_and_version_numbers_are_not(
    text: str, status: str | None, code: int | None
) -> None:
    assert find_status(text) == status
    assert find_reply_code(text) == code


def test_status_is_inferred_from_wording_only_when_the_wording_is_specific() -> None:
    assert infer_status("unrouteable mail domain", permanent=True) == "5.1.2"
    assert infer_status("Mailbox full", permanent=False) == "4.2.2"
    assert infer_status("Could not initiate SMTP conversation with any hosts", permanent=True) == "5.3.2"
    assert infer_status("something odd happened", permanent=True) is None


def test_explain_is_json_with_the_fields_a_user_checks() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <n1@mx.example.net>\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; a@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n"
        b"--B\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Message-ID: <orig@mb.example>\r\nSubject: hi\r\n\r\nhi\r\n--B--\r\n"
    )
    explained = explain(parse_inbound(raw))
    assert json.loads(json.dumps(explained)) == explained
    assert explained["kind"] == "bounce"
    assert explained["format"] == "dsn"
    assert explained["recipients"] == [
        {
            "address": "a@example.com",
            "original_address": None,
            "action": "failed",
            "status": "5.1.1",
            "remote_code": 550,
            "diagnostic": "550 5.1.1 no such user",
            "remote_mta": None,
            "class": "hard",
            "reason": "user_unknown",
        }
    ]
    assert explained["original_message_ids"] == ["orig@mb.example"]
    assert explained["message_id"] == "n1@mx.example.net"
    assert explained["feedback"] is None
    assert explained["problems"] == []


def test_explain_of_a_complaint_has_the_feedback_fields() -> None:
    from pathlib import Path

    raw = (Path(__file__).resolve().parents[1] / "data/arf/stalwart-mail-auth/002.eml").read_bytes()
    explained = explain(parse_inbound(raw))
    feedback = explained["feedback"]
    assert isinstance(feedback, dict)
    assert feedback["feedback_type"] == "abuse"
    assert feedback["original_rcpt_to"] == ["user@example.com"]
    assert feedback["source_ip"] == "192.0.2.1"
    assert json.loads(json.dumps(explained)) == explained

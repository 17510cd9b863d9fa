"""Replies and auto-replies, from fixtures written with real-looking headers."""

from __future__ import annotations

import pytest

from mailbeacon.inbound import InboundKind, parse_inbound

_HEAD = (
    "Return-Path: <jane.doe@example.org>\r\n"
    "Delivered-To: b+7f3a9c@bounces.mailbeacon.example\r\n"
    "Received: from mail-ed1-f54.google.com (mail-ed1-f54.google.com [209.85.208.54])\r\n"
    "\tby mx.mailbeacon.example (Postfix) with ESMTPS id 4Q2kLm1xyz\r\n"
    "\tfor <news@send.mailbeacon.example>; Tue, 14 May 2024 09:12:44 +0000 (UTC)\r\n"
    "Date: Tue, 14 May 2024 11:12:40 +0200\r\n"
    "From: Jane Doe <jane.doe@Example.ORG>\r\n"
    'To: "Acme News" <news@send.mailbeacon.example>\r\n'
    "Message-ID: <CAF=reply-1@mail.gmail.com>\r\n"
    "In-Reply-To: <01HXYZ.copy-42@mb.example.com>\r\n"
    "References: <thread-start@mb.example.com> <01HXYZ.copy-42@mb.example.com>\r\n"
    "MIME-Version: 1.0\r\n"
)


def _mail(subject: str, extra_headers: str = "", body: str = "Thanks, see you Monday.\r\n") -> bytes:
    return (
        _HEAD
        + extra_headers
        + f"Subject: {subject}\r\n"
        + "Content-Type: text/plain; charset=UTF-8\r\n\r\n"
        + body
    ).encode("utf-8")


def test_human_reply() -> None:
    report = parse_inbound(
        _mail("Re: Your May invoice", body="Paid, thanks!\r\n\r\n> Your invoice is attached.\r\n")
    )
    assert (report.kind, report.format) == (InboundKind.REPLY, "reply")
    assert report.from_address == "jane.doe@example.org"
    assert report.to_addresses == ("news@send.mailbeacon.example", "b+7f3a9c@bounces.mailbeacon.example")
    assert report.message_id == "CAF=reply-1@mail.gmail.com"
    assert report.in_reply_to == ("01HXYZ.copy-42@mb.example.com", "thread-start@mb.example.com")
    assert report.subject == "Re: Your May invoice"
    assert report.recipients == ()
    assert report.auto_reply_reason is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("Auto-Submitted: auto-replied\r\n", "Auto-Submitted: auto-replied"),
        (
            "Auto-Submitted: auto-generated\r\nX-Auto-Response-Suppress: All\r\n"
            "X-MS-Exchange-Inbox-Rules-Loop: jane.doe@example.org\r\n",
            "Auto-Submitted: auto-generated",
        ),
        ("X-Autoreply: yes\r\n", "X-Autoreply: yes"),
        ("X-Autorespond: Jane is away\r\n", "X-Autorespond: Jane is away"),
        ("Precedence: auto_reply\r\n", "Precedence: auto_reply"),
        ("X-Precedence: auto_reply\r\n", "X-Precedence: auto_reply"),
    ],
)
def test_auto_reply_headers(headers: str, reason: str) -> None:
    report = parse_inbound(_mail("Re: Your May invoice", headers))
    assert (report.kind, report.format, report.auto_reply_reason) == (
        InboundKind.AUTO_REPLY,
        "auto_reply",
        reason,
    )
    assert report.in_reply_to[0] == "01HXYZ.copy-42@mb.example.com"


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Your May invoice",
        "Automatic reply: Your May invoice",
        "AutoReply: Your May invoice",
        "Auto-Reply: Your May invoice",
        "Abwesenheitsnotiz: Ihre Rechnung",
        "Automatische Antwort: Ihre Rechnung",
        "=?utf-8?q?R=C3=A9ponse_automatique_=3A_Votre_facture?=",
        "=?utf-8?q?Respuesta_autom=C3=A1tica=3A_Su_factura?=",
        "Risposta automatica: La sua fattura",
        "Automatisch antwoord: Uw factuur",
        "=?utf-8?b?6Ieq5YuV5b+c562U?=",
        "=?utf-8?b?6Ieq5Yqo5Zue5aSNOiDlj5Hnpag=?=",
        "=?utf-8?b?0JDQstGC0L7QvtGC0LLQtdGCOiDQodGH0LXRgg==?=",
        "RE: I am on vacation until June 3",
    ],
)
def test_out_of_office_subjects_in_common_languages(subject: str) -> None:
    report = parse_inbound(_mail(subject))
    assert report.kind is InboundKind.AUTO_REPLY
    assert report.auto_reply_reason is not None
    assert report.auto_reply_reason.startswith("Subject: ")


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Vacation plans for the team",
        "Re: Absence of the invoice number",
        "Out of stock?",
        "Re: office party",
    ],
)
def test_ordinary_subjects_stay_replies(subject: str) -> None:
    assert parse_inbound(_mail(subject)).kind is InboundKind.REPLY


def test_auto_submitted_no_is_a_human_reply() -> None:
    assert parse_inbound(_mail("Re: Your May invoice", "Auto-Submitted: no\r\n")).kind is InboundKind.REPLY


def test_newsletter_is_unknown_not_a_reply() -> None:
    headers = "List-Id: Acme customers <customers.acme.example>\r\nPrecedence: list\r\n"
    report = parse_inbound(_mail("Our spring catalogue", headers))
    assert (report.kind, report.format) == (InboundKind.UNKNOWN, "bulk")


def test_bounce_carrying_auto_submitted_is_still_a_bounce() -> None:
    raw = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        b"To: b+7f3a9c@bounces.mailbeacon.example\r\n"
        b"Subject: Mail delivery failed: returning message to sender\r\n"
        b"Auto-Submitted: auto-replied\r\n"
        b"X-Failed-Recipients: gone@example.net\r\n"
        b"Message-Id: <E1abc-0001@mx.example.net>\r\n\r\n"
        b"This message was created automatically by mail delivery software.\r\n\r\n"
        b"A message that you sent could not be delivered to one or more of its\r\n"
        b"recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        b"  gone@example.net\r\n"
        b"    host mx.example.net [192.0.2.7]\r\n"
        b"    SMTP error from remote mail server after RCPT TO:<gone@example.net>:\r\n"
        b"    550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown\r\n\r\n"
        b"------ This is a copy of the message, including all the headers. ------\r\n\r\n"
        b"Message-ID: <01HXYZ.copy-42@mb.example.com>\r\n"
        b"X-Mailbeacon-Copy: 42\r\n"
        b"Subject: Your May invoice\r\n\r\nHello\r\n"
    )
    report = parse_inbound(raw)
    assert (report.kind, report.format) == (InboundKind.BOUNCE, "flufl:exim")
    [recipient] = report.recipients
    assert (recipient.address, recipient.status, recipient.remote_code) == ("gone@example.net", "5.1.1", 550)
    assert report.original_message_ids == ("01HXYZ.copy-42@mb.example.com",)
    assert report.to_addresses == ("b+7f3a9c@bounces.mailbeacon.example",)

"""RFC 3464 DSNs built here for the cases the corpus lacks: mixed actions, missing blank lines, encodings."""

from __future__ import annotations

from mailbeacon.inbound import BounceClass, BounceReason, InboundKind, parse_inbound

_TOP = (
    "Return-Path: <>\r\n"
    "Delivered-To: b+c0ffee@bounces.mailbeacon.example\r\n"
    "From: MAILER-DAEMON@mx1.example.net (Mail Delivery System)\r\n"
    "To: b+c0ffee@bounces.mailbeacon.example\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Message-Id: <20240514091244.4Q2kLm1xyz@mx1.example.net>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
    "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n\r\n"
)
_ORIGINAL = (
    "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    "From: Acme <news@send.mailbeacon.example>\r\n"
    "To: a@example.com, b@example.com\r\n"
    "Subject: Your May invoice\r\n"
    "Message-ID: <01HXYZ.copy-42@mb.example.com>\r\n"
    "Return-Path: <b+c0ffee@bounces.mailbeacon.example>\r\n"
    "X-Mailbeacon-Copy: c0ffee\r\n"
    "List-Unsubscribe: <https://t.mailbeacon.example/u/abc>\r\n"
    "Received: from x by y\r\n\r\n"
    "--B--\r\n"
)


def _dsn(status_part: str, headers: str = "Content-Type: message/delivery-status\r\n") -> bytes:
    return (_TOP + "--B\r\n" + headers + "\r\n" + status_part + "\r\n" + _ORIGINAL).encode()


_MIXED = (
    "Reporting-MTA: dns; mx1.example.net\r\nArrival-Date: Tue, 14 May 2024 09:12:40 +0000\r\n\r\n"
    "Original-Recipient: rfc822;A@Example.COM\r\nFinal-Recipient: rfc822; a@example.com\r\nAction: failed\r\n"
    "Status: 5.1.1\r\nRemote-MTA: dns; mx.example.com\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <a@example.com>: Recipient address\r\n rejected: User unknown\r\n\r\n"
    "Final-Recipient: rfc822; b@example.com\r\nAction: delayed\r\nStatus: 4.2.2\r\n"
    "Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\r\nWill-Retry-Until: Fri, 17 May 2024 09:12:40 +0000\r\n"
)


def test_mixed_failed_and_delayed_is_a_bounce_keeping_each_action() -> None:
    report = parse_inbound(_dsn(_MIXED))
    assert (report.kind, report.format) == (InboundKind.BOUNCE, "dsn")
    first, second = report.recipients
    assert (first.address, first.original_address, first.action, first.status, first.remote_code) == (
        "a@example.com",
        "A@example.com",
        "failed",
        "5.1.1",
        550,
    )
    assert first.diagnostic == "550 5.1.1 <a@example.com>: Recipient address rejected: User unknown"
    assert first.remote_mta == "mx.example.com"
    assert (first.bounce_class, first.reason) == (BounceClass.HARD, BounceReason.USER_UNKNOWN)
    assert (second.address, second.action, second.status, second.remote_code) == (
        "b@example.com",
        "delayed",
        "4.2.2",
        452,
    )
    assert (second.bounce_class, second.reason) == (BounceClass.SOFT, BounceReason.MAILBOX_FULL)


def test_the_original_headers_and_message_id_are_kept() -> None:
    report = parse_inbound(_dsn(_MIXED))
    assert report.original_message_ids == ("01HXYZ.copy-42@mb.example.com",)
    assert report.original_headers == (
        ("From", "Acme <news@send.mailbeacon.example>"),
        ("To", "a@example.com, b@example.com"),
        ("Subject", "Your May invoice"),
        ("Message-ID", "<01HXYZ.copy-42@mb.example.com>"),
        ("Return-Path", "<b+c0ffee@bounces.mailbeacon.example>"),
        ("X-Mailbeacon-Copy", "c0ffee"),
        ("List-Unsubscribe", "<https://t.mailbeacon.example/u/abc>"),
    )
    assert report.to_addresses == ("b+c0ffee@bounces.mailbeacon.example",)
    assert report.message_id == "20240514091244.4Q2kLm1xyz@mx1.example.net"
    assert report.from_address == "MAILER-DAEMON@mx1.example.net"


def test_all_delayed_is_a_delay() -> None:
    status = "Reporting-MTA: dns; mx1.example.net\r\n\r\n"
    status += "Final-Recipient: rfc822; b@example.com\r\nAction: delayed\r\n"
    status += "Status: 4.4.1\r\nDiagnostic-Code: smtp; 421 4.4.1 Connection timed out\r\n"
    report = parse_inbound(_dsn(status))
    assert report.kind is InboundKind.DELAY
    [recipient] = report.recipients
    assert (recipient.action, recipient.status, recipient.remote_code, recipient.bounce_class) == (
        "delayed",
        "4.4.1",
        421,
        BounceClass.SOFT,
    )


def test_recipients_without_a_blank_line_between_them_come_apart() -> None:
    status = (
        "Reporting-MTA: dns; mx1.example.net\r\n\r\n"
        "Final-Recipient: rfc822; a@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Final-Recipient: rfc822; b@example.com\r\nAction: failed\r\nStatus: 5.2.2\r\n"
    )
    report = parse_inbound(_dsn(status))
    assert [(r.address, r.status, r.reason) for r in report.recipients] == [
        ("a@example.com", "5.1.1", BounceReason.USER_UNKNOWN),
        ("b@example.com", "5.2.2", BounceReason.MAILBOX_FULL),
    ]


def test_base64_delivery_status_and_global_dsn() -> None:
    import base64

    status = "Final-Recipient: rfc822; a@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    encoded = base64.encodebytes(("Reporting-MTA: dns; mx\r\n\r\n" + status).encode()).decode()
    headers = "Content-Type: message/global-delivery-status\r\nContent-Transfer-Encoding: base64\r\n"
    report = parse_inbound(_dsn(encoded, headers))
    assert [(r.address, r.status) for r in report.recipients] == [("a@example.com", "5.1.1")]


def test_generic_status_is_refined_by_the_diagnostic_and_text_gives_the_reason() -> None:
    status = (
        "Final-Recipient: rfc822; a@example.com\r\nAction: failed\r\nStatus: 5.0.0\r\n"
        "Diagnostic-Code: smtp; 554 5.7.1 Service unavailable;"
        " Client host [192.0.2.9] blocked using zen.spamhaus.org\r\n"
    )
    [recipient] = parse_inbound(_dsn(status)).recipients
    assert (recipient.status, recipient.remote_code) == ("5.7.1", 554)
    assert (recipient.bounce_class, recipient.reason) == (BounceClass.SOFT, BounceReason.BLOCKED)


def test_successful_delivery_notice_is_not_a_bounce() -> None:
    status = "Final-Recipient: rfc822; a@example.com\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
    report = parse_inbound(_dsn(status))
    assert report.kind is InboundKind.UNKNOWN
    [recipient] = report.recipients
    assert (recipient.action, recipient.status, recipient.bounce_class, recipient.reason) == (
        "delivered",
        "2.0.0",
        None,
        None,
    )

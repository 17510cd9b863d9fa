"""parse_inbound never raises and stays fast, whatever it is given."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.inbound import InboundKind, explain, parse_inbound

DATA: Final = Path(__file__).resolve().parents[1] / "data"
MIME: Final = DATA / "bounces" / "mime-flanker"
MIME_CORPUS: Final = DATA / "mime"
ALL_SAMPLES: Final = sorted(
    path
    for path in DATA.joinpath("bounces").rglob("*")
    if path.is_file() and path.suffix in {".eml", ".txt", ".msg"}
) + sorted(path for path in DATA.joinpath("arf").rglob("*.eml"))


@pytest.mark.parametrize("path", sorted(MIME.rglob("*.eml")), ids=lambda p: str(p.relative_to(MIME)))
def test_malformed_mime_never_raises_and_is_not_feedback(path: Path) -> None:
    started = time.monotonic()
    report = parse_inbound(path.read_bytes())
    assert time.monotonic() - started < 10
    assert report.kind in {InboundKind.REPLY, InboundKind.AUTO_REPLY, InboundKind.UNKNOWN}
    json.dumps(explain(report))


def test_ordinary_and_broken_messages_come_out_as_replies_or_unknown() -> None:
    kinds = {path.name: parse_inbound(path.read_bytes()) for path in MIME.glob("*.eml")}
    assert kinds["text-only.eml"].kind is InboundKind.REPLY
    assert kinds["missing-boundaries.eml"].kind is InboundKind.REPLY
    assert (kinds["disposition-notification.eml"].kind, kinds["disposition-notification.eml"].format) == (
        InboundKind.UNKNOWN,
        "report:disposition-notification",
    )
    assert kinds["missing-final-boundary.eml"].problems


def test_the_1_8_mb_torture_test_is_read_in_bounded_time() -> None:
    raw = (MIME / "torture.eml").read_bytes()
    assert len(raw) > 1_800_000
    started = time.monotonic()
    report = parse_inbound(raw)
    assert time.monotonic() - started < 5
    assert report.kind is InboundKind.REPLY


def test_the_whole_mime_corpus_never_raises() -> None:
    paths = sorted(MIME_CORPUS.rglob("*"))
    assert len(paths) > 90
    for path in paths:
        if path.is_file() and path.suffix in {".eml", ".txt"}:
            started = time.monotonic()
            json.dumps(explain(parse_inbound(path.read_bytes())))
            assert time.monotonic() - started < 10, path


def test_a_huge_bounce_is_cut_before_the_heuristic_detectors() -> None:
    raw = (DATA / "bounces" / "flufl.bounce" / "qmail_03.txt").read_bytes() + b"\n" + b"x" * 3_000_000 + b"\n"
    started = time.monotonic()
    report = parse_inbound(raw)
    assert time.monotonic() - started < 5
    assert [recipient.address for recipient in report.recipients] == ["userx@example.jp"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"From: \r\n\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nno boundary at all",
        b"Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822;\r\nAction: failed\r\n",
        b"Content-Type: text/plain; charset=x-no-such-charset\r\nFrom: a@b.example\r\n\r\n\xe9t\xe9",
        b"Subject: =?x-unknown?q?broken?=\r\nFrom: =?utf-8?b?!!!?= <a@b.example>\r\n\r\nhi",
        b"Message-ID: <" + b"a" * 5000 + b">\r\nReferences: " + b"<x@y> " * 5000 + b"\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        + b"--x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n" * 500,
    ],
)
def test_garbage_gives_a_report(raw: bytes) -> None:
    report = parse_inbound(raw)
    assert report.kind in set(InboundKind)
    json.dumps(explain(report))


@pytest.mark.parametrize("raw", [b"", b"\x00\xff\xfe garbage", None])
def test_unreadable_input_is_unknown_with_the_problem_noted(raw: bytes) -> None:
    report = parse_inbound(raw)
    assert report.kind is InboundKind.UNKNOWN
    assert "no header fields: not a mail message" in report.problems


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    json.dumps(explain(parse_inbound(raw)))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_corrupted_samples_never_raise(data: st.DataObject) -> None:
    raw = data.draw(st.sampled_from(ALL_SAMPLES)).read_bytes()[:60_000]
    start = data.draw(st.integers(0, max(0, len(raw) - 1)))
    length = data.draw(st.integers(0, 400))
    junk = data.draw(st.binary(max_size=200))
    json.dumps(explain(parse_inbound(raw[:start] + junk + raw[start + length :])))

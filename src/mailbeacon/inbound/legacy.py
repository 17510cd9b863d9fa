"""Bounces that are not RFC 3464 DSNs (Exim, qmail, Exchange, old Sendmail, Postfix without DSN, Yahoo,
GroupWise, Gmail's old text notices ...): flufl.bounce's detectors find the addresses (a few patterns of our
own catch what they miss); the status code, reply code and diagnostic come from the text around each address.
When that text gives no enhanced status code, one is inferred from its wording (classify.infer_status)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import Message
from typing import Final

from flufl.bounce import BounceDetector
from flufl.bounce._scan import _DETECTORS

from mailbeacon.inbound.classify import classify, find_reply_code, find_status, infer_status
from mailbeacon.inbound.message import addresses, header_texts, load, normalize_address, part_text, walk
from mailbeacon.inbound.report import AffectedRecipient

# flufl.bounce's heuristic detectors are linear but slow (about 1 s per MB); the failure notice is always near
# the top, so they only see the head of a big message.
MAX_SCANNED: Final = 256 * 1024
_MAX_TEXT: Final = 64 * 1024
_MAX_CONTEXT_LINES: Final = 12
_MAX_DIAGNOSTIC: Final = 1000

# Where the quoted original starts in the text of a non-DSN bounce.
_ORIGINAL_MARKER: Final = re.compile(
    r"^[ \t>-]*+(?:-{2,}+ ?+)?+(?:start of )?+(?:"
    r"this is a copy of the message|original message follows|original message|below this line is a copy"
    r"|returned message|unsent message below|the header of the original message|undelivered message"
    r"|message headers follow|your message reads"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_BLANK: Final = re.compile(r"\n[ \t]*+\n")
_SPACES: Final = re.compile(r"[ \t\r\n]++")

_ADDR: Final = r"[^\s<>\"'@()\[\],;:]{1,128}+@(?:[A-Za-z0-9\-]{1,63}+\.)++[A-Za-z]{2,63}+"
# Notices flufl.bounce has no detector for: (pattern naming the failed address, permanent?).
_TEXT_RECIPIENTS: Final[tuple[tuple[re.Pattern[str], bool], ...]] = tuple(
    (re.compile(pattern, re.IGNORECASE | re.MULTILINE), permanent)
    for pattern, permanent in (
        (rf"^<(?P<a>{_ADDR})>:[ \t]", True),  # Postfix without DSN, qmail
        (rf"following (?:recipient|address)(?:\(s\)|es|s)?+ failed permanently:\s*+<?(?P<a>{_ADDR})", True),
        (
            rf"following (?:recipient|address)(?:\(s\)|es|s)?+ (?:has been )?+delayed:\s*+<?(?P<a>{_ADDR})",
            False,
        ),
        (rf"delivery of (?:e-?mail|your message) to this address\s*+\"?<?(?P<a>{_ADDR})", True),
        (rf"delivery failed \d{{1,4}} attempts:\s*+<?(?P<a>{_ADDR})", True),
        (
            rf"your message\s++to:[ \t]*+<?(?P<a>{_ADDR})>?[^\n]{{0,200}}+\n"
            r"(?:[^\n]{0,300}+\n){0,4}?did not reach",
            True,
        ),
    )
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LegacyResult:
    detector: str
    recipients: tuple[AffectedRecipient, ...]


def _run_detectors(msg: Message) -> tuple[str, list[tuple[str, bool]]] | None:
    """(detector name, [(address, permanent)]) from the first flufl.bounce detector that finds anything."""
    detectors: list[type[BounceDetector]] = list(_DETECTORS)
    for detector_class in detectors:
        try:
            temporary, permanent = detector_class().process(msg)
        except Exception:
            log.debug("flufl.bounce detector %s failed", detector_class.__name__, exc_info=True)
            continue
        found: list[tuple[str, bool]] = []
        for raw, is_permanent in [(a, True) for a in sorted(permanent)] + [
            (a, False) for a in sorted(temporary)
        ]:
            address = normalize_address(raw.decode("ascii", errors="replace"))
            if address and all(address != seen for seen, _ in found):
                found.append((address, is_permanent))
        if found:
            return detector_class.__module__.rsplit(".", 1)[-1], found
    return None


def notice_text(msg: Message, problems: list[str]) -> str:
    """The human-readable failure notice: the text parts outside any attached original, cut where a quoted
    original begins."""
    chunks: list[str] = []
    inside_attached: set[int] = set()
    for part in walk(msg):
        if id(part) in inside_attached:
            continue
        if part.get_content_maintype() == "message" and part is not msg:
            for sub in part.walk():
                inside_attached.add(id(sub))
            continue
        if part.get_content_type() in {"text/plain", "text/html"} or (
            part is msg and not part.is_multipart() and part.get_content_maintype() != "message"
        ):
            text = part_text(part, problems)
            if part.get_content_type() == "text/html":
                text = re.sub(r"<[^<>]{0,2000}+>", " ", text)
            chunks.append(text)
        if sum(len(c) for c in chunks) > _MAX_TEXT:
            break
    text = "\n\n".join(chunks)[:_MAX_TEXT].replace("\r\n", "\n")
    marker = _ORIGINAL_MARKER.search(text)
    if marker and marker.start() > 0:
        text = text[: marker.start()]
    return text


def _context(text: str, address: str) -> str:
    """The paragraph naming the address, plus the next one when that paragraph is little more than the
    address (Gmail, some Exchange servers)."""
    lowered = text.lower()
    position = lowered.find(address.lower())
    if position < 0:
        local = address.rsplit("@", 1)[0].lower()
        position = lowered.find(local)
    if position < 0:
        return ""
    start = lowered.rfind("\n", 0, position) + 1
    paragraphs = _BLANK.split(text[start:], maxsplit=3)
    context = paragraphs[0]
    if len(context.replace(address, "").strip(" \t\n<>:,.-")) < 12 and len(paragraphs) > 1:
        context = context + "\n" + paragraphs[1]
        if len(paragraphs) > 2 and find_status(context) is None and find_reply_code(context) is None:
            context = context + "\n" + paragraphs[2]
    return "\n".join(context.splitlines()[:_MAX_CONTEXT_LINES])


def _recipient(address: str, permanent: bool, text: str, only_one: bool) -> AffectedRecipient:
    context = _context(text, address)
    status = find_status(context)
    remote_code = find_reply_code(context)
    if only_one and status is None:
        status = find_status(text)
    if only_one and remote_code is None:
        remote_code = find_reply_code(text)
    if status and remote_code and status[0] != str(remote_code)[0]:
        remote_code = None
    diagnostic = _SPACES.sub(" ", context).strip()[:_MAX_DIAGNOSTIC] or None
    if diagnostic and not diagnostic.replace(address, "").strip(" <>:,.-\"'"):
        diagnostic = None  # the notice names the address and says nothing more
    if status is None:
        status = infer_status(diagnostic, permanent=permanent)
    action = "failed" if permanent else "delayed"
    bounce_class, reason = classify(
        status=status, remote_code=remote_code, diagnostic=diagnostic, action=action, permanent=permanent
    )
    return AffectedRecipient(
        address=address,
        action=action,
        status=status,
        remote_code=remote_code,
        diagnostic=diagnostic,
        bounce_class=bounce_class,
        reason=reason,
    )


def _own_detectors(msg: Message, text: str) -> tuple[str, list[tuple[str, bool]]] | None:
    failed = addresses(header_texts(msg, "X-Failed-Recipients"))
    if failed:
        return "x-failed-recipients", [(address, True) for address in failed]
    # Some servers put DSN fields among the message headers instead of in a delivery-status part.
    in_headers = addresses(header_texts(msg, "Original-Recipient") + header_texts(msg, "Final-Recipient"))
    if in_headers:
        return "header-fields", [(in_headers[0], True)]
    found: list[tuple[str, bool]] = []
    for pattern, permanent in _TEXT_RECIPIENTS:
        for match in pattern.finditer(text):
            address = normalize_address(match.group("a"))
            if address and all(address != seen for seen, _ in found):
                found.append((address, permanent))
    return ("text", found) if found else None


def parse_legacy(raw: bytes, msg: Message, problems: list[str]) -> LegacyResult | None:
    scanned = msg if len(raw) <= MAX_SCANNED else load(raw[:MAX_SCANNED])
    detected = _run_detectors(scanned)
    text = notice_text(msg, problems)
    if detected is None:
        detected = _own_detectors(msg, text)
    if detected is None:
        return None
    name, found = detected
    recipients = tuple(_recipient(address, permanent, text, len(found) == 1) for address, permanent in found)
    return LegacyResult(name, recipients)

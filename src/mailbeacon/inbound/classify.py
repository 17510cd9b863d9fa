"""Hard or soft, and why: from the enhanced status code, the SMTP reply code and the remote server's text.

The reason is taken from the first of these that says something specific:

1. the diagnostic text (``_TEXT_REASONS``, first matching phrase wins): servers often send a generic
   ``5.0.0`` or a catch-all ``5.7.1`` with a precise sentence;
2. the enhanced status code, by ``subject.detail`` then by subject (``_STATUS_REASONS``);
3. the SMTP reply code (``_REPLY_REASONS``);
4. otherwise ``other``.

The class then follows this table (the address is what hard/soft is about: hard means "stop sending to
this address"):

==================================  =====  ===================================================
situation                           class  why
==================================  =====  ===================================================
DSN action ``delayed``              soft   still being retried
status 4.x.x / reply code 4xx       soft   transient by definition
reason ``mailbox_full`` (5.2.2)     soft   the mailbox exists; it may be emptied
reason ``expired`` (4.4.7, 5.4.7)   soft   delivery timed out; the address may be fine
action ``failed`` with a 4.x.x      soft   the server gave up retrying: reason ``expired``
reason ``blocked`` / ``policy``     soft   the block is about our message, IP or domain, not the
                                           address (spam filters, blocklists, DMARC, relaying)
status 5.2.3 / 5.3.4 (too large)    soft   the message, not the address, was refused
any other 5.x.x / 5xx               hard   user unknown, domain unknown, disabled mailbox, other
                                           (5.1.1, 5.1.2, 5.2.1, 5.4.4, 5.0.0 with no better clue)
no code: detector said permanent    hard   (non-DSN bounces) unless the reason is soft above
no code: detector said temporary    soft
==================================  =====  ===================================================
"""

from __future__ import annotations

import re
from typing import Final

from mailbeacon.inbound.report import BounceClass, BounceReason

_STATUS: Final = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
_FAILURE_STATUS: Final = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
_LEADING_REPLY_CODE: Final = re.compile(
    r"\s*+(?:[a-z\-]{1,20}+\s*+;\s*+)?+([245]\d\d)(?![\d.])", re.IGNORECASE
)
_REPLY_CODE: Final = re.compile(r"(?<![\w.#:/\-])([45][0-5]\d)(?=[ \-][ \d<A-Za-z\[#]|$)", re.MULTILINE)

_R = BounceReason


def _phrases(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(patterns), re.IGNORECASE)


_TEXT_REASONS: Final[tuple[tuple[re.Pattern[str], BounceReason], ...]] = (
    (
        _phrases(
            r"mailbox (?:is )?+full",
            r"over ?+quota",
            r"quota (?:exceeded|full)",
            r"exceed(?:s|ed)? (?:the |his |her |their |its )?+(?:storage|quota|mailbox size)",
            r"mailbox size limit",
            r"insufficient (?:disk |system )?+(?:space|storage)",
            r"user has (?:exhausted|exceeded) (?:allowed )?+storage",
            r"disk ?+quota",
            r"mail ?box (?:is )?+(?:over|exceed|to[o]? full)",
            r"too much mail",
            r"storage (?:allocation|limit) exceeded",
            r"full mailbox",
            r"account is full",
        ),
        _R.MAILBOX_FULL,
    ),
    (
        _phrases(
            r"dns error: domain name not found",
            r"domain (?:name )?+not found",
            r"host (?:or domain name )?+not found",
            r"host ?+unknown",
            r"unknown (?:host|domain)",
            r"no such domain",
            r"unrouteable (?:mail )?+domain",
            r"domain (?:does not|doesn't) exist",
            r"no mx (?:or a )?+(?:record )?+for",
            r"name ?server error",
            r"name service error",
            r"mx lookup failed",
            r"bad destination (?:system|host)",
        ),
        _R.DOMAIN_UNKNOWN,
    ),
    (
        _phrases(
            r"user ?+unknown",
            r"unknown (?:user|recipient|local[ -]part|address|mailbox)",
            r"no such (?:user|mailbox|recipient|address|person)",
            r"(?:user|recipient|address|mailbox|account)(?: address)? (?:\S{1,100}+ )?+"
            r"(?:does not|doesn't|doesnt) exist",
            r"(?:user|recipient|mailbox|account|address) (?:\S{1,100}+ )?+not (?:found|known|listed)",
            r"(?:recipient|address|mailbox|account) (?:is )?+"
            r"(?:unavailable|disabled|inactive|deactivated|suspended)",
            r"(?:account|mailbox) (?:has been|is) "
            r"(?:disabled|deactivated|suspended|closed|terminated|removed)",
            r"not (?:a )?+valid (?:user|recipient|mailbox|address)",
            r"invalid (?:user|recipient|mailbox|address)",
            r"unrouteable address",
            r"mailbox not (?:found|available)",
            r"no mailbox",
            r"recipient(?: address)? rejected",
            r"address rejected",
            r"(?:was|is) not (?:found|recogni[sz]ed) (?:by|in)",
            r"not our customer",
            r"(?:does not|doesn't) have an? (?:\S{1,60}+ )?+account",
            r"no longer (?:with|available|active|valid)",
            r"user (?:name )?+(?:is )?+not (?:listed|found|known)",
            r"addressee unknown",
            r"no such local user",
            r"not a known user",
            r"bad recipient",
            r"recipientnotfound",
            r"not listed in (?:domino )?+directory",
            r"utilisateur non recens",
        ),
        _R.USER_UNKNOWN,
    ),
    (
        _phrases(
            r"spam",
            r"block ?+list",
            r"black ?+list",
            r"\bblocked\b",
            r"\brbl\b",
            r"dnsbl",
            r"reputation",
            r"listed (?:at|on|in)",
            r"junk ?mail",
            r"virus",
            r"malware",
            r"content (?:rejected|filter)",
            r"message (?:content )?+(?:was )?+rejected as",
            r"rejected due to (?:content|security)",
            r"filtered",
        ),
        _R.BLOCKED,
    ),
    (
        _phrases(
            r"polic(?:y|ies)",
            r"not authori[sz]ed",
            r"relay(?:ing)? (?:access )?+(?:denied|not permitted|not allowed|prohibited)",
            r"\bdmarc\b",
            r"\bspf\b",
            r"\bdkim\b",
            r"access denied",
            r"not permitted",
            r"prohibited",
            r"moderator",
            r"authentication required",
        ),
        _R.POLICY,
    ),
    (
        _phrases(
            r"retry (?:time(?:out)? )?+(?:exceeded|expired)",
            r"(?:delivery|message) (?:time )?+expired",
            r"expired in queue",
            r"could not be delivered (?:for|within) \d",
            r"cannot send message for \d",
            r"not (?:yet )?+been delivered",
            r"giving up",
            r"delayed \d",
            r"has been delayed",
            r"still (?:being )?+retr(?:y|ied)",
            r"too long in queue",
            r"delivery (?:has )?+failed \d+ attempts",
        ),
        _R.EXPIRED,
    ),
)

_STATUS_REASONS: Final[dict[str, BounceReason]] = {
    "1.0": _R.USER_UNKNOWN,
    "1.1": _R.USER_UNKNOWN,
    "1.2": _R.DOMAIN_UNKNOWN,
    "1.3": _R.USER_UNKNOWN,
    "1.4": _R.USER_UNKNOWN,
    "1.6": _R.USER_UNKNOWN,
    "1.7": _R.POLICY,
    "1.8": _R.POLICY,
    "1.10": _R.DOMAIN_UNKNOWN,
    "2.1": _R.USER_UNKNOWN,
    "2.2": _R.MAILBOX_FULL,
    "4.4": _R.DOMAIN_UNKNOWN,
    "4.7": _R.EXPIRED,
    "7.1": _R.BLOCKED,
    # subjects, when the detail is not listed
    "7": _R.POLICY,
}

_REPLY_REASONS: Final[dict[int, BounceReason]] = {
    551: _R.USER_UNKNOWN,
    552: _R.MAILBOX_FULL,
    553: _R.USER_UNKNOWN,
    452: _R.MAILBOX_FULL,
}

# Codes precise enough to beat the diagnostic text (5.7.x and x.0.0 are not: servers use them for anything).
# Not 1.10 (null MX, RFC 7505): Microsoft 365 sends 5.1.10 for "recipient not found".
_TRUSTED_STATUSES: Final = frozenset({"1.1", "1.2", "2.1", "2.2", "4.4", "4.7", "2.3", "3.4"})
_TOO_LARGE: Final = re.compile(
    r"message (?:size|length) exceeds|(?:message|mail) (?:is )?+too (?:large|big)"
    r"|maximum (?:inbound )?+message size",
    re.IGNORECASE,
)
_SOFT_REASONS: Final = frozenset({_R.MAILBOX_FULL, _R.EXPIRED, _R.BLOCKED, _R.POLICY})


def suppresses(bounce_class: BounceClass | None, reason: BounceReason | None) -> bool:
    """Whether a bounce means the address itself cannot be mailed: a hard bounce, unless the refusal
    was about the sender (blocked as spam, a policy), when the next message may well arrive."""
    return bounce_class is BounceClass.HARD and reason not in (_R.BLOCKED, _R.POLICY)


_SOFT_STATUSES: Final = frozenset({"2.3", "3.4"})
_NOT_FAILED: Final = frozenset({"delivered", "relayed", "expanded"})


def find_status(text: str | None, *, classes: str = "45") -> str | None:
    """The first RFC 3463 enhanced status code in the text, e.g. ``5.1.1``; success codes (2.x.x) only when
    `classes` asks for them (a DSN's Status field), as free text is full of version numbers."""
    if not text:
        return None
    match = (_STATUS if "2" in classes else _FAILURE_STATUS).search(text[:20000])
    return match.group(0) if match else None


def find_reply_code(text: str | None, *, anywhere: bool = True) -> int | None:
    """The SMTP reply code leading the text (``smtp; 550 ...``) or, if `anywhere`, the first 4xx/5xx in it."""
    if not text:
        return None
    match = _LEADING_REPLY_CODE.match(text)
    if anywhere and (match is None or match.group(1)[0] == "2"):
        match = _REPLY_CODE.search(text[:20000])
    return int(match.group(1)) if match else None


def reason_for(status: str | None, remote_code: int | None, diagnostic: str | None) -> BounceReason:
    status_reason: BounceReason | None = None
    if status:
        _cls, subject, detail = status.split(".")
        status_reason = _STATUS_REASONS.get(f"{subject}.{detail}") or _STATUS_REASONS.get(subject)
        if f"{subject}.{detail}" in _TRUSTED_STATUSES:
            return status_reason or _R.OTHER
    if diagnostic:
        for pattern, reason in _TEXT_REASONS:
            if pattern.search(diagnostic[:20000]):
                return reason
    if status_reason:
        return status_reason
    if remote_code is not None and remote_code in _REPLY_REASONS:
        return _REPLY_REASONS[remote_code]
    return _R.OTHER


_STATUS_BY_REASON: Final[dict[BounceReason, str]] = {
    _R.USER_UNKNOWN: "1.1",
    _R.DOMAIN_UNKNOWN: "1.2",
    _R.MAILBOX_FULL: "2.2",
    _R.EXPIRED: "4.7",
    _R.BLOCKED: "7.1",
    _R.POLICY: "7.1",
}
_CONNECTION_STATUSES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (_phrases(r"could not initiate smtp conversation", r"not accepting (?:network )?+messages"), "3.2"),
    (
        _phrases(r"connection (?:timed out|refused|dropped|reset)", r"no answer from", r"host unreachable"),
        "4.1",
    ),
    (_TOO_LARGE, "3.4"),
)


def infer_status(diagnostic: str | None, *, permanent: bool) -> str | None:
    """An enhanced status code for a non-DSN notice that gives none, from its wording (``5.1.1`` for "user
    unknown"); None when the wording says nothing specific."""
    if not diagnostic:
        return None
    code_class = "5" if permanent else "4"
    for pattern, detail in _CONNECTION_STATUSES:
        if pattern.search(diagnostic[:20000]):
            return f"{code_class}.{detail}"
    by_reason = _STATUS_BY_REASON.get(reason_for(None, None, diagnostic))
    return f"{code_class}.{by_reason}" if by_reason else None


def classify(
    *,
    status: str | None,
    remote_code: int | None,
    diagnostic: str | None,
    action: str | None,
    permanent: bool | None = None,
) -> tuple[BounceClass | None, BounceReason | None]:
    """(hard/soft, reason) for one recipient; (None, None) for a successful delivery notice."""
    if action in _NOT_FAILED:
        return None, None
    reason = reason_for(status, remote_code, diagnostic)
    if reason is _R.OTHER and action == "failed" and status and status[0] == "4":
        reason = _R.EXPIRED  # a transient failure reported as final: the server gave up retrying
    if action == "delayed" or reason in _SOFT_REASONS:
        return BounceClass.SOFT, reason
    if reason is _R.OTHER and diagnostic and _TOO_LARGE.search(diagnostic[:20000]):
        return BounceClass.SOFT, reason
    if status:
        code_class, subject, detail = status.split(".")
        if code_class == "5" and f"{subject}.{detail}" not in _SOFT_STATUSES:
            return BounceClass.HARD, reason
        return BounceClass.SOFT, reason
    if remote_code is not None:
        return (BounceClass.HARD if remote_code >= 500 else BounceClass.SOFT), reason
    if permanent is False:
        return BounceClass.SOFT, reason
    return BounceClass.HARD, reason

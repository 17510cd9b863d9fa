"""Scores parse_inbound against the bounce corpus's expected answers (tests/data/bounces/expected).

Run ``python -m tests.inbound.corpus_score`` (or pytest -s) to print the shares of expected bounced
addresses found, status codes matched and kinds right, with every miss listed.

Where the expectations come from, per file of ``expected-by-file.json``:

- addresses: flufl.bounce's ``expected_addresses`` (every assertion) and flanker's
  ``bounced_address_in_notification``; for files upstream gives none (flanker, Postal, bounce_email), the
  ``sisimai_p5_reference`` recipients;
- statuses: bounce_email's and flanker's ``code``/``status``, else sisimai's ``deliverystatus`` for an
  expected address when it is a real RFC 3463 code (sisimai's own x.0.9xx pseudo-codes are skipped);
- kinds: flufl's ``is_temporary`` (delay) or not (bounce), bounce_email's ``is_bounce``, sisimai's
  ``vacation`` (auto-reply), and ``overrides.json`` for what upstream leaves open or gets wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from mailbeacon.inbound import InboundKind, InboundReport, parse_inbound

DATA: Final = Path(__file__).resolve().parents[1] / "data" / "bounces"
EXPECTED: Final = DATA / "expected" / "expected-by-file.json"
OVERRIDES: Final = DATA / "expected" / "overrides.json"

_REAL_STATUS: Final = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_DSN_PART: Final = re.compile(rb"^content-type:[ \t]*+message/delivery-status", re.IGNORECASE | re.MULTILINE)
BOUNCE_KINDS: Final = frozenset({InboundKind.BOUNCE, InboundKind.DELAY})
NOT_BOUNCE_KINDS: Final = frozenset({InboundKind.REPLY, InboundKind.AUTO_REPLY, InboundKind.UNKNOWN})


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    addresses: frozenset[str]
    statuses: dict[str, str]
    """expected status per (lower-cased) address"""
    kinds: frozenset[InboundKind]
    """the acceptable kinds; empty when nothing is expected"""
    is_dsn: bool
    is_bounce: bool | None


@dataclass
class Score:
    addresses_expected: int = 0
    addresses_found: int = 0
    statuses_expected: int = 0
    statuses_matched: int = 0
    kinds_expected: int = 0
    kinds_right: int = 0
    misses: list[str] = field(default_factory=list)

    def share(self, found: int, expected: int) -> float:
        return found / expected if expected else 1.0

    def lines(self) -> list[str]:
        return [
            f"addresses found: {self.addresses_found}/{self.addresses_expected}"
            f" ({self.share(self.addresses_found, self.addresses_expected):.1%})",
            f"status codes matched: {self.statuses_matched}/{self.statuses_expected}"
            f" ({self.share(self.statuses_matched, self.statuses_expected):.1%})",
            f"kinds right: {self.kinds_right}/{self.kinds_expected}"
            f" ({self.share(self.kinds_right, self.kinds_expected):.1%})",
        ]


def _is_real_status(status: object) -> bool:
    return (
        isinstance(status, str) and bool(_REAL_STATUS.fullmatch(status)) and int(status.split(".")[2]) < 900
    )


def load_overrides() -> dict[str, Any]:
    overrides: dict[str, Any] = json.loads(OVERRIDES.read_text(encoding="utf-8"))
    return overrides


def _case(name: str, entry: dict[str, Any], overrides: dict[str, Any]) -> Case:
    upstream: dict[str, Any] = entry.get("upstream") or {}
    sisimai: list[dict[str, Any]] = entry.get("sisimai_p5_reference") or []
    addresses: set[str] = set()
    temporaries: set[bool] = set()
    for assertion in upstream.get("assertions", []):
        addresses.update(address.lower() for address in assertion["expected_addresses"])
        if assertion["expected_addresses"]:
            temporaries.add(bool(assertion["is_temporary"]))
    if upstream.get("bounced_address_in_notification"):
        addresses.add(upstream["bounced_address_in_notification"].lower())
    if not addresses and "assertions" not in upstream and upstream.get("is_bounce") is not False:
        addresses.update(r["recipient"].lower() for r in sisimai if r["reason"] != "vacation")

    statuses: dict[str, str] = {}
    for record in sisimai:
        recipient = record["recipient"].lower()
        if recipient in addresses and _is_real_status(record["deliverystatus"]):
            statuses.setdefault(recipient, record["deliverystatus"])
    upstream_status = upstream.get("code") or upstream.get("status")
    if isinstance(upstream_status, str) and _is_real_status(upstream_status) and len(addresses) == 1:
        statuses[next(iter(addresses))] = upstream_status

    kinds: frozenset[InboundKind] = frozenset()
    is_bounce: bool | None = None
    if upstream.get("is_bounce") is False:
        kinds, is_bounce = NOT_BOUNCE_KINDS, False
    elif any(r["reason"] == "vacation" for r in sisimai):
        kinds, is_bounce = frozenset({InboundKind.AUTO_REPLY}), False
    elif temporaries == {True}:
        kinds, is_bounce = frozenset({InboundKind.DELAY}), True
    elif temporaries == {False}:
        kinds, is_bounce = frozenset({InboundKind.BOUNCE}), True
    elif addresses or upstream.get("is_bounce"):
        kinds, is_bounce = BOUNCE_KINDS, True

    override: dict[str, Any] = overrides.get("files", {}).get(name, {})
    if "kinds" in override:
        kinds = frozenset(InboundKind(kind) for kind in override["kinds"])
        is_bounce = bool(kinds & BOUNCE_KINDS) and not kinds & NOT_BOUNCE_KINDS
    if "statuses" in override:
        statuses.update({address.lower(): status for address, status in override["statuses"].items()})
    if "addresses" in override:
        addresses = {address.lower() for address in override["addresses"]}

    path = DATA / name
    return Case(
        name=name,
        path=path,
        addresses=frozenset(addresses),
        statuses=statuses,
        kinds=kinds,
        is_dsn=bool(_DSN_PART.search(path.read_bytes())),
        is_bounce=is_bounce,
    )


def load_cases() -> list[Case]:
    expected: dict[str, dict[str, Any]] = json.loads(EXPECTED.read_text(encoding="utf-8"))
    overrides = load_overrides()
    return [_case(name, entry, overrides) for name, entry in sorted(expected.items())]


def recipient_statuses(report: InboundReport) -> dict[str, str | None]:
    """Each reported address (final and original, lower-cased) with its status."""
    found: dict[str, str | None] = {}
    for recipient in report.recipients:
        for address in (recipient.address, recipient.original_address):
            if address:
                found.setdefault(address.lower(), recipient.status)
    return found


def score(cases: list[Case]) -> tuple[Score, dict[str, InboundReport]]:
    result = Score()
    reports: dict[str, InboundReport] = {}
    for case in cases:
        report = parse_inbound(case.path.read_bytes())
        reports[case.name] = report
        found = recipient_statuses(report)
        for address in sorted(case.addresses):
            result.addresses_expected += 1
            if address in found:
                result.addresses_found += 1
            else:
                result.misses.append(f"address  {case.name}: {address} not in {sorted(found)}")
        for address, status in sorted(case.statuses.items()):
            result.statuses_expected += 1
            if found.get(address) == status:
                result.statuses_matched += 1
            else:
                result.misses.append(f"status   {case.name}: {address} {status} != {found.get(address)}")
        if case.kinds:
            result.kinds_expected += 1
            if report.kind in case.kinds:
                result.kinds_right += 1
            else:
                wanted = "/".join(sorted(kind.value for kind in case.kinds))
                result.misses.append(
                    f"kind     {case.name}: {report.kind.value} ({report.format}), expected {wanted}"
                )
    return result, reports


def main() -> Score:
    result, _reports = score(load_cases())
    print("inbound corpus score (tests/data/bounces)")
    for line in result.lines():
        print("  " + line)
    for miss in result.misses:
        print("  miss: " + miss)
    return result


if __name__ == "__main__":
    main()

"""A domain's DMARC results added up: messages by source IP, source organisation and reporter, with
DKIM/SPF alignment and DMARC pass/fail, the policy applied (disposition) and the policies published.

The store groups records by these keys (store/dmarc.py: summary_rows); ``summarise`` folds the groups.
A single parsed report is summarised the same way, from its own records.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from mailbeacon.dmarc.report import AggregateRecord, PublishedPolicy


@dataclass(frozen=True)
class SummaryRow:
    """``messages`` messages sharing one source, reporter and outcome."""

    source_ip: str
    source_name: str | None
    reporter: str | None
    disposition: str
    dkim_aligned: bool
    spf_aligned: bool
    dmarc_pass: bool
    messages: int


@dataclass
class Outcome:
    messages: int = 0
    dmarc_pass: int = 0
    dmarc_fail: int = 0
    dkim_aligned_pass: int = 0
    dkim_aligned_fail: int = 0
    spf_aligned_pass: int = 0
    spf_aligned_fail: int = 0
    dispositions: dict[str, int] = field(default_factory=dict)  # the policy applied: none, quarantine ...

    def add(self, row: SummaryRow) -> None:
        n = row.messages
        self.messages += n
        if row.dmarc_pass:
            self.dmarc_pass += n
        else:
            self.dmarc_fail += n
        if row.dkim_aligned:
            self.dkim_aligned_pass += n
        else:
            self.dkim_aligned_fail += n
        if row.spf_aligned:
            self.spf_aligned_pass += n
        else:
            self.spf_aligned_fail += n
        self.dispositions[row.disposition] = self.dispositions.get(row.disposition, 0) + n


_O = TypeVar("_O", bound="Outcome")


@dataclass
class SourceIpOutcome(Outcome):
    source_ip: str = ""
    source_name: str | None = None


@dataclass
class SourceOrgOutcome(Outcome):
    source_name: str | None = None  # None: the IP database does not know the address


@dataclass
class ReporterOutcome(Outcome):
    reporter: str | None = None


@dataclass(frozen=True)
class PolicySeen:
    """A published policy (p, sp, pct) and how many reports saw it."""

    p: str | None
    sp: str | None
    pct: str | None
    reports: int


@dataclass
class DomainSummary:
    domain: str
    since: datetime | None
    until: datetime | None
    reports: int
    totals: Outcome
    by_source_ip: list[SourceIpOutcome]
    by_source_org: list[SourceOrgOutcome]
    by_reporter: list[ReporterOutcome]
    published_policies: list[PolicySeen]


def rows_of_records(reporter: str | None, records: Iterable[AggregateRecord]) -> list[SummaryRow]:
    return [
        SummaryRow(
            source_ip=record.source.ip,
            source_name=record.source.name,
            reporter=reporter,
            disposition=record.disposition,
            dkim_aligned=record.dkim_aligned,
            spf_aligned=record.spf_aligned,
            dmarc_pass=record.dmarc_pass,
            messages=record.count,
        )
        for record in records
    ]


def _grouped(
    rows: Iterable[SummaryRow], key: Callable[[SummaryRow], Hashable], make: Callable[[SummaryRow], _O]
) -> list[_O]:
    groups: dict[Hashable, _O] = {}
    for row in rows:
        group = groups.get(key(row))
        if group is None:
            group = groups[key(row)] = make(row)
        group.add(row)
    return sorted(groups.values(), key=lambda outcome: -outcome.messages)


def summarise(
    domain: str,
    rows: Iterable[SummaryRow],
    policies: Iterable[PublishedPolicy | None],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> DomainSummary:
    rows = list(rows)
    totals = Outcome()
    for row in rows:
        totals.add(row)
    policies = list(policies)
    seen: dict[tuple[str | None, str | None, str | None], int] = {}
    for policy in policies:
        key = (policy.p, policy.sp, policy.pct) if policy else (None, None, None)
        seen[key] = seen.get(key, 0) + 1
    return DomainSummary(
        domain=domain,
        since=since,
        until=until,
        reports=len(policies),
        totals=totals,
        by_source_ip=_grouped(
            rows,
            lambda r: (r.source_ip, r.source_name),
            lambda r: SourceIpOutcome(source_ip=r.source_ip, source_name=r.source_name),
        ),
        by_source_org=_grouped(
            rows, lambda r: r.source_name, lambda r: SourceOrgOutcome(source_name=r.source_name)
        ),
        by_reporter=_grouped(rows, lambda r: r.reporter, lambda r: ReporterOutcome(reporter=r.reporter)),
        published_policies=[
            PolicySeen(p, sp, pct, count)
            for (p, sp, pct), count in sorted(seen.items(), key=lambda item: -item[1])
        ],
    )

"""Response bodies of /v1/dmarc: reports, their records, and a domain's summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FromAttributes(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PolicyPublishedOut(FromAttributes):
    domain: str
    p: str | None = Field(description="The policy for the domain: none, quarantine or reject.")
    sp: str | None = Field(default=None, description="The policy for subdomains.")
    np: str | None = Field(default=None, description="The policy for non-existent subdomains (RFC 9990).")
    pct: str | None = None
    adkim: str | None = None
    aspf: str | None = None
    fo: str | None = None


class DmarcReportOut(FromAttributes):
    id: int
    status: str = Field(description="ok, or rejected: not readable (see `error`; the raw report is kept).")
    error: str | None
    kind: str | None = Field(description="aggregate, failure or smtp_tls; null when rejected.")
    domain: str | None = Field(description="The domain the report is about.")
    org_name: str | None = Field(description="Who sent the report (the reporting organisation).")
    org_email: str | None
    report_id: str | None = Field(description="The reporter's id of the report.")
    begin: datetime | None
    end: datetime | None
    policy_published: PolicyPublishedOut | None
    record_count: int
    message_count: int = Field(description="Messages covered (TLS reports: sessions).")
    received_at: datetime
    source: str = Field(description="smtp (mailed to the reports address), api or cli.")
    size: int
    has_raw: bool
    duplicate: bool = Field(
        default=False, description="On upload: the report was already stored; nothing was added."
    )


class DmarcReportPage(BaseModel):
    data: list[DmarcReportOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class SourceOut(FromAttributes):
    name: str | None = Field(description="Who runs the address, from the offline IP database.")
    type: str | None
    asn: int | None
    as_name: str | None
    country: str | None


class DkimResultOut(FromAttributes):
    domain: str
    selector: str | None
    result: str


class SpfResultOut(FromAttributes):
    domain: str
    scope: str | None
    result: str


class DmarcRecordOut(FromAttributes):
    source_ip: str
    source: SourceOut
    count: int
    disposition: str = Field(description="The policy applied: none, quarantine or reject.")
    dkim: str = Field(description="DKIM aligned result (policy evaluated).")
    spf: str = Field(description="SPF aligned result (policy evaluated).")
    dkim_aligned: bool
    spf_aligned: bool
    dmarc_pass: bool
    header_from: str
    envelope_from: str | None
    envelope_to: str | None
    interval_begin: datetime
    interval_end: datetime
    override_reasons: list[str | None]
    dkim_results: list[DkimResultOut]
    spf_results: list[SpfResultOut]


class DmarcReportDetail(DmarcReportOut):
    errors: list[str] = Field(description="Problems the reporter or the parser noted in the report.")
    xml_schema: str | None
    details: dict[str, Any] = Field(
        description="Failure reports: the failed message's fields. SMTP TLS reports: the policies."
    )
    records: list[DmarcRecordOut]


class OutcomeOut(FromAttributes):
    messages: int
    dmarc_pass: int
    dmarc_fail: int
    dkim_aligned_pass: int
    dkim_aligned_fail: int
    spf_aligned_pass: int
    spf_aligned_fail: int
    dispositions: dict[str, int] = Field(description="Messages by the policy applied.")


class SourceIpOut(OutcomeOut):
    source_ip: str
    source_name: str | None


class SourceOrgOut(OutcomeOut):
    source_name: str | None


class ReporterOut(OutcomeOut):
    reporter: str | None


class PolicySeenOut(FromAttributes):
    p: str | None
    sp: str | None
    pct: str | None
    reports: int


class DmarcSummaryOut(FromAttributes):
    domain: str
    since: datetime | None
    until: datetime | None
    reports: int = Field(description="Aggregate reports whose period begins in the range.")
    totals: OutcomeOut
    by_source_ip: list[SourceIpOut]
    by_source_org: list[SourceOrgOut]
    by_reporter: list[ReporterOut]
    published_policies: list[PolicySeenOut]

"""Aggregate reports made to order (a domain of the test's own, so tests sharing a database never
meet), and the mail a reporter sends one in."""

from __future__ import annotations

import gzip
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP


@dataclass(frozen=True)
class Row:
    ip: str
    count: int
    disposition: str = "none"
    dkim: str = "pass"
    spf: str = "pass"


def unique_domain() -> str:
    return f"d{uuid.uuid4().hex[:10]}.example"


def aggregate_xml(
    domain: str,
    rows: list[Row],
    *,
    org: str = "Example Reporter",
    report_id: str | None = None,
    day: datetime = datetime(2026, 11, 1, tzinfo=UTC),
    p: str = "quarantine",
) -> bytes:
    begin = int(day.timestamp())
    records = "".join(
        f"""<record><row><source_ip>{row.ip}</source_ip><count>{row.count}</count>
<policy_evaluated><disposition>{row.disposition}</disposition><dkim>{row.dkim}</dkim><spf>{row.spf}</spf>
</policy_evaluated></row><identifiers><header_from>{domain}</header_from></identifiers>
<auth_results><dkim><domain>{domain}</domain><selector>s1</selector><result>{row.dkim}</result></dkim>
<spf><domain>{domain}</domain><scope>mfrom</scope><result>{row.spf}</result></spf></auth_results></record>"""
        for row in rows
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feedback><report_metadata><org_name>{org}</org_name><email>dmarc@reporter.example</email>
<report_id>{report_id or uuid.uuid4().hex}</report_id>
<date_range><begin>{begin}</begin><end>{begin + 86399}</end></date_range></report_metadata>
<policy_published><domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>{p}</p><sp>none</sp>
<pct>100</pct></policy_published>{records}</feedback>""".encode()


def report_mail(xml: bytes, domain: str, to: str = "dmarc@bounces.track.test") -> bytes:
    """The mail a reporter sends: the report gzipped as an attachment (as Google and others do)."""
    mail = EmailMessage()
    mail["From"] = "noreply-dmarc-support@reporter.example"
    mail["To"] = to
    mail["Subject"] = f"Report domain: {domain} Submitter: reporter.example Report-ID: <{uuid.uuid4().hex}>"
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@reporter.example>"
    mail.set_content("This is an aggregate report from reporter.example.")
    mail.add_attachment(
        gzip.compress(xml),
        maintype="application",
        subtype="gzip",
        filename=f"reporter.example!{domain}.xml.gz",
    )
    return mail.as_bytes(policy=SMTP)  # CRLF line ends, as on the wire

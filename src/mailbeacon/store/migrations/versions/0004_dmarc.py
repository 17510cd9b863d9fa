"""dmarc: DMARC aggregate, failure and SMTP TLS reports, and the records of aggregate reports

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mailbeacon.store.types import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dmarc_reports",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", _ID, nullable=True),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column("org_name", sa.String(length=300), nullable=True),
        sa.Column("org_email", sa.String(length=320), nullable=True),
        sa.Column("report_id", sa.String(length=300), nullable=True),
        sa.Column("begin_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("policy", sa.JSON(), nullable=True),
        sa.Column("record_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("message_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("parsed", sa.JSON(), nullable=True),
        sa.Column("dedup_key", sa.String(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_dmarc_reports_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dmarc_reports")),
        sa.UniqueConstraint("account_id", "dedup_key", name="uq_dmarc_reports_account_dedup"),
    )
    op.create_index("ix_dmarc_reports_account_id", "dmarc_reports", ["account_id", "id"])
    op.create_index(
        "ix_dmarc_reports_account_domain_begin", "dmarc_reports", ["account_id", "domain", "begin_at"]
    )
    op.create_table(
        "dmarc_records",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", _ID, nullable=True),
        sa.Column("report_id", _ID, nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("reporter", sa.String(length=300), nullable=True),
        sa.Column("interval_begin", UTCDateTime(timezone=True), nullable=False),
        sa.Column("interval_end", UTCDateTime(timezone=True), nullable=False),
        sa.Column("source_ip", sa.String(length=45), nullable=False),
        sa.Column("source_name", sa.String(length=200), nullable=True),
        sa.Column("source_type", sa.String(length=64), nullable=True),
        sa.Column("source_asn", sa.BigInteger(), nullable=True),
        sa.Column("source_as_name", sa.String(length=200), nullable=True),
        sa.Column("source_country", sa.String(length=2), nullable=True),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.Column("dkim", sa.String(length=16), nullable=False),
        sa.Column("spf", sa.String(length=16), nullable=False),
        sa.Column("dkim_aligned", sa.Boolean(), nullable=False),
        sa.Column("spf_aligned", sa.Boolean(), nullable=False),
        sa.Column("dmarc_pass", sa.Boolean(), nullable=False),
        sa.Column("header_from", sa.String(length=255), nullable=False),
        sa.Column("envelope_from", sa.String(length=255), nullable=True),
        sa.Column("envelope_to", sa.String(length=255), nullable=True),
        sa.Column("override_reasons", sa.JSON(), nullable=False),
        sa.Column("dkim_results", sa.JSON(), nullable=False),
        sa.Column("spf_results", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_dmarc_records_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["dmarc_reports.id"],
            name=op.f("fk_dmarc_records_report_id_dmarc_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dmarc_records")),
    )
    op.create_index("ix_dmarc_records_report", "dmarc_records", ["report_id", "id"])
    op.create_index(
        "ix_dmarc_records_account_domain_begin", "dmarc_records", ["account_id", "domain", "interval_begin"]
    )


def downgrade() -> None:
    op.drop_table("dmarc_records")
    op.drop_table("dmarc_reports")

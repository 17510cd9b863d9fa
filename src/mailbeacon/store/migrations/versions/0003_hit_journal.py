"""hit journal: tracking hits committed by the hot path, ingested into events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tracking_hits",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("recipient_id", _ID, nullable=False),
        sa.Column("link_position", sa.Integer(), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("http_method", sa.String(length=8), nullable=False),
        sa.Column("human", sa.Boolean(), nullable=False),
        sa.Column("machine_class", sa.String(length=24), nullable=True),
        sa.Column("machine_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_hits")),
    )


def downgrade() -> None:
    op.drop_table("tracking_hits")

"""indexes for the logs API: delivery attempts and DMARC records paged by account and id

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 11:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_delivery_attempts_account_id", "delivery_attempts", ["account_id", "id"])
    op.create_index("ix_dmarc_records_account_id", "dmarc_records", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_dmarc_records_account_id", table_name="dmarc_records")
    op.drop_index("ix_delivery_attempts_account_id", table_name="delivery_attempts")

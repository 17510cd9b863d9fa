"""hit journal: the X-Requested-With and prefetch headers of each hit

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 09:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tracking_hits") as batch_op:
        batch_op.add_column(sa.Column("requested_with", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("purpose", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tracking_hits") as batch_op:
        batch_op.drop_column("purpose")
        batch_op.drop_column("requested_with")

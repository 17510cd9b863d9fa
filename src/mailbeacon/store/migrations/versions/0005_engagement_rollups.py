"""engagement rollups: opens and clicks counted per copy, message and link at ingest

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 09:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailbeacon.store.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def _moments() -> list[sa.Column[object]]:
    names = ("first_opened_at", "last_opened_at", "first_clicked_at", "last_clicked_at")
    return [
        sa.Column(name, mailbeacon.store.types.UTCDateTime(timezone=True), nullable=True) for name in names
    ]


def _fk(column: str, table: str, owner: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=op.f(f"fk_{owner}_{column}_{table}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "recipient_engagement",
        sa.Column("recipient_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("message_id", _ID, nullable=False),
        *(_count(name) for name in ("opens", "human_opens", "clicks", "human_clicks")),
        *_moments(),
        _fk("account_id", "accounts", "recipient_engagement"),
        _fk("message_id", "messages", "recipient_engagement"),
        _fk("recipient_id", "recipients", "recipient_engagement"),
        sa.PrimaryKeyConstraint("recipient_id", name=op.f("pk_recipient_engagement")),
    )
    op.create_index("ix_recipient_engagement_message", "recipient_engagement", ["message_id"])
    op.create_table(
        "message_engagement",
        sa.Column("message_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        *(
            _count(name)
            for name in (
                "opens",
                "human_opens",
                "clicks",
                "human_clicks",
                "openers",
                "human_openers",
                "pixel_openers",
                "human_pixel_openers",
                "clickers",
                "human_clickers",
            )
        ),
        *_moments(),
        _fk("account_id", "accounts", "message_engagement"),
        _fk("message_id", "messages", "message_engagement"),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_engagement")),
    )
    op.create_table(
        "link_clicks",
        sa.Column("recipient_id", _ID, nullable=False),
        sa.Column("link_position", sa.Integer(), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("message_id", _ID, nullable=False),
        _count("clicks"),
        _count("human_clicks"),
        _fk("account_id", "accounts", "link_clicks"),
        _fk("message_id", "messages", "link_clicks"),
        _fk("recipient_id", "recipients", "link_clicks"),
        sa.PrimaryKeyConstraint("recipient_id", "link_position", name=op.f("pk_link_clicks")),
    )
    op.create_table(
        "link_engagement",
        sa.Column("message_id", _ID, nullable=False),
        sa.Column("link_position", sa.Integer(), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        *(_count(name) for name in ("clicks", "human_clicks", "clickers", "human_clickers")),
        _fk("account_id", "accounts", "link_engagement"),
        _fk("message_id", "messages", "link_engagement"),
        sa.PrimaryKeyConstraint("message_id", "link_position", name=op.f("pk_link_engagement")),
    )
    _backfill()


def _backfill() -> None:
    """Count the events already stored, so the rollups start equal to them."""
    human = "CASE WHEN human THEN 1 ELSE 0 END"
    op.execute(
        f"""
        INSERT INTO recipient_engagement (recipient_id, account_id, message_id, opens, human_opens,
            clicks, human_clicks, first_opened_at, last_opened_at, first_clicked_at, last_clicked_at)
        SELECT recipient_id, min(account_id), min(message_id),
            sum(CASE WHEN type = 'opened' THEN 1 ELSE 0 END),
            sum(CASE WHEN type = 'opened' THEN {human} ELSE 0 END),
            sum(CASE WHEN type = 'clicked' THEN 1 ELSE 0 END),
            sum(CASE WHEN type = 'clicked' THEN {human} ELSE 0 END),
            min(CASE WHEN type = 'opened' THEN occurred_at END),
            max(CASE WHEN type = 'opened' THEN occurred_at END),
            min(CASE WHEN type = 'clicked' THEN occurred_at END),
            max(CASE WHEN type = 'clicked' THEN occurred_at END)
        FROM events WHERE type IN ('opened', 'clicked') GROUP BY recipient_id
        """
    )
    op.execute(
        """
        INSERT INTO message_engagement (message_id, account_id, opens, human_opens, clicks, human_clicks,
            openers, human_openers, pixel_openers, human_pixel_openers, clickers, human_clickers,
            first_opened_at, last_opened_at, first_clicked_at, last_clicked_at)
        SELECT message_id, min(account_id), sum(opens), sum(human_opens), sum(clicks), sum(human_clicks),
            sum(CASE WHEN opens + clicks > 0 THEN 1 ELSE 0 END),
            sum(CASE WHEN human_opens + human_clicks > 0 THEN 1 ELSE 0 END),
            sum(CASE WHEN opens > 0 THEN 1 ELSE 0 END),
            sum(CASE WHEN human_opens > 0 THEN 1 ELSE 0 END),
            sum(CASE WHEN clicks > 0 THEN 1 ELSE 0 END),
            sum(CASE WHEN human_clicks > 0 THEN 1 ELSE 0 END),
            min(first_opened_at), max(last_opened_at), min(first_clicked_at), max(last_clicked_at)
        FROM recipient_engagement GROUP BY message_id
        """
    )
    op.execute(
        f"""
        INSERT INTO link_clicks (recipient_id, link_position, account_id, message_id, clicks, human_clicks)
        SELECT recipient_id, link_position, min(account_id), min(message_id), count(*), sum({human})
        FROM events WHERE type = 'clicked' AND link_position IS NOT NULL
        GROUP BY recipient_id, link_position
        """
    )
    op.execute(
        """
        INSERT INTO link_engagement (message_id, link_position, account_id, clicks, human_clicks,
            clickers, human_clickers)
        SELECT message_id, link_position, min(account_id), sum(clicks), sum(human_clicks), count(*),
            sum(CASE WHEN human_clicks > 0 THEN 1 ELSE 0 END)
        FROM link_clicks GROUP BY message_id, link_position
        """
    )


def downgrade() -> None:
    for table in ("link_engagement", "link_clicks", "message_engagement", "recipient_engagement"):
        op.drop_table(table)

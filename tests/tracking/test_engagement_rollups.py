"""The engagement rollups always equal what the events say, counted here independently."""

from __future__ import annotations

import random
import time
from typing import Any

from alembic import command
from sqlalchemy import select

from mailbeacon.messages.draft import Address, MessageDraft
from mailbeacon.messages.service import create_message
from mailbeacon.store import Store
from mailbeacon.store.events import Counts, MessageStats, message_stats
from mailbeacon.store.hit_journal import JournalRow, append_hits
from mailbeacon.store.migrate import alembic_config, upgrade
from mailbeacon.store.tables import events, recipients
from mailbeacon.tracking.ingest import catch_up, ingest_some
from tests.conftest import KeyedAccount

LINKS = 5


def a_message(store: Store, account: KeyedAccount, copies: int) -> tuple[int, list[int]]:
    html = "".join(f'<a href="https://example.com/{n}">{n}</a>' for n in range(LINKS))
    draft = MessageDraft(
        sender=Address("news@sender.example"),
        to=tuple(Address(f"r{i}@example.org") for i in range(copies)),
        subject="s",
        html=f"<html><body>{html}</body></html>",
    )
    created = create_message(store, account.account, draft, "http://track.test")
    return created.id, [r.id for r in created.recipients]


def random_hits(account: KeyedAccount, recipient_ids: list[int], n: int, seed: int) -> list[JournalRow]:
    rng = random.Random(seed)
    start = time.time_ns() // 1000
    rows = []
    for _ in range(n):
        kind = rng.choice(["opened", "opened", "clicked", "unsubscribed"])
        human = rng.random() < 0.6
        rows.append(
            JournalRow(
                start + rng.randrange(10**9),  # any order of times within a quarter of an hour
                kind,
                account.account.id,
                rng.choice(recipient_ids[: len(recipient_ids) * 2 // 3]),  # some copies never engage
                rng.randrange(LINKS) if kind == "clicked" else None,
                "192.0.2.7",
                "test/1" if human else None,
                "GET",
                human,
                None if human else "unknown",
                None if human else "no User-Agent header",
            )
        )
    return rows


def counted_from_events(store: Store, message_id: int) -> dict[str, Any]:
    """The numbers as the definitions say, from the raw events alone."""
    with store.read() as conn:
        rows = conn.execute(
            select(events.c.type, events.c.recipient_id, events.c.link_position, events.c.human).where(
                events.c.message_id == message_id
            )
        ).all()
    opens = [r for r in rows if r.type == "opened"]
    clicks = [r for r in rows if r.type == "clicked"]

    def who(found: list[Any], human: bool = False) -> set[int]:
        return {r.recipient_id for r in found if r.human or not human}

    per_link = {
        position: (
            len([c for c in clicks if c.link_position == position]),
            len({c.recipient_id for c in clicks if c.link_position == position}),
            len([c for c in clicks if c.link_position == position and c.human]),
            len({c.recipient_id for c in clicks if c.link_position == position and c.human}),
        )
        for position in range(LINKS)
    }
    return {
        "opens": (
            len(opens),
            len(who(opens) | who(clicks)),
            len([o for o in opens if o.human]),
            len(who(opens, True) | who(clicks, True)),
        ),
        "pixel": (len(who(opens)), len(who(opens, True))),
        "clicks": (
            len(clicks),
            len(who(clicks)),
            len([c for c in clicks if c.human]),
            len(who(clicks, True)),
        ),
        "unsubscribes": len({r.recipient_id for r in rows if r.type == "unsubscribed"}),
        "links": per_link,
        "engaged": who(opens) | who(clicks),
    }


def _both(counts: Counts) -> tuple[int, int]:
    return counts.total, counts.unique


def reported(stats: MessageStats) -> dict[str, Any]:
    return {
        "opens": (
            stats.opens.all.total,
            stats.opens.all.unique,
            stats.opens.human.total,
            stats.opens.human.unique,
        ),
        "pixel": (
            stats.opens.all.unique - stats.opens_from_clicks.all,
            stats.opens.human.unique - stats.opens_from_clicks.human,
        ),
        "clicks": (
            stats.clicks.all.total,
            stats.clicks.all.unique,
            stats.clicks.human.total,
            stats.clicks.human.unique,
        ),
        "unsubscribes": stats.unsubscribes,
        "links": {
            link.position: (
                link.clicks.all.total,
                link.clicks.all.unique,
                link.clicks.human.total,
                link.clicks.human.unique,
            )
            for link in stats.links
        },
    }


def test_rollups_equal_the_events_whatever_the_chunks(store: Store, account: KeyedAccount) -> None:
    message_id, recipient_ids = a_message(store, account, 30)
    for seed in range(3):
        with store.write() as conn:
            append_hits(conn, random_hits(account, recipient_ids, 400, seed))
        while ingest_some(store, limit=37).hits:  # small chunks: a copy's hits span many of them
            pass
        expected = counted_from_events(store, message_id)
        assert expected["opens"][0] > 0
        assert expected["clicks"][0] > 0
        with store.read() as conn:
            numbers = reported(message_stats(conn, account.account.id, message_id))
        assert numbers == {k: v for k, v in expected.items() if k != "engaged"}
    with store.read() as conn:
        delivered = {
            r.id for r in conn.execute(select(recipients.c.id).where(recipients.c.status == "delivered"))
        }
    assert delivered & set(recipient_ids) == expected["engaged"], "exactly the engaged copies are delivered"


def test_the_migration_counts_the_events_already_stored(store: Store, account: KeyedAccount) -> None:
    message_id, recipient_ids = a_message(store, account, 12)
    with store.write() as conn:
        append_hits(conn, random_hits(account, recipient_ids, 300, 42))
    catch_up(store)
    with store.read() as conn:
        before = reported(message_stats(conn, account.account.id, message_id))
    config = alembic_config(store.engine)
    command.downgrade(config, "0004")  # drops the rollups; the events stay
    upgrade(store.engine)  # and counts them again
    with store.read() as conn:
        after = reported(message_stats(conn, account.account.id, message_id))
    assert after == before

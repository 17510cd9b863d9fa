"""The group-committing hit recorder and the ingest behind it, driven directly against a real store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

import mailbeacon.store.hits as hits_module
import mailbeacon.tracking.recorder as recorder_module
from mailbeacon.events import EventType
from mailbeacon.messages.draft import Address, MessageDraft
from mailbeacon.messages.service import create_message
from mailbeacon.store import Store, hit_journal
from mailbeacon.store.tables import events, recipients, suppressions, tracking_hits
from mailbeacon.tracking.ingest import catch_up
from mailbeacon.tracking.recorder import EventRecorder, Hit, Outcome
from tests.conftest import KeyedAccount


@pytest.fixture
def recipient_ids(store: Store, account: KeyedAccount) -> list[int]:
    draft = MessageDraft(
        sender=Address("news@sender.example"),
        to=tuple(Address(f"r{i}@example.org") for i in range(5)),
        subject="s",
        html='<html><body><a href="https://example.com/a">a</a></body></html>',
    )
    created = create_message(store, account.account, draft, "http://track.test")
    return [r.id for r in created.recipients]


@pytest.fixture
def recorder(store: Store) -> Iterator[EventRecorder]:
    writer = EventRecorder(store, batch_window_s=0.05)
    writer.start()
    yield writer
    asyncio.run(writer.stop())


def hit(loop: asyncio.AbstractEventLoop, recipient_id: int, kind: EventType, **extra: Any) -> Hit:
    fields: dict[str, Any] = {
        "type": kind,
        "recipient_id": recipient_id,
        "link_position": 0 if kind is EventType.CLICKED else None,
        "received_us": time.time_ns() // 1000,
        "ip": "192.0.2.1",
        "user_agent": "test",
        "method": "GET",
        "human": True,
        "machine_class": None,
        "machine_reason": None,
        "future": loop.create_future(),
    }
    fields.update(extra)
    return Hit(**fields)


def record_all(recorder: EventRecorder, make: Any) -> list[Outcome]:
    async def run() -> list[Outcome]:
        hits: list[Hit] = make(asyncio.get_running_loop())
        for h in hits:
            recorder.submit(h)
        return list(await asyncio.wait_for(asyncio.gather(*(h.future for h in hits)), 60))

    return asyncio.run(run())


def stored(store: Store) -> int:
    """Events in the store once every journalled hit is ingested."""
    catch_up(store)
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def test_a_batch_records_every_hit_and_marks_delivery(
    store: Store, recorder: EventRecorder, recipient_ids: list[int]
) -> None:
    before = stored(store)
    outcomes = record_all(
        recorder,
        lambda loop: (
            [hit(loop, rid, EventType.CLICKED) for rid in recipient_ids]
            + [hit(loop, rid, EventType.OPENED) for rid in recipient_ids]
            + [hit(loop, 10**12, EventType.OPENED)]
        ),
    )
    assert [o.recorded for o in outcomes] == [True] * 10 + [False]
    assert all(o.url == "https://example.com/a" for o in outcomes[:5])
    assert stored(store) - before == 10
    with store.read() as conn:
        statuses = set(
            conn.execute(select(recipients.c.status).where(recipients.c.id.in_(recipient_ids))).scalars()
        )
    assert statuses == {"delivered"}


def test_clearing_a_full_cache_loses_nothing(
    store: Store, recorder: EventRecorder, recipient_ids: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    record_all(recorder, lambda loop: [hit(loop, recipient_ids[0], EventType.CLICKED)])  # warm the cache
    monkeypatch.setattr(recorder_module, "CACHE_LIMIT", 0)
    before = stored(store)
    outcomes = record_all(recorder, lambda loop: [hit(loop, rid, EventType.CLICKED) for rid in recipient_ids])
    assert all(o.recorded and o.url == "https://example.com/a" for o in outcomes)
    assert stored(store) - before == len(recipient_ids)


def test_one_hit_the_store_refuses_does_not_sink_the_batch(
    store: Store, recorder: EventRecorder, recipient_ids: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_append = hit_journal.JournalWriter.append

    def refusing(writer: hit_journal.JournalWriter, rows: Any) -> None:
        if any(row.user_agent == "poison" for row in rows):
            raise hit_journal.JournalRefused("value too long")
        real_append(writer, rows)

    monkeypatch.setattr(hit_journal.JournalWriter, "append", refusing)
    before = stored(store)
    outcomes = record_all(
        recorder,
        lambda loop: (
            [hit(loop, rid, EventType.OPENED) for rid in recipient_ids[:3]]
            + [hit(loop, recipient_ids[3], EventType.OPENED, user_agent="poison")]
            + [hit(loop, recipient_ids[4], EventType.OPENED)]
        ),
    )
    assert [o.recorded for o in outcomes] == [True, True, True, False, True]
    assert outcomes[3].failed
    assert stored(store) - before == 4


def test_an_unexpected_error_fails_the_batch_but_the_writer_lives_on(
    store: Store, recorder: EventRecorder, recipient_ids: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real_load = hits_module.load_recipients

    def flaky(conn: Any, ids: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("a bug")
        return real_load(conn, ids)

    monkeypatch.setattr(recorder_module, "load_recipients", flaky)
    first = record_all(recorder, lambda loop: [hit(loop, recipient_ids[0], EventType.OPENED)])
    assert first[0].failed
    second = record_all(recorder, lambda loop: [hit(loop, recipient_ids[1], EventType.OPENED)])
    assert second[0].recorded


def test_nul_characters_in_a_user_agent_are_stored_without_them(
    store: Store, recorder: EventRecorder, recipient_ids: list[int]
) -> None:
    [outcome] = record_all(
        recorder, lambda loop: [hit(loop, recipient_ids[0], EventType.OPENED, user_agent="a\x00b")]
    )
    assert outcome.recorded
    catch_up(store)
    with store.read() as conn:
        agents = set(conn.execute(select(events.c.user_agent)).scalars())
    assert "ab" in agents


def test_a_database_outage_is_retried_until_it_passes(
    store: Store, recorder: EventRecorder, recipient_ids: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setattr(recorder_module, "RETRY_PAUSE_S", 0.05)
    real_append = hit_journal.JournalWriter.append
    failures = {"left": 3}

    def down_for_a_while(writer: hit_journal.JournalWriter, rows: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise hit_journal.JournalUnavailable("server closed the connection")
        real_append(writer, rows)

    monkeypatch.setattr(hit_journal.JournalWriter, "append", down_for_a_while)
    before = stored(store)
    outcomes = record_all(recorder, lambda loop: [hit(loop, rid, EventType.OPENED) for rid in recipient_ids])
    assert all(o.recorded for o in outcomes)
    assert failures["left"] == 0
    assert stored(store) - before == len(recipient_ids)


def test_hits_handled_together_share_one_transaction(store: Store, recipient_ids: list[int]) -> None:
    writer = EventRecorder(store)
    writer.start()
    outcomes = record_all(
        writer, lambda loop: [hit(loop, rid, EventType.OPENED) for rid in recipient_ids * 40]
    )
    assert all(o.recorded for o in outcomes)
    assert writer.transactions == 1
    assert writer.committed == 200
    asyncio.run(writer.stop())


def test_a_stopped_recorder_refuses_new_hits(store: Store) -> None:
    writer = EventRecorder(store)
    writer.start()
    asyncio.run(writer.stop())
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(_submit_one(writer))
    with pytest.raises(RuntimeError, match="cannot be restarted"):
        writer.start()


async def _submit_one(writer: EventRecorder) -> None:
    writer.submit(hit(asyncio.get_running_loop(), 1, EventType.OPENED))


def test_more_hits_than_one_batch_holds_are_all_written(store: Store, recipient_ids: list[int]) -> None:
    writer = EventRecorder(store, batch_max=7)
    writer.start()
    outcomes = record_all(
        writer, lambda loop: [hit(loop, rid, EventType.OPENED) for rid in recipient_ids * 10]
    )
    assert all(o.recorded for o in outcomes)
    assert writer.committed == 50
    assert writer.transactions == 8  # 50 hits in batches of at most 7
    asyncio.run(writer.stop())


def journalled(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(tracking_hits)).scalar_one())


def test_every_journalled_hit_becomes_exactly_one_event_at_its_own_time(
    store: Store, recorder: EventRecorder, recipient_ids: list[int], account: KeyedAccount
) -> None:
    received = [1_763_890_000_123_456 + n for n in range(5)]  # 2025-11-23, microseconds apart
    record_all(
        recorder,
        lambda loop: [
            hit(loop, rid, EventType.OPENED, received_us=us, ip="2001:db8::1", user_agent="Thunderbird/128")
            for rid, us in zip(recipient_ids, received, strict=True)
        ],
    )
    assert journalled(store) == 5, "answered hits wait in the journal until ingested"
    assert catch_up(store) == 5
    assert catch_up(store) == 0, "nothing is ingested twice"
    assert journalled(store) == 0
    with store.read() as conn:
        rows = conn.execute(
            select(
                events.c.recipient_id,
                events.c.occurred_at,
                events.c.account_id,
                events.c.ip,
                events.c.user_agent,
            )
            .where(events.c.type == "opened", events.c.recipient_id.in_(recipient_ids))
            .order_by(events.c.id)
        ).all()
    assert [r.recipient_id for r in rows] == recipient_ids
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert [r.occurred_at for r in rows] == [epoch + timedelta(microseconds=us) for us in received]
    assert rows[0].occurred_at == datetime(2025, 11, 23, 9, 26, 40, 123_456, tzinfo=UTC)
    assert {r.account_id for r in rows} == {account.account.id}
    assert {(r.ip, r.user_agent) for r in rows} == {("2001:db8::1", "Thunderbird/128")}


def test_hits_of_a_recipient_deleted_before_ingest_leave_no_event_and_no_journal(
    store: Store, recorder: EventRecorder, recipient_ids: list[int]
) -> None:
    before = stored(store)
    record_all(recorder, lambda loop: [hit(loop, rid, EventType.OPENED) for rid in recipient_ids])
    with store.write() as conn:
        conn.execute(recipients.delete().where(recipients.c.id == recipient_ids[0]))
    assert stored(store) - before == 4
    assert journalled(store) == 0


def test_catch_up_ingests_hits_journalled_by_another_process(
    store: Store, recipient_ids: list[int], account: KeyedAccount
) -> None:
    rows = [
        hit_journal.JournalRow(
            time.time_ns() // 1000,
            "clicked",
            account.account.id,
            rid,
            0,
            None,
            "curl/8",
            "GET",
            True,
            None,
            None,
        )
        for rid in recipient_ids * 300  # more than one ingest chunk
    ]
    with store.write() as conn:
        hit_journal.append_hits(conn, rows)
    assert catch_up(store) == 1500
    with store.read() as conn:
        clicks = conn.execute(
            select(func.count()).where(events.c.type == "clicked", events.c.recipient_id.in_(recipient_ids))
        ).scalar_one()
        statuses = set(
            conn.execute(select(recipients.c.status).where(recipients.c.id.in_(recipient_ids))).scalars()
        )
    assert clicks == 1500
    assert statuses == {"delivered"}


def test_a_hit_journalled_for_another_account_records_nothing(
    store: Store, recipient_ids: list[int], account: KeyedAccount
) -> None:
    before = stored(store)
    row = hit_journal.JournalRow(
        time.time_ns() // 1000,
        "opened",
        account.account.id + 1000,
        recipient_ids[0],
        None,
        None,
        None,
        "GET",
        True,
        None,
        None,
    )
    with store.write() as conn:
        hit_journal.append_hits(conn, [row])
    assert stored(store) == before
    assert journalled(store) == 0


def test_stopping_ingests_everything_it_journalled(store: Store, recipient_ids: list[int]) -> None:
    before = stored(store)
    writer = EventRecorder(store)
    writer.start()
    record_all(writer, lambda loop: [hit(loop, rid, EventType.OPENED) for rid in recipient_ids])
    asyncio.run(writer.stop())
    assert journalled(store) == 0
    assert stored(store) - before == 5


def test_an_unsubscribe_is_suppressed_before_it_is_answered(
    store: Store, recorder: EventRecorder, recipient_ids: list[int], account: KeyedAccount
) -> None:
    [outcome] = record_all(recorder, lambda loop: [hit(loop, recipient_ids[2], EventType.UNSUBSCRIBED)])
    assert outcome.recorded
    with store.read() as conn:
        suppressed = conn.execute(
            select(suppressions.c.email, suppressions.c.reason).where(
                suppressions.c.account_id == account.account.id
            )
        ).all()
    assert [(s.email, s.reason) for s in suppressed] == [("r2@example.org", "unsubscribed")]
    assert journalled(store) == 1, "the event itself comes with the next ingest"


def test_a_running_recorder_ingests_in_the_background(store: Store, recipient_ids: list[int]) -> None:
    async def run() -> int:
        writer = EventRecorder(store)
        writer.start(asyncio.get_running_loop())
        loop = asyncio.get_running_loop()
        hits = [hit(loop, rid, EventType.OPENED) for rid in recipient_ids]
        for h in hits:
            writer.submit(h)
        await asyncio.gather(*(h.future for h in hits))
        deadline = time.monotonic() + 10
        while journalled(store) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        left = journalled(store)
        await writer.stop()
        return left

    before = stored(store)
    assert asyncio.run(run()) == 0, "the journal empties soon after the hits stop"
    assert stored(store) - before == 5

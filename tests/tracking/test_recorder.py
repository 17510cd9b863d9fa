"""The group-committing event writer, driven directly against a real store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DataError

import mailbeacon.store.hits as hits_module
import mailbeacon.tracking.recorder as recorder_module
from mailbeacon.events import EventType
from mailbeacon.messages.draft import Address, MessageDraft
from mailbeacon.messages.service import create_message
from mailbeacon.store import Store
from mailbeacon.store.tables import events, recipients
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
        "occurred_at": datetime.now(UTC),
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
    real_insert = hits_module.insert_events

    def refusing(conn: Any, rows: Any) -> None:
        if any(row.user_agent == "poison" for row in rows):
            raise DataError("INSERT", {}, Exception("value too long"))
        real_insert(conn, rows)

    monkeypatch.setattr(recorder_module, "insert_events", refusing)
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
    with store.read() as conn:
        agents = set(conn.execute(select(events.c.user_agent)).scalars())
    assert "ab" in agents


def test_a_database_outage_is_retried_until_it_passes(
    store: Store, recorder: EventRecorder, recipient_ids: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    monkeypatch.setattr(recorder_module, "RETRY_PAUSE_S", 0.05)
    real_insert = hits_module.insert_events
    failures = {"left": 3}

    def down_for_a_while(conn: Any, rows: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        real_insert(conn, rows)

    monkeypatch.setattr(recorder_module, "insert_events", down_for_a_while)
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

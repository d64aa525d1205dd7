"""The pieces the worker's topic-reset handling is made of, each against the real database:
how an incarnation is decided, and what the sink does with a batch whose Kafka positions
another event already holds."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from schemas.heating import CONNECTED_AREA_M2, HeatingCorrection
from schemas.topics import HEATING
from streams.batch import Record, prepare
from streams.db import connect_async
from streams.db.cursors import Incarnation, current_incarnation
from streams.db.ledger import TopicReset, write_batch
from streams.settings import Settings
from tests.integration.helpers import chain_breaks, heating_events

pytestmark = pytest.mark.integration

TOPIC = "city.heating.v1"


def _run(settings: Settings, work: Any) -> Any:
    async def go() -> Any:
        conn = await connect_async(settings)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def _incarnation(
    settings: Settings, topic_id: uuid.UUID | None, log_end: dict[int, int]
) -> Incarnation:
    return _run(  # type: ignore[no-any-return]
        settings,
        lambda conn: current_incarnation(conn, topic=TOPIC, topic_id=topic_id, log_end=log_end),
    )


def _batch(settings: Settings, count: int, *, seed: int, incarnation: int) -> Any:
    events = heating_events(count, seed=seed)
    records = [
        Record(settings.topic_name(TOPIC), 0, offset, e.model_dump_json().encode())
        for offset, e in enumerate(events)
    ]
    return prepare(HEATING, records, incarnation=incarnation)


def test_an_incarnation_changes_only_with_the_topic(isolated: Settings) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    # Before the broker has told the id, nothing is recorded.
    assert _incarnation(isolated, None, None) == Incarnation(TOPIC, 1, None)
    assert _incarnation(isolated, first, {0: 0}) == Incarnation(TOPIC, 1, first)
    assert _incarnation(isolated, first, {0: 0}) == Incarnation(TOPIC, 1, first)
    # The broker could not be asked: nothing to compare, nothing changes.
    assert _incarnation(isolated, None, {0: 0}) == Incarnation(TOPIC, 1, first)
    reset = _incarnation(isolated, second, {0: 0})
    assert (reset.number, reset.topic_id) == (2, second)
    assert reset.reset is not None and str(first) in reset.reset and str(second) in reset.reset
    assert _incarnation(isolated, second, {0: 0}) == Incarnation(TOPIC, 2, second)


def test_offsets_beyond_the_log_end_start_a_new_incarnation(isolated: Settings) -> None:
    # A ledger from before ids were recorded: rows up to offset 3 on partition 0.
    written = _run(
        isolated, lambda conn: write_batch(conn, _batch(isolated, 3, seed=1, incarnation=1))
    )
    assert written.inserted == 3
    topic = isolated.topic_name(TOPIC)

    def decide(log_end: dict[int, int]) -> Any:
        return lambda conn: current_incarnation(
            conn, topic=topic, topic_id=uuid.uuid4(), log_end=log_end
        )

    found = _run(isolated, decide({0: 1}))  # the topic now ends at 1: it is a new one
    assert found.number == 2
    assert found.reset is not None and "[0] 3 > 1" in found.reset


def test_a_known_topic_id_wins_over_odd_offsets(isolated: Settings) -> None:
    """A broker restarting reports partitions' ends wrongly for a moment (the chaos suite
    saw it): with the topic id unchanged that is no reset."""
    topic = isolated.topic_name(TOPIC)
    topic_id = uuid.uuid4()

    def decide(log_end: dict[int, int] | None) -> Any:
        return lambda conn: current_incarnation(
            conn, topic=topic, topic_id=topic_id, log_end=log_end
        )

    assert _run(isolated, decide({0: 0})).number == 1
    assert _run(isolated, lambda c: write_batch(c, _batch(isolated, 3, seed=1, incarnation=1)))
    assert _run(isolated, decide({0: 0})) == Incarnation(topic, 1, topic_id)
    assert _run(isolated, decide(None)) == Incarnation(topic, 1, topic_id)


def test_a_batch_at_positions_other_events_hold_is_a_topic_reset(isolated: Settings) -> None:
    assert _run(isolated, lambda c: write_batch(c, _batch(isolated, 3, seed=1, incarnation=1)))
    other = _batch(isolated, 3, seed=2, incarnation=1)
    with pytest.raises(TopicReset):
        _run(isolated, lambda conn: write_batch(conn, other))
    # The same records in the topic's next incarnation are new positions: they land, on a
    # chain of their own.
    again = _batch(isolated, 3, seed=2, incarnation=2)
    assert _run(isolated, lambda conn: write_batch(conn, again)).inserted == 3
    assert chain_breaks(isolated) == []


def test_a_batch_holding_recorded_events_writes_only_the_new_ones(isolated: Settings) -> None:
    """The sink writes a batch as if every event were new; when event_keys refuses one it
    falls back to asking the ledger. A partition's second owner reading again from an older
    offset (a rebalance) sends records the ledger holds, beside new ones and a reused id."""
    topic = isolated.topic_name(TOPIC)
    held = heating_events(3, seed=1)
    first = prepare(
        HEATING,
        [Record(topic, 0, offset, e.model_dump_json().encode()) for offset, e in enumerate(held)],
    )
    assert _run(isolated, lambda conn: write_batch(conn, first)).inserted == 3
    reused = held[0].model_copy(update={"area_m2": held[0].area_m2 + 1})
    again = [*held[1:], *heating_events(3, seed=3), reused]
    batch = prepare(
        HEATING,
        [Record(topic, 0, 1 + i, e.model_dump_json().encode()) for i, e in enumerate(again)],
    )
    result = _run(isolated, lambda conn: write_batch(conn, batch))
    assert (result.inserted, result.duplicates) == (3, 2)
    # What the worker counts as accepted, per type: the inserted events only.
    assert result.inserted_by_type == {"heating.area_connected": 3}
    assert [(r.offset, why.reason) for r, why in result.rejected] == [(6, "duplicate_event_id")]
    assert chain_breaks(isolated) == []

    async def counts(conn: Any) -> tuple[int, int]:
        cur = await conn.execute("SELECT count(*), count(DISTINCT event_id) FROM events")
        return tuple(await cur.fetchone())  # type: ignore[return-value]

    assert _run(isolated, counts) == (6, 6)


def test_a_re_sent_correction_counts_as_a_duplicate(isolated: Settings) -> None:
    """A batch with a correction is judged by what the ledger holds first: taken as new, a
    correction sent again would be refused (its reference recorded, its delta applied)."""
    topic = isolated.topic_name(TOPIC)
    original = heating_events(1, seed=4)[0]
    correction = HeatingCorrection(
        event_id=uuid.uuid4(),
        department="heating",
        district=original.district,
        occurred_at=original.occurred_at,
        reported_at=original.reported_at,
        corrects=original.event_id,
        metric=CONNECTED_AREA_M2,
        delta=-original.area_m2,
        reason="复核",
        approved_by="王",
        source_ref="审批-9",
    )
    sent = [original, correction, correction]  # the producer re-sent the correction
    written = [
        _run(
            isolated,
            lambda conn, offset=offset, event=event: write_batch(
                conn,
                prepare(HEATING, [Record(topic, 0, offset, event.model_dump_json().encode())]),
            ),
        )
        for offset, event in enumerate(sent)
    ]
    assert [(w.inserted, w.duplicates, len(w.rejected)) for w in written] == [
        (1, 0, 0),
        (1, 0, 0),
        (0, 1, 0),
    ]
    assert [w.inserted_by_type for w in written] == [
        {"heating.area_connected": 1},
        {"heating.correction": 1},
        {},
    ]

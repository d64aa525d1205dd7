"""A topic deleted and created again under a running worker (and then a restart): the new
topic's records are counted once, none is skipped, nothing is counted twice, other topics
carry on, the reset is recorded and logged, and the audit's chains and replays still hold."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from schemas.envelope import Envelope
from schemas.topics import HEATING
from services.audit.replay import replay_from_kafka, replay_from_ledger
from services.kafka.producer import Producer
from services.kafka.topics import ensure_topics
from streams.db import connect
from streams.settings import Settings
from tests.conftest import WorkerProcess, kafka_options, wait_until
from tests.integration.helpers import (
    chain_breaks,
    expected_rollup,
    heating_events,
    parking_events,
    rollup_rows,
)

pytestmark = pytest.mark.integration


def _stored_ids(settings: Settings) -> list[str]:
    with connect(settings) as conn:
        return [str(row[0]) for row in conn.execute("SELECT event_id FROM events").fetchall()]


def _landed(settings: Settings, events: Sequence[Envelope]) -> bool:
    return {str(e.event_id) for e in events} <= set(_stored_ids(settings))


def _recreate(settings: Settings, topic: str) -> None:
    """Delete the topic and create it again at once, as an operator's script would."""
    admin = KafkaAdminClient(**kafka_options(settings, "admin"))
    try:
        admin.delete_topics([topic])
        deadline = time.monotonic() + 60
        while True:
            try:
                if topic in ensure_topics(settings).created:
                    return
            except KafkaError:
                pass  # still being deleted
            if time.monotonic() > deadline:
                pytest.fail(f"{topic} could not be created again")
            time.sleep(0.2)
    finally:
        admin.close()


def test_a_re_created_topic_is_read_from_its_start_and_counted_once(
    isolated: Settings, worker: WorkerProcess
) -> None:
    heating_topic = isolated.topic_name(HEATING.name)
    producer = Producer(isolated)
    worker.start()
    before = heating_events(90, seed=11)
    parking = parking_events(30, seed=12)
    producer.send_all([*before, *parking[:10]])
    wait_until(
        lambda: _landed(isolated, [*before, *parking[:10]]),
        timeout_s=90,
        what="the first records",
        context=worker.logs,
    )

    _recreate(isolated, heating_topic)
    # Fewer records than the old topic held, at positions its records had; a department
    # re-sends five events it had already sent; parking goes on meanwhile.
    after = [*heating_events(20, seed=13), *before[:5]]
    producer.send_all([*after, *parking[10:20]])
    wait_until(
        lambda: _landed(isolated, [*after, *parking[10:20]]),
        timeout_s=90,
        what="the re-created topic's first records",
        context=worker.logs,
    )
    # More records than the old topic held: beyond every old position.
    more = heating_events(150, seed=14)
    producer.send_all(more)
    wait_until(
        lambda: _landed(isolated, more), timeout_s=90, what="more records", context=worker.logs
    )
    worker.stop()
    worker.start()
    last = heating_events(10, seed=15)
    producer.send_all([*last, *parking[20:]])
    wait_until(
        lambda: _landed(isolated, [*last, *parking[20:]]),
        timeout_s=90,
        what="the records after a restart",
        context=worker.logs,
    )
    producer.close()
    assert worker.alive()

    heating = {e.event_id: e for e in [*before, *after, *more, *last]}
    ids = _stored_ids(isolated)
    assert len(ids) == len(set(ids)) == len(heating) + len(parking)
    totals = rollup_rows(isolated)
    assert {k: v for k, v in totals.items() if k[2].startswith("heating.")} == expected_rollup(
        list(heating.values())  # type: ignore[arg-type]
    )

    with connect(isolated) as conn:
        lives = conn.execute(
            "SELECT topic, incarnation, topic_id, reason FROM topic_incarnations "
            "ORDER BY topic, incarnation"
        ).fetchall()
        new_rows = conn.execute(
            "SELECT count(*) FROM events WHERE topic = %s AND incarnation = 2", (heating_topic,)
        ).fetchone()
    heating_lives = [row for row in lives if row[0] == heating_topic]
    assert [row[1] for row in heating_lives] == [1, 2]
    assert heating_lives[0][2] != heating_lives[1][2]
    assert heating_lives[1][3].startswith("topic reset:")
    assert [row[1] for row in lives if row[0] != heating_topic] == [1] * (len(lives) - 2)
    # The new topic's events are booked on its own incarnation (those re-sent were not
    # counted again: they are the first incarnation's rows).
    assert new_rows is not None and new_rows[0] >= len(more) + len(last)
    assert "was deleted and created again" in worker.logs(tail=None)

    assert chain_breaks(isolated) == []
    for replay in (replay_from_kafka(isolated), replay_from_ledger(isolated)):
        assert replay.differences() == [], replay.source
        assert replay.refused_in_ledger == []
    assert replay_from_kafka(isolated).unread_incarnations == []

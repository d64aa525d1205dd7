"""Heating events end to end: producer → Kafka → worker → ledger and rollup, exactly once."""

from __future__ import annotations

import random
import time

import pytest

from schemas.topics import HEATING
from services.kafka.producer import Producer
from streams.settings import Settings
from tests.conftest import WorkerProcess, kafka_options, wait_until
from tests.integration.helpers import (
    chain_breaks,
    consumed_everything,
    expected_rollup,
    heating_events,
    rollup_rows,
    scalar,
)

pytestmark = pytest.mark.integration


def test_duplicates_and_redeliveries_count_once(isolated: Settings, worker: WorkerProcess) -> None:
    events = heating_events(1000, seed=1)
    rng = random.Random(2)
    duplicates = rng.sample(events, 50)
    stream = events + duplicates
    rng.shuffle(stream)

    worker.start()
    producer = Producer(isolated)
    producer.send_all(stream)
    wait_until(
        lambda: consumed_everything(isolated),
        timeout_s=120,
        what="the first 1,050 records",
        context=worker.logs,
    )

    # Redelivery: the same 20 events produced again after they were counted.
    producer.send_all(rng.sample(events, 20))
    producer.close()
    wait_until(
        lambda: consumed_everything(isolated),
        timeout_s=60,
        what="the 20 redelivered records",
        context=worker.logs,
    )

    assert rollup_rows(isolated) == expected_rollup(events), worker.logs()
    assert scalar(isolated, "SELECT count(*) FROM events") == 1000
    assert scalar(isolated, "SELECT sum(events) FROM metric_daily") == 1000
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0
    assert chain_breaks(isolated) == []
    assert worker.alive()


def test_sigkill_mid_stream_loses_nothing_and_counts_nothing_twice(
    isolated: Settings, worker: WorkerProcess
) -> None:
    events = heating_events(6000, seed=3)
    producer = Producer(isolated)
    producer.send_all(events)

    # Small batches so that the kill lands between many committed transactions.
    worker.start(batch_size=50, batch_wait_s=0.05)
    wait_until(
        lambda: scalar(isolated, "SELECT count(*) FROM events") >= 600,
        timeout_s=90,
        what="the worker to get going",
        context=worker.logs,
    )
    worker.kill()
    at_kill = scalar(isolated, "SELECT count(*) FROM events")
    assert at_kill < len(events), "the worker finished before it could be killed; send more events"

    # More events while it is down, then a restart that must pick up where PostgreSQL says.
    more = heating_events(500, seed=4)
    producer.send_all(more)
    producer.close()
    worker.start(batch_size=50, batch_wait_s=0.05)
    wait_until(
        lambda: consumed_everything(isolated),
        timeout_s=120,
        what="catch-up after SIGKILL",
        context=worker.logs,
    )

    assert rollup_rows(isolated) == expected_rollup(events + more), worker.logs()
    assert scalar(isolated, "SELECT count(*) FROM events") == len(events) + len(more)
    assert chain_breaks(isolated) == []


def test_database_offsets_win_over_kafka_commits(isolated: Settings, worker: WorkerProcess) -> None:
    """Kafka's group offset jumps past records the database never saw (faust bug #606 shape):
    the worker must still process them, because it seeks to the offsets PostgreSQL stored."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    first = heating_events(300, seed=5)
    producer = Producer(isolated)
    producer.send_all(first)
    worker.start()
    wait_until(
        lambda: consumed_everything(isolated),
        timeout_s=90,
        what="the first 300",
        context=worker.logs,
    )
    worker.stop()

    second = heating_events(300, seed=6)
    producer.send_all(second)
    producer.close()

    topic = isolated.topic_name(HEATING.name)
    # As the workers' principal: READ on their group is what lets a member commit.
    consumer = KafkaConsumer(
        **kafka_options(isolated, "worker"),
        group_id=isolated.consumer_group,
        enable_auto_commit=False,
    )
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    ends = consumer.end_offsets(tps)
    # Wait out the stopped worker's session so the commit is accepted for the group.
    deadline = time.monotonic() + 60
    while True:
        try:
            consumer.commit({tp: OffsetAndMetadata(ends[tp], "", -1) for tp in tps})
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    consumer.close()

    worker.start(worker_loglevel="info")
    wait_until(
        lambda: consumed_everything(isolated),
        timeout_s=90,
        what="the second 300",
        context=worker.logs,
    )
    assert rollup_rows(isolated) == expected_rollup(first + second), worker.logs()

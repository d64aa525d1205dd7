"""Hostile records, produced raw with kafka-python against a running worker: each one ends
as a dead letter with its reason (or, where the broker's clock makes it harmless, as an
ordinary event), a good record right behind it on the same partition and one on another
partition both land, and the worker stays up. Then the auditors' tools agree with the live
tables."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from schemas.topics import HEATING
from services.audit.replay import replay_from_kafka, replay_from_ledger
from services.kafka.topics import ensure_topics
from streams.db import connect
from streams.settings import Settings
from tests.conftest import WorkerProcess, kafka_options, wait_until
from tests.integration.helpers import chain_breaks, scalar

pytestmark = pytest.mark.integration

PARTITIONS = 3  # the `isolated` fixture's


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _event(**changes: Any) -> dict[str, Any]:
    return {
        "event_type": "heating.area_connected",
        "event_id": str(uuid.uuid4()),
        "department": "heating",
        "district": "fengyang",
        "occurred_at": "2024-09-01T09:30:00+08:00",
        "reported_at": "2024-09-02T10:00:00+08:00",
        "project": "枫杨佳苑",
        "area_m2": "1200.50",
        **changes,
    }


@dataclass
class Hostile:
    name: str
    event: dict[str, Any]
    timestamp_ms: int | None
    # (reason, field) of its dead letter; None: the record is a valid event and lands.
    expected: tuple[str, str] | None


# The worker judges "now" by the record's Kafka timestamp. On a topic from before broker
# timestamps (CreateTime) that is whatever the producer set.
LEGACY = (
    Hostile("CreateTime 2^62 ms", _event(), 2**62, ("invalid_timestamp", "kafka_timestamp")),
    Hostile(
        # Passes every rule against its own clock; its local (UTC+8) day is in year 10000,
        # which no date can hold: the rollup of its batch fails on it.
        "occurred_at 9999-12-31 with CreateTime 9999",
        _event(occurred_at="9999-12-31T20:00:00+00:00", reported_at="9999-12-31T20:00:00+00:00"),
        _ms(datetime(9999, 12, 31, 21, tzinfo=UTC)),
        ("unprocessable", "occurred_at"),
    ),
)
# Once the topic stamps records itself (LogAppendTime), what the producer claims is ignored.
BROKER_CLOCK = (
    Hostile(
        # 1.000…0 with 20,000 zeros: exact, within the bounds and the decimal places, yet
        # beyond the 16,383 digits after the point a PostgreSQL numeric can hold. Alone in
        # its rollup group (a sum with other amounts would round it to 28 digits).
        "a value PostgreSQL refuses",
        _event(
            area_m2="1." + "0" * 20_000,
            district="shuangqiao",
            occurred_at="2024-03-03T09:30:00+08:00",
        ),
        None,
        ("unprocessable", "heating.connected_area_m2"),
    ),
    Hostile(
        "a valid 2024 event from a sender whose clock says 2001",
        _event(),
        _ms(datetime(2001, 1, 1, tzinfo=UTC)),
        None,
    ),
    Hostile(
        "an event dated 2998 stamped 2999 by its sender",
        _event(occurred_at="2998-06-01T09:00:00+08:00", reported_at="2998-06-01T09:00:00+08:00"),
        _ms(datetime(2999, 1, 1, tzinfo=UTC)),
        ("in_future", "occurred_at"),
    ),
    Hostile("CreateTime 2^62 ms, stamped again by the broker", _event(), 2**62, None),
)


def _timestamp_type(settings: Settings, topic: str, value: str | None = None) -> str:
    admin = KafkaAdminClient(**kafka_options(settings, "admin"))
    try:
        if value is not None:
            admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, {"message.timestamp.type": value})]
            )
        # The broker applies a change from its metadata log: a describe right after the
        # alter may still read the old value (seen once in `make test`), so read until the
        # change shows, for a few seconds at most.
        deadline = time.monotonic() + 10
        asked = ConfigResource(ConfigResourceType.TOPIC, topic, configs=["message.timestamp.type"])
        while True:
            found = admin.describe_configs([asked])
            shown = str(found["topic"][topic]["message.timestamp.type"]["value"])
            if value is None or shown == value or time.monotonic() > deadline:
                return shown
            time.sleep(0.1)
    finally:
        admin.close()


class _Sender:
    """Each hostile record, then a good one on its partition and a good one on the next."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic_name(HEATING.name)
        # A department's own producer: hostile records come from the principal that may write.
        self.producer = KafkaProducer(**kafka_options(settings, "heating"), acks="all")
        self.expected: dict[tuple[int, int], tuple[str, tuple[str, str]]] = {}
        self.landing: list[str] = []  # event ids that must be in the ledger
        self.sent = 0

    def _send(self, event: dict[str, Any], partition: int, timestamp_ms: int | None) -> int:
        meta = self.producer.send(
            self.topic, orjson.dumps(event), partition=partition, timestamp_ms=timestamp_ms
        ).get(timeout=30)
        self.sent += 1
        return int(meta.offset)

    def send(self, i: int, hostile: Hostile) -> None:
        partition = i % PARTITIONS
        offset = self._send(hostile.event, partition, hostile.timestamp_ms)
        if hostile.expected is None:
            self.landing.append(hostile.event["event_id"])
        else:
            self.expected[(partition, offset)] = (hostile.name, hostile.expected)
        for where in (partition, (partition + 1) % PARTITIONS):
            good = _event(area_m2=f"{100 + i}.25")
            self._send(good, where, None)
            self.landing.append(good["event_id"])


def test_no_record_stops_the_worker_or_costs_its_neighbours(
    isolated: Settings, worker: WorkerProcess
) -> None:
    sender = _Sender(isolated)
    # A topic as deployments before broker timestamps made it: the producer's clock counts.
    assert _timestamp_type(isolated, sender.topic, "CreateTime") == "CreateTime"
    for i, hostile in enumerate(LEGACY):
        sender.send(i, hostile)
    # `citystream topics` (as the admin; a worker may not change topics) sets broker
    # timestamps on the topic; records already in it keep the timestamps their producers set.
    ensure_topics(isolated)
    worker.start()
    wait_until(
        lambda: _timestamp_type(isolated, sender.topic) == "LogAppendTime",
        timeout_s=60,
        what="`citystream topics` to set LogAppendTime on the topic",
        context=worker.logs,
    )
    for i, hostile in enumerate(BROKER_CLOCK, start=len(LEGACY)):
        sender.send(i, hostile)
    sender.producer.close()

    def stored() -> int:
        return scalar(isolated, "SELECT count(*) FROM events") + scalar(
            isolated, "SELECT count(*) FROM deadletters"
        )

    wait_until(
        lambda: stored() >= sender.sent,
        timeout_s=120,
        what=f"{sender.sent} records stored or dead-lettered",
        context=worker.logs,
    )
    with connect(isolated) as conn:
        letters = {
            (int(p), int(o)): (reason, field or "", message)
            for p, o, reason, field, message in conn.execute(
                "SELECT partition, kafka_offset, reason, field, message FROM deadletters"
            ).fetchall()
        }
        ids = {str(row[0]) for row in conn.execute("SELECT event_id FROM events").fetchall()}
    found = {
        name: letters.get(at, ("(not dead-lettered)", "", ""))[:2]
        for at, (name, _) in sender.expected.items()
    }
    assert found == {name: expected for name, expected in sender.expected.values()}
    assert len(letters) == len(sender.expected), "a good record was dead-lettered"
    assert sorted(ids) == sorted(sender.landing)
    # The messages say what happened, in both languages.
    overflow = next(m for r, _, m in letters.values() if "OverflowError" in m)
    assert "同批其他记录已存储" in overflow and "the rest of its batch was stored" in overflow
    numeric = next(m for r, _, m in letters.values() if r == "unprocessable" and "numeric" in m)
    assert "PostgreSQL refused" in numeric
    assert worker.alive(), worker.logs()
    assert "Traceback" not in worker.logs(tail=None)

    assert chain_breaks(isolated) == []
    for replay in (replay_from_kafka(isolated), replay_from_ledger(isolated)):
        assert replay.differences() == [], replay.source
    kafka = replay_from_kafka(isolated)
    assert kafka.rejected == {
        "invalid_timestamp": 1,
        "unprocessable": 2,
        "in_future": 1,
    }
    assert kafka.accepted == len(sender.landing)


def test_only_committed_transactions_count(isolated: Settings, worker: WorkerProcess) -> None:
    """A department's transactional producer aborts a transaction: none of its records
    lands, in the ledger or the dead letters; those of the committed one do; the
    auditors' replay from Kafka reads the same way."""
    topic = isolated.topic_name(HEATING.name)
    producer = KafkaProducer(
        **kafka_options(isolated, "heating"),
        # The heating department may use transactional ids starting "heating-" only.
        transactional_id=isolated.topic_name(f"heating-ledger-{uuid.uuid4().hex[:8]}"),
    )
    producer.init_transactions()
    aborted = [_event(area_m2=f"{900 + i}.00") for i in range(4)]
    committed = [_event(area_m2=f"{500 + i}.00") for i in range(3)]
    worker.start()
    producer.begin_transaction()
    for i, event in enumerate(aborted):
        producer.send(topic, orjson.dumps(event), partition=i % PARTITIONS)
    producer.flush()
    producer.abort_transaction()
    producer.begin_transaction()
    for i, event in enumerate(committed):
        producer.send(topic, orjson.dumps(event), partition=i % PARTITIONS)
    producer.commit_transaction()
    producer.close()
    # After both transactions, on every partition: once these land, the worker has passed
    # the aborted records.
    plain = KafkaProducer(**kafka_options(isolated, "heating"))
    after = [_event(area_m2="10.00") for _ in range(PARTITIONS)]
    for p, event in enumerate(after):
        plain.send(topic, orjson.dumps(event), partition=p)
    plain.close()

    expected = {e["event_id"] for e in [*committed, *after]}
    with_ids = lambda: {  # noqa: E731 - read again at every poll
        str(r[0]) for r in _rows(isolated, "SELECT event_id FROM events")
    }
    wait_until(
        lambda: expected <= with_ids(),
        timeout_s=60,
        what="the committed records",
        context=worker.logs,
    )
    assert with_ids() == expected
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0
    replay = replay_from_kafka(isolated)
    assert replay.differences() == []
    assert replay.accepted == len(expected) and sum(replay.rejected.values()) == 0


def _rows(settings: Settings, query: str) -> list[tuple[Any, ...]]:
    with connect(settings) as conn:
        return conn.execute(query.encode()).fetchall()

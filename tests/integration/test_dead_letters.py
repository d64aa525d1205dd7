"""The bad-input corpus through a real worker: every bad record lands in the dead letters
with the exact reason and field, the good records beside it land in the ledger, and the
worker never stops."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.topics import BY_FAMILY
from services.kafka.producer import Producer
from streams.db import connect
from streams.settings import Settings
from tests.conftest import WorkerProcess, wait_until
from tests.integration.helpers import scalar
from tests.unit.bad_inputs import CASES, GOOD, NOW, Case

pytestmark = pytest.mark.integration

# The corpus judges "in the future" against NOW. The worker judges against the record's
# Kafka timestamp, which the broker stamps on append (LogAppendTime): whatever a sender
# claims (NOW_MS here) does not count. The clock-dependent cases are therefore moved to the
# broker's present before they are sent.
NOW_MS = int(NOW.timestamp() * 1000)
CLOCK_REASONS = {"in_future"}


def _at_broker_time(case: Case) -> bytes:
    """The case's record with every time moved by (now − NOW): as far in the future of the
    broker's clock as the corpus puts it in the future of NOW."""
    shift = datetime.now(UTC) - NOW + timedelta(minutes=1)
    data = orjson.loads(case.raw or b"")
    for name in ("occurred_at", "reported_at"):
        data[name] = (datetime.fromisoformat(data[name]) + shift).isoformat()
    return orjson.dumps(data)


def _all_consumed(settings: Settings, sent: int) -> bool:
    return (
        scalar(settings, "SELECT count(*) FROM events")
        + scalar(settings, "SELECT count(*) FROM deadletters")
        >= sent
    )


def _progress(settings: Settings, worker: WorkerProcess) -> str:
    events = scalar(settings, "SELECT count(*) FROM events")
    letters = scalar(settings, "SELECT count(*) FROM deadletters")
    errors = [line[:600] for line in worker.logs(tail=None).splitlines() if "Error" in line]
    return f"events {events}, dead letters {letters}\n" + "\n".join(errors[-10:])


def _good(event_type: str) -> bytes:
    return orjson.dumps({**GOOD[event_type], "event_id": str(uuid.uuid4())})


def _coordinates(future: Any) -> tuple[str, int, int]:
    meta = future.get(timeout=30)
    return meta.topic, meta.partition, meta.offset


def test_every_bad_record_is_dead_lettered_with_its_reason(
    isolated: Settings, worker: WorkerProcess
) -> None:
    producer = Producer(isolated)
    worker.start()
    decode_cases = [c for c in CASES if c.stage == "decode"]
    sink_cases = [c for c in CASES if c.stage == "sink"]
    good_types = [t for t in GOOD if not t.endswith(".correction")]

    # Records the sink-stage cases need in the ledger first (an original, an id in use).
    before = [
        producer.send_raw(BY_FAMILY[c.family].name, raw, timestamp_ms=NOW_MS)
        for c in sink_cases
        for raw in c.before
    ]
    producer.flush()
    wait_until(
        lambda: _all_consumed(isolated, len(before)),
        timeout_s=60,
        what="the records the sink cases build on",
        context=worker.logs,
    )

    expected: dict[tuple[str, int, int], tuple[str, str, str | None]] = {}
    good = []
    for i, case in enumerate(decode_cases + sink_cases):
        spec = BY_FAMILY[case.family]
        # A key, so that Kafka takes even the record with no value (a tombstone).
        raw = _at_broker_time(case) if case.reason in CLOCK_REASONS else case.raw
        future = producer.send_raw(spec.name, raw, key=b"corpus", timestamp_ms=NOW_MS)
        expected[_coordinates(future)] = (case.name, case.reason, case.field)
        # A good record right beside every bad one, on a rotating event type.
        good.append(
            producer.send_raw(
                BY_FAMILY[good_types[i % len(good_types)].partition(".")[0]].name,
                _good(good_types[i % len(good_types)]),
                timestamp_ms=NOW_MS,
            )
        )
    producer.flush()
    total = len(before) + len(expected) + len(good)
    wait_until(
        lambda: _all_consumed(isolated, total),
        timeout_s=120,
        what=f"{total} records",
        context=lambda: _progress(isolated, worker),
    )

    with connect(isolated) as conn:
        rows = conn.execute(
            "SELECT topic, partition, kafka_offset, reason, field, message FROM deadletters"
        ).fetchall()
    found = {(t, p, o): (reason, field, message) for t, p, o, reason, field, message in rows}
    mismatches = [
        f"{name}: expected {reason}/{field}, got {found.get(at)}"
        for at, (name, reason, field) in expected.items()
        if found.get(at, (None, None))[:2] != (reason, field)
    ]
    assert mismatches == []
    assert len(found) == len(expected), "a good record was dead-lettered"
    assert all(message for _, _, message in found.values())
    assert scalar(isolated, "SELECT count(*) FROM events") == len(before) + len(good)
    assert worker.alive()
    producer.close()


def test_identical_redelivery_counts_once_and_is_no_error(
    isolated: Settings, worker: WorkerProcess
) -> None:
    raw = _good("heating.area_connected")
    producer = Producer(isolated)
    worker.start()
    producer.send_raw("city.heating.v1", raw, timestamp_ms=NOW_MS)
    producer.flush()
    wait_until(lambda: _all_consumed(isolated, 1), timeout_s=60, what="the original")
    producer.send_raw("city.heating.v1", raw, timestamp_ms=NOW_MS)
    producer.send_raw("city.heating.v1", _good("heating.area_connected"), timestamp_ms=NOW_MS)
    producer.close()
    wait_until(lambda: _all_consumed(isolated, 2), timeout_s=60, what="the redelivery")
    assert scalar(isolated, "SELECT count(*) FROM events") == 2
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0

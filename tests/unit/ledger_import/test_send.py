"""Stage 6, send, on its own, against a stand-in producer: every row Kafka did not
acknowledge is reported, never dropped. No socket."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from schemas.envelope import Envelope
from schemas.topics import BY_EVENT_TYPE, HEATING
from services import ledger_import as li
from services.kafka.client import DeliveryError
from tests.unit.ledger_import.support import (
    HEAT_HEADERS,
    events_of,
    plan_of,
    write_csv,
)

# --- sending, with a stand-in producer ----------------------------------------------------------


class FakeFuture:
    def __init__(self, error: str | None = None, done: bool = True) -> None:
        self.is_done = done
        self.exception = error

    def failed(self) -> bool:
        return self.exception is not None


class FakeProducer:
    def __init__(self, fail_refs: Collection[str] = (), flush_fails_at: int | None = None) -> None:
        self.sent: list[Envelope] = []
        self.fail_refs = fail_refs
        self.flush_fails_at = flush_fails_at
        self.flushes = 0

    def send(self, event: Envelope) -> FakeFuture:
        self.sent.append(event)
        if event.source_ref in self.fail_refs:
            return FakeFuture("KafkaTimeoutError: batch expired")
        return FakeFuture(done=self.flush_fails_at is None or self.flushes < self.flush_fails_at)

    def flush(self) -> None:
        self.flushes += 1
        if self.flush_fails_at is not None and self.flushes > self.flush_fails_at:
            raise DeliveryError("Kafka did not take the queued events")


def _ledger_plan(tmp_path: Path, n: int) -> li.Plan:
    rows = [[f"R{i}", "甲", "石佛", "2024-10-08", str(100 + i)] for i in range(n)]
    return plan_of(write_csv(tmp_path / "l.csv", HEAT_HEADERS, rows))


def test_send_reports_every_row_kafka_did_not_acknowledge(tmp_path: Path) -> None:
    plan = _ledger_plan(tmp_path, 10)
    producer = FakeProducer({"R9"})
    sent, failed = li.send_plan(plan, producer, batch_size=4)
    assert sent == 9 and producer.flushes == 3
    assert [(f.row, f.reason) for f in failed] == [(11, "delivery_failed")]
    assert "batch expired" in failed[0].message_en
    assert failed[0].cells == ("R9", "甲", "石佛", "2024-10-08", "109")


def test_after_a_failure_the_rest_is_reported_not_dropped(tmp_path: Path) -> None:
    plan = _ledger_plan(tmp_path, 10)
    producer = FakeProducer({"R2"})
    sent, failed = li.send_plan(plan, producer, batch_size=4)
    assert sent == 3  # R0, R1, R3 of the first batch
    assert [f.row for f in failed] == [4, *range(6, 12)]
    assert "not tried" in failed[-1].message_en


def test_send_stops_after_a_failed_flush_and_reports_the_rest(tmp_path: Path) -> None:
    plan = _ledger_plan(tmp_path, 10)
    producer = FakeProducer(flush_fails_at=1)
    sent, failed = li.send_plan(plan, producer, batch_size=4)
    assert sent == 4
    assert [f.row for f in failed] == list(range(6, 12))  # nothing silently dropped
    assert len(producer.sent) == 8  # the third batch was not tried
    assert all(f.reason == "delivery_failed" for f in failed)


def test_events_sent_are_the_events_validated(tmp_path: Path) -> None:
    plan = _ledger_plan(tmp_path, 3)
    producer = FakeProducer()
    li.send_plan(plan, producer)
    assert producer.sent == events_of(plan)
    assert all(e.event_type_name == "heating.area_connected" for e in producer.sent)
    assert {HEATING.name} == {BY_EVENT_TYPE[e.event_type_name].name for e in producer.sent}

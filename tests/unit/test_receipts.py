"""Receipts without Kafka: what the worker builds for a committed batch (stored, duplicate,
refused; routed to the sending department; chunked; marked), the record format both ends
share, how a waiting reader settles its records, and how a department's receipts fold into
what the ledger holds of its events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson

from schemas.heating import CONNECTED_AREA_M2, HeatingAreaConnected, HeatingCorrection
from schemas.receipts import (
    CHUNK,
    MAX_RECORD_BYTES,
    Mark,
    Receipt,
    decode_record,
    encode_chunks,
    encode_mark,
    encode_receipts,
    receipt_entry,
)
from schemas.topics import HEATING
from services.receipts.view import Waiting, fold
from streams import receipts as worker
from streams.batch import Record, SinkResult, prepare, sink_rejection

TOPIC = "t.city.heating.v1"
WHEN = datetime(2024, 11, 2, 2, tzinfo=UTC)


def _event(n: int, area: str = "1200") -> HeatingAreaConnected:
    return HeatingAreaConnected(
        event_id=uuid.uuid5(uuid.NAMESPACE_OID, str(n)),
        department="heating",
        district="shifo",
        occurred_at=WHEN,
        reported_at=WHEN,
        source_ref=f"GR-{n}",
        area_m2=Decimal(area),
    )


def _record(offset: int, value: bytes, partition: int = 0) -> Record:
    return Record(TOPIC, partition, offset, value, int(WHEN.timestamp() * 1000) + 60_000)


def _decoded(outgoing: list[worker.Outgoing]) -> list[list[Receipt] | Mark]:
    out = []
    for item in outgoing:
        found = decode_record(item.value, 0)
        assert found is not None
        out.append(found)
    return out


def test_a_committed_batch_gives_one_receipt_per_record_then_marks() -> None:
    good, again = _event(1), _event(2)
    records = [
        _record(0, good.model_dump_json().encode()),
        _record(1, b'{"event_type": "heating.area_connected", "area_m2": -1}'),
        _record(2, good.model_dump_json().encode()),  # a repeat within the batch
        _record(3, again.model_dump_json().encode(), partition=1),
    ]
    batch = prepare(HEATING, records)
    refused = [(r, w) for r, w in batch.rejected]
    result = SinkResult(inserted=1, inserted_by_type={}, duplicates=2, rejected=refused)
    # Record 3's event was in the ledger already: PostgreSQL says only 0 was stored.
    receipts, marks = worker.build(HEATING, batch, [result], stored={(0, 0)})
    assert {o.department for o in receipts + marks} == {"heating"}
    by_offset = {r.offset: r for found in _decoded(receipts) for r in found}  # type: ignore[union-attr]
    assert {o: r.outcome for o, r in by_offset.items()} == {
        0: "stored",
        1: "refused",
        2: "duplicate",
        3: "duplicate",
    }
    assert by_offset[0].event == orjson.loads(good.model_dump_json())
    assert by_offset[0].event_id == str(good.event_id) and by_offset[0].source_ref == "GR-1"
    assert (by_offset[1].reason, by_offset[1].field) == ("missing_field", "event_id")
    assert by_offset[1].message_zh and by_offset[1].message_en
    assert by_offset[2].event_id == str(good.event_id)
    assert _decoded(marks) == [Mark(TOPIC, 1, 0, 3), Mark(TOPIC, 1, 1, 4)]


def test_postgresql_is_asked_only_when_a_batch_had_duplicates() -> None:
    records = [_record(i, _event(i).model_dump_json().encode()) for i in range(3)]
    batch = prepare(HEATING, records)
    fresh = SinkResult(inserted=3, inserted_by_type={}, duplicates=0, rejected=[])
    assert worker.all_stored(batch, [fresh])
    some = SinkResult(inserted=2, inserted_by_type={}, duplicates=1, rejected=[])
    assert not worker.all_stored(batch, [some])
    receipts, _ = worker.build(HEATING, batch, [fresh], stored=None)
    assert {r.outcome for found in _decoded(receipts) for r in found} == {"stored"}  # type: ignore[union-attr]


def test_a_sink_refusal_names_the_event_it_refused() -> None:
    correction = HeatingCorrection(
        event_id=uuid.uuid4(),
        department="heating",
        district="shifo",
        occurred_at=WHEN,
        reported_at=WHEN,
        corrects=uuid.uuid4(),
        metric=CONNECTED_AREA_M2,
        delta=Decimal(-5),
        reason="x",
        approved_by="y",
        source_ref="审批单 7",
    )
    record = _record(9, correction.model_dump_json().encode())
    batch = prepare(HEATING, [record])
    why = sink_rejection("unknown_corrected_event", "corrects", "x", "r", zh="z", en="e")
    result = SinkResult(inserted=0, inserted_by_type={}, duplicates=0, rejected=[(record, why)])
    receipts, _ = worker.build(HEATING, batch, [result], stored=None)
    ((receipt,),) = _decoded(receipts)  # type: ignore[misc]
    assert (receipt.outcome, receipt.reason, receipt.source_ref) == (
        "refused",
        "unknown_corrected_event",
        "审批单 7",
    )
    assert receipt.event_id == str(correction.event_id) and receipt.event is None


def test_a_large_batch_is_sent_in_chunks_and_marked_once_per_partition() -> None:
    records = [_record(i, _event(i).model_dump_json().encode()) for i in range(CHUNK * 2 + 7)]
    batch = prepare(HEATING, records)
    result = SinkResult(inserted=len(records), inserted_by_type={}, duplicates=0, rejected=[])
    receipts, marks = worker.build(HEATING, batch, [result], stored=None)
    assert [o.receipts for o in receipts] == [CHUNK, CHUNK, 7]
    assert len({o.key for o in receipts}) == 3 and len(marks) == 1
    assert all(len(o.value) < 1_000_000 for o in receipts)


def test_a_batch_of_stored_events_gives_the_receipts_the_general_path_gives() -> None:
    """The common batch (every record stored, none refused) takes a shorter path: its
    records must be byte for byte those of the path every other batch takes."""
    events = [_event(n) for n in range(7)]
    events.append(events[0].model_copy(update={"event_id": uuid.uuid4(), "source_ref": None}))
    records = [
        _record(n, e.model_dump_json().encode(), partition=n % 3) for n, e in enumerate(events)
    ]
    batch = prepare(HEATING, records)
    result = SinkResult(inserted=len(records), inserted_by_type={}, duplicates=0, rejected=[])
    short = worker._Receipts(HEATING, batch, [result], None)
    general = worker._Receipts(HEATING, batch, [result], None)
    assert short.stored_only
    general.stored_only = False
    for receipts in (short, general):
        receipts.add(0, 5)
        receipts.add(5, len(records))
    assert [(o.key, o.value) for o in short.encode()] == [
        (o.key, o.value) for o in general.encode()
    ]
    read = [r for item in _decoded(list(short.encode())) for r in item]  # type: ignore[union-attr]
    assert sorted((r.partition, r.offset, r.outcome) for r in read) == [
        (n % 3, n, "stored") for n in sorted(range(8), key=lambda n: (n % 3, n))
    ]
    by_offset = {r.offset: r for r in read}
    assert by_offset[7].source_ref is None and by_offset[0].source_ref == "GR-0"


def test_a_receipts_record_stays_under_the_byte_bound_whatever_the_events_hold() -> None:
    """500 valid events of several kilobytes each would pass the broker's 1 MB limit in one
    record: the record is split until each part fits (or holds a single receipt)."""
    big = b'{"name": "' + "长".encode() * 3000 + b'"}'
    entries = [
        receipt_entry(offset, "stored", event_id=str(offset), event=big) for offset in range(CHUNK)
    ]
    parts = list(encode_chunks(TOPIC, 1, 0, entries))
    assert len(parts) > 1
    assert all(len(value) <= MAX_RECORD_BYTES for _, value, _ in parts)
    read = [decode_record(value, 0) for _, value, _ in parts]
    offsets = [r.offset for part in read for r in part]  # type: ignore[union-attr]
    assert offsets == list(range(CHUNK))
    assert [count for _, _, count in parts] == [len(part) for part in read]  # type: ignore[arg-type]
    first, last = parts[0][0].decode(), parts[-1][0].decode()
    assert first.endswith("/0-" + str(len(read[0]) - 1)) and last.endswith(f"-{CHUNK - 1}")  # type: ignore[arg-type]
    alone = receipt_entry(0, "stored", event_id="x", event=b'"' + b"x" * MAX_RECORD_BYTES + b'"')
    assert [count for _, _, count in encode_chunks(TOPIC, 1, 0, [alone])] == [1]


def test_the_record_format_reads_back_and_skips_what_it_does_not_know() -> None:
    key, value = encode_mark(TOPIC, 2, 5, 120)
    assert key == f"mark/{TOPIC}/2/5".encode()
    assert decode_record(value) == Mark(TOPIC, 2, 5, 120)
    assert decode_record(b'{"v": 2, "kind": "receipts"}') is None
    assert decode_record(b"not json") is None and decode_record(None) is None
    key, value = encode_receipts(TOPIC, 1, 0, [{"offset": 7, "outcome": "stored"}])
    assert key == f"{TOPIC}/1/0/7-7".encode()
    (receipt,) = decode_record(value, 1_700_000_000_000)  # type: ignore[misc]
    assert receipt.position == (TOPIC, 0, 7) and receipt.judged_at is not None


def test_a_waiting_reader_settles_by_receipt_or_by_a_mark_past_the_record() -> None:
    waiting = Waiting([(TOPIC, 0, 4), (TOPIC, 0, 5), (TOPIC, 1, 2)])
    assert waiting.take([Receipt(TOPIC, 1, 0, 4, "refused", reason="x")]) == 1
    assert waiting.take(Mark(TOPIC, 1, 0, 5)) == 0  # 5 is not below 5
    assert waiting.take(Mark(TOPIC, 1, 0, 9)) == 1  # passed without a receipt: duplicate
    assert not waiting.done
    assert waiting.take([Receipt(TOPIC, 1, 1, 2, "stored")]) == 1 and waiting.done
    outcomes = {p: o.outcome for p, o in waiting.outcomes.items()}
    assert outcomes == {
        (TOPIC, 0, 4): "refused",
        (TOPIC, 0, 5): "duplicate",
        (TOPIC, 1, 2): "stored",
    }
    assert Waiting([]).done


def test_receipts_fold_into_what_the_ledger_holds() -> None:
    original = _event(1)
    other = _event(2)
    oid = str(original.event_id)

    def stored(offset: int, event: dict[str, object], ref: str) -> Receipt:
        return Receipt(
            TOPIC, 1, 0, offset, "stored", str(event["event_id"]), source_ref=ref, event=event
        )

    correction = {"event_id": "c1", "corrects": oid, "metric": CONNECTED_AREA_M2, "delta": "150"}
    records: list[list[Receipt] | Mark] = [
        [stored(0, orjson.loads(original.model_dump_json()), "GR-1")],
        [stored(1, orjson.loads(other.model_dump_json()), "GR-2")],
        [stored(2, correction, "GR-1~更正1")],
        [stored(2, correction, "GR-1~更正1")],  # published again after a crash
        [Receipt(TOPIC, 1, 0, 3, "refused", reason="duplicate_event_id")],
        Mark(TOPIC, 1, 0, 4),
    ]
    view = fold(records, [oid])
    assert list(view.events) == [oid]
    held = view.events[oid]
    assert held.event["source_ref"] == "GR-1"
    assert held.corrected == {CONNECTED_AREA_M2: Decimal(150)} and held.corrections == 1
    assert view.correction_refs == {"GR-1~更正1"} and view.receipts_read == 5

"""The worker's consumer unpacks fetched records straight into :class:`Record`s; any other
consumer's stay aiokafka's own (streams.consumer._PartitionRecords)."""

from __future__ import annotations

from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition

from schemas.validation import CREATE_TIME
from streams.batch import Record
from streams.consumer import _as_record, _PartitionRecords

READ_COMMITTED = 1


def _fetched(*values: bytes | None, base: int = 40) -> MemoryRecords:
    batch = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i, value in enumerate(values):
        batch.append(
            base + i, timestamp=1_700_000_000_000 + i, key=b"k", value=value, headers=[("h", b"")]
        )
    return MemoryRecords(bytes(batch.build()))


def _unpacked(cls: type[PartitionRecords], deserializer: object) -> list[object]:
    # Fetched from offset 41: the record at 40 lies before the position and is skipped.
    records = cls(
        TopicPartition("city.heating.v1", 3),
        _fetched(b'{"a":1}', None, b"x"),
        [],
        41,
        None,
        deserializer,
        True,
        READ_COMMITTED,
    )
    out = list(records)
    assert records.next_fetch_offset == 43
    return out


def test_the_worker_consumer_gets_records() -> None:
    assert _unpacked(_PartitionRecords, _as_record) == [
        Record("city.heating.v1", 3, 41, None, 1_700_000_000_001, CREATE_TIME),
        Record("city.heating.v1", 3, 42, b"x", 1_700_000_000_002, CREATE_TIME),
    ]
    assert all(type(r) is Record for r in _unpacked(_PartitionRecords, _as_record))


def test_another_consumer_gets_aiokafkas_records() -> None:
    mine, theirs = _unpacked(_PartitionRecords, None), _unpacked(PartitionRecords, None)
    assert mine == theirs
    assert all(type(r) is ConsumerRecord for r in mine)
    assert [(r.offset, r.value, r.key, r.headers) for r in mine] == [  # type: ignore[attr-defined]
        (41, None, b"k", (("h", b""),)),
        (42, b"x", b"k", (("h", b""),)),
    ]

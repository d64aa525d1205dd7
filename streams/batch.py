"""The batch: Kafka records as the worker read them, decoded and validated.

``prepare`` is pure (no I/O): decode and validate every record, drop in-batch
duplicates, note the next offset per partition. ``streams.db.ledger.write_batch`` then
writes it in one transaction, and only after that commits does the agent ack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from schemas.envelope import Envelope
from schemas.rejections import Rejection
from schemas.topics import TopicSpec
from schemas.validation import LOG_APPEND_TIME, decode, record_clock

if TYPE_CHECKING:
    from streams.db.batch_rows import BatchRows

TopicPartition = tuple[str, int]


class Record(NamedTuple):
    """One Kafka record as the worker consumed it, exactly as Kafka gave it: nothing here is
    interpreted yet, so building a Record cannot fail whatever the record holds.

    A named tuple, not a frozen dataclass: the consumer makes one per record, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field) took 0.7 µs of it."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    # The record's Kafka timestamp (ms) and its type (CreateTime 0, LogAppendTime 1): "in
    # the future" is judged against it, not the wall clock, so a replay rejects exactly what
    # the first run rejected (schemas.validation.record_clock). None: judge by the wall clock.
    timestamp_ms: int | None = None
    timestamp_type: int = LOG_APPEND_TIME


@dataclass
class Batch:
    # The records as read, in order: what a batch that fails on one of them is split by.
    records: list[Record]
    # The incarnation of the family's topic these records belong to (streams.db.cursors).
    incarnation: int = 1
    accepted: list[tuple[Record, Envelope]] = field(default_factory=list)
    rejected: list[tuple[Record, Rejection]] = field(default_factory=list)
    # Records whose event_id already appeared earlier in this batch.
    repeated: int = 0
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    # Its ledger rows, built ahead while the batch before was written; used only if they
    # are what its transaction would build (streams.db.batch_rows.adopt).
    prebuilt: BatchRows | None = None
    # The accepted events by id (as an integer): an id seen again in the batch is a repeat
    # or a reuse.
    seen: dict[int, Envelope] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class SinkResult:
    inserted: int
    inserted_by_type: dict[str, int]
    duplicates: int
    # Every record not accepted: those ``prepare`` rejected and those the ledger did.
    rejected: list[tuple[Record, Rejection]]


def sink_rejection(
    reason: str, field: str | None, value: str | None, rule: str, *, zh: str, en: str
) -> Rejection:
    """A rejection only the ledger can decide (an unknown corrected event, a reused id)."""
    shown = None if value is None else value[:200]
    return Rejection.build(reason, field, shown, rule=rule, zh=zh, en=en)


def batch_end(records: list[Record], *, size: int, max_bytes: int) -> int:
    """How many of ``records`` the next batch takes: at most ``size`` records and, past
    the first, no more than ``max_bytes`` of values. A record may be as large as the broker
    allows (1 MB by default), far beyond what an event is; without a byte bound a batch of
    such records would hold gigabytes before validation refused a single one."""
    taken = 0
    for end, record in enumerate(records[:size]):
        taken += len(record.value or b"")
        if taken > max_bytes and end > 0:
            return end
    return min(size, len(records))


def prepare(spec: TopicSpec, records: list[Record], *, incarnation: int = 1) -> Batch:
    batch = Batch(records, incarnation)
    decode_into(batch, spec, records)
    return batch


async def prepare_stepwise(
    spec: TopicSpec, records: list[Record], *, incarnation: int = 1
) -> Batch:
    """:func:`prepare`, letting the event loop run between every :data:`STEP` records: the
    write in flight then sends its next statement as soon as PostgreSQL answered the last
    one, instead of waiting for the whole batch to be decoded."""
    batch = Batch(records, incarnation)
    for start in range(0, len(records), STEP):
        decode_into(batch, spec, records[start : start + STEP])
        await asyncio.sleep(0)
    return batch


# Records decoded between two turns of the event loop (~0.2 ms): the write in flight waits
# no longer than that for its turn when PostgreSQL answers (with 128, a backlog drained
# about 12% slower).
STEP = 32


def decode_into(batch: Batch, spec: TopicSpec, records: Iterable[Record]) -> None:
    """Decode and validate ``records`` (of ``batch``, in order) into ``batch``."""
    seen = batch.seen
    next_offsets = batch.next_offsets
    # Records appended together share their LogAppendTime: each distinct stamp is read once.
    stamp: tuple[int | None, int] | None = None
    now: datetime | Rejection | None = None
    for record in records:
        topic, partition, offset, value, timestamp_ms, timestamp_type = record
        tp = (topic, partition)
        if next_offsets.get(tp, 0) <= offset:
            next_offsets[tp] = offset + 1
        if timestamp_ms is None:
            stamp, now = None, None
        elif stamp != (timestamp_ms, timestamp_type):
            stamp = (timestamp_ms, timestamp_type)
            now = record_clock(timestamp_ms, timestamp_type)
        if isinstance(now, Rejection):
            batch.rejected.append((record, now))
            continue
        outcome = decode(spec, value, now=now)
        if isinstance(outcome, Rejection):
            batch.rejected.append((record, outcome))
            continue
        # By the id's integer: UUID's own hash is a Python method, called twice per event.
        key = outcome.event_id.int
        if key not in seen:
            seen[key] = outcome
            batch.accepted.append((record, outcome))
        elif seen[key] == outcome:
            batch.repeated += 1
        else:
            batch.rejected.append((record, reused_event_id(outcome)))


def reused_event_id(event: Envelope) -> Rejection:
    return sink_rejection(
        "duplicate_event_id",
        "event_id",
        str(event.event_id),
        "event_id is unique",
        zh="该 event_id 已用于另一条不同的记录；新记录请使用新的 event_id",
        en="this event_id was already used for a different record; use a new event_id",
    )

"""The batch sink: decode a batch of Kafka records, then hand it to the ledger writer.

``prepare`` is pure (no I/O): decode and validate every record, drop in-batch
duplicates, note the next offset per partition. ``streams.db.ledger.write_batch`` then
writes it in one transaction, and only after that commits does the agent ack.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.envelope import Envelope
from schemas.topics import TopicSpec
from schemas.validation import Rejection, decode

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Record:
    """One Kafka record as the worker consumed it."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


@dataclass
class Batch:
    accepted: list[tuple[Record, Envelope]] = field(default_factory=list)
    rejected: list[tuple[Record, Rejection]] = field(default_factory=list)
    # Records whose event_id already appeared earlier in this batch.
    repeated: int = 0
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SinkResult:
    inserted: int
    inserted_by_type: dict[str, int]
    duplicates: int
    # Every record not accepted: those ``prepare`` rejected and those the ledger did.
    rejected: list[tuple[Record, Rejection]]


def prepare(spec: TopicSpec, records: list[Record]) -> Batch:
    batch = Batch()
    seen: set[object] = set()
    for record in records:
        tp = (record.topic, record.partition)
        batch.next_offsets[tp] = max(batch.next_offsets.get(tp, 0), record.offset + 1)
        outcome = decode(spec, record.value)
        if isinstance(outcome, Rejection):
            batch.rejected.append((record, outcome))
        elif outcome.event_id in seen:
            batch.repeated += 1
        else:
            seen.add(outcome.event_id)
            batch.accepted.append((record, outcome))
    return batch

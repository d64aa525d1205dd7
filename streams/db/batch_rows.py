"""What one batch writes, built in Python before any of it is sent: the ledger rows with
their hash chain, the rows of ``event_keys`` and ``correction_keys``, and what the rollup
sums. Pure (no I/O), so its cost is measured on its own (``make bench``: peers).

Rows are built ahead, while PostgreSQL writes the batch before (:func:`prebuild`, from the
chain heads that batch's rows ended on), and used in the batch's transaction only if they
are exactly what it would build there (:func:`adopt`): the heads it locked are those, every
accepted event is new, and they are stamped after every batch this worker committed. Else
the transaction builds them itself, as it always did. The prebuild only moves Python work
off the path on which PostgreSQL waits; what is written is the same either way.

Each event's payload is serialised once, keys sorted, and those bytes serve three times:
the ``payload`` jsonb column, the hash chain's canonical content
(:func:`streams.chain.content`) and the digest ``event_keys`` keeps. Serialising the payload
for each of them was a third of the sink's Python time per event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

import orjson

from schemas.corrections import Correction
from schemas.envelope import Envelope
from streams.batch import Record, TopicPartition
from streams.chain import SORTED, ContentOf, event_json, instant, json_digest, link
from streams.db.ledger_row import LedgerRow
from streams.rollup import RollupKey, Totals, rollup

# jsonb's binary input: a version byte, then the JSON text.
JSONB_V1 = b"\x01"

# A LedgerRow made from a tuple of its fields, without the named tuple's __new__ (a Python
# function with 19 parameters, called once per row).
_row = tuple.__new__

# (occurred_at, district, measures) of each new event: what streams.rollup sums.
Measured = tuple[datetime, str, Mapping[str, Decimal]]


@dataclass
class BatchRows:
    # When the batch was ingested: the one instant its rows carry.
    ingested_at: datetime
    # Each partition's chain head the rows were linked from.
    start: dict[TopicPartition, bytes]
    ledger: list[LedgerRow] = field(default_factory=list)
    # (event_id, ingested_at, topic, incarnation, partition, kafka_offset, digest)
    keys: list[tuple[Any, ...]] = field(default_factory=list)
    # (event_id, corrects, department, source_ref, metric, delta)
    corrections: list[tuple[Any, ...]] = field(default_factory=list)
    measured: list[Measured] = field(default_factory=list)
    # Each partition's chain head after these rows.
    heads: dict[TopicPartition, bytes] = field(default_factory=dict)
    # What the rows add to the daily rollup (streams.rollup), once summed.
    groups: dict[RollupKey, Totals] | None = None
    # The canonical content's template per (topic, incarnation): the same for every row.
    templates: dict[tuple[str, int], ContentOf] = field(default_factory=dict, repr=False)

    def rollup(self) -> dict[RollupKey, Totals]:
        if self.groups is None:
            self.groups = rollup(self.measured)
        return self.groups


def build_rows(
    fresh: Sequence[tuple[Record, Envelope]],
    *,
    incarnation: int,
    ingested_at: datetime,
    heads: Mapping[TopicPartition, bytes],
) -> BatchRows:
    """The rows of ``fresh`` (new events, in chain order), each linked to the one before it
    in its partition, starting from ``heads``."""
    built = BatchRows(ingested_at, dict(heads), heads=dict(heads))
    add_rows(built, fresh, incarnation=incarnation)
    return built


def add_rows(
    built: BatchRows, fresh: Iterable[tuple[Record, Envelope]], *, incarnation: int
) -> None:
    """Append the rows of ``fresh`` (the next events in chain order) to ``built``."""
    chain = built.heads
    ingested_at = built.ingested_at
    templates = built.templates
    ledger, keys, measured = built.ledger.append, built.keys.append, built.measured.append
    for record, event in fresh:
        topic, partition, offset = record[:3]
        tp = (topic, partition)
        payload_json = event_json(event)
        quantities = event.measures()
        # Each quantity (a Decimal: orjson asks the default) as its str(), in C.
        measures_json = orjson.dumps(quantities, option=SORTED, default=str)
        event_id = event.event_id
        # The code's text: str() of a StrEnum member is str's own, in C.
        district = str(event.district)
        template = templates.get((topic, incarnation))
        if template is None:
            template = templates[(topic, incarnation)] = ContentOf(
                topic=topic, incarnation=incarnation, ingested_at=instant(ingested_at)
            )
        prev = chain[tp]
        chain[tp] = head = link(
            prev, template(orjson.dumps(event_id), partition, offset, payload_json, measures_json)
        )
        correction = event if isinstance(event, Correction) else None
        ledger(
            _row(
                LedgerRow,
                (
                    event_id,
                    event.event_type_name,
                    event.schema_version,
                    event.department,
                    district,
                    event.occurred_at,
                    event.reported_at,
                    ingested_at,
                    event.project,
                    event.source_ref,
                    None if correction is None else correction.corrects,
                    # The jsonb columns go as jsonb's binary form, written here (streams.db.
                    # ledger's COPY); readers get them back parsed, as the row's types say.
                    JSONB_V1 + measures_json,
                    JSONB_V1 + payload_json,
                    topic,
                    incarnation,
                    partition,
                    offset,
                    prev,
                    head,
                ),
            )
        )
        keys(
            (
                event_id,
                ingested_at,
                topic,
                incarnation,
                partition,
                offset,
                json_digest(payload_json),
            )
        )
        if correction is not None:
            built.corrections.append(
                (
                    event_id,
                    correction.corrects,
                    correction.department,
                    correction.source_ref,
                    correction.metric,
                    correction.delta,
                )
            )
        measured((event.occurred_at, district, quantities))


@dataclass
class ChainTip:
    """What one writer last built and committed: the heads the next batch's rows are
    prebuilt from, and the ingest time every later batch must come after (the ledger is read
    in ingest order by ``audit replay``, so a batch may never be stamped before one
    committed ahead of it)."""

    heads: dict[TopicPartition, bytes] = field(default_factory=dict)
    committed_at: datetime | None = None


def in_chain_order(accepted: Sequence[tuple[Record, Envelope]]) -> list[tuple[Record, Envelope]]:
    """Events as the sink links them: by topic, partition and offset."""
    # A Record is a tuple that starts (topic, partition, offset), and a batch holds each
    # position once: the record itself is the key, compared in C.
    return sorted(accepted, key=_record_of)


_record_of = itemgetter(0)
_partition_of = itemgetter(0, 1)  # a Record's (topic, partition)


# Rows built between two turns of the event loop when prebuilding (~0.2 ms; see
# streams.batch.STEP).
STEP = 32


async def prebuild(
    accepted: Sequence[tuple[Record, Envelope]], *, incarnation: int, tip: ChainTip
) -> BatchRows | None:
    """The rows of ``accepted`` as the transaction would build them if every event is new
    and the chains end where this writer last built them; None when a partition's head is
    not known yet (after an assignment, until its first batch). Lets the event loop run
    between every :data:`STEP` rows, so the write in flight is not held up."""
    fresh = in_chain_order(accepted)
    partitions = set(map(_partition_of, map(_record_of, fresh)))  # in C
    if not fresh or not partitions <= tip.heads.keys():
        return None
    heads = {tp: tip.heads[tp] for tp in partitions}
    built = BatchRows(datetime.now(UTC), dict(heads), heads=heads)
    for start in range(0, len(fresh), STEP):
        add_rows(built, fresh[start : start + STEP], incarnation=incarnation)
        await asyncio.sleep(0)
    built.rollup()
    tip.heads.update(built.heads)
    return built


def adopt(
    prebuilt: BatchRows | None,
    *,
    fresh: Sequence[tuple[Record, Envelope]],
    heads: Mapping[TopicPartition, bytes],
    tip: ChainTip,
) -> BatchRows | None:
    """``prebuilt`` if it is exactly what the transaction would build from ``fresh`` (the
    new events, a subset of those it was built from, in the same order) and the locked
    ``heads``; else None."""
    if prebuilt is None or len(prebuilt.ledger) != len(fresh):
        return None
    if any(heads.get(tp) != head for tp, head in prebuilt.start.items()):
        return None
    if tip.committed_at is not None and prebuilt.ingested_at <= tip.committed_at:
        return None
    return prebuilt

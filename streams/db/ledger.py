"""Write one batch in one transaction: ledger rows (new event ids only, hash-chained),
the rollup groups those rows touch, dead letters, and the consumer offsets.

Tables: ``events``, ``metric_daily``, ``deadletters``, ``consumer_offsets``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import psycopg

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.validation import Rejection
from streams.chain import GENESIS, canonical, link
from streams.db import DatabaseError, DatabaseUnavailable
from streams.rollup import rollup
from streams.sink import (
    Batch,
    Record,
    SinkResult,
    TopicPartition,
    reused_event_id,
    sink_rejection,
)


class ConcurrentInsert(DatabaseError):
    """Another worker inserted one of our event ids between our check and our insert."""


async def write_batch(conn: psycopg.AsyncConnection[Any], batch: Batch) -> SinkResult:
    try:
        async with conn.transaction():
            return await _write(conn, batch)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"writing a batch failed: {exc}".strip()) from exc
    except psycopg.Error as exc:
        raise DatabaseError(f"writing a batch failed: {exc}".strip()) from exc


async def _write(conn: psycopg.AsyncConnection[Any], batch: Batch) -> SinkResult:
    ingested_at = datetime.now(UTC)
    tps = sorted(batch.next_offsets)
    heads = await _lock_offsets(conn, tps)

    rejected = list(batch.rejected)
    fresh, conflicts = await _split_known(conn, batch.accepted)
    rejected.extend(conflicts)
    fresh.sort(key=lambda item: (item[0].topic, item[0].partition, item[0].offset))
    fresh, refused = await _check_corrections(conn, fresh)
    rejected.extend(refused)

    columns: dict[str, list[Any]] = {name: [] for name in _EVENT_COLUMNS}
    for record, event in fresh:
        tp = (record.topic, record.partition)
        payload = event.model_dump(mode="json")
        measures = {metric: str(q) for metric, q in event.measures().items()}
        content = canonical(
            event_id=event.event_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            ingested_at=ingested_at,
            payload=payload,
            measures=measures,
        )
        prev = heads[tp]
        heads[tp] = link(prev, content)
        for name, value in (
            ("event_id", event.event_id),
            ("event_type", event.event_type_name),
            ("schema_version", event.schema_version),
            ("department", event.department),
            ("district", str(event.district)),
            ("occurred_at", event.occurred_at),
            ("reported_at", event.reported_at),
            ("ingested_at", ingested_at),
            ("project", event.project),
            ("source_ref", event.source_ref),
            ("corrects", event.corrects if isinstance(event, Correction) else None),
            ("measures", orjson.dumps(measures).decode()),
            ("payload", orjson.dumps(payload).decode()),
            ("topic", record.topic),
            ("partition", record.partition),
            ("kafka_offset", record.offset),
            ("prev_hash", prev),
            ("hash", heads[tp]),
        ):
            columns[name].append(value)

    if fresh:
        cur = await conn.execute(_INSERT_EVENTS, [columns[name] for name in _EVENT_COLUMNS])
        if len(await cur.fetchall()) != len(fresh):
            # The chain was computed for rows that are no longer all new: roll back, retry.
            raise ConcurrentInsert("an event id of this batch was inserted concurrently")
        groups = rollup((e.occurred_at, str(e.district), e.measures()) for _, e in fresh)
        keys = sorted(groups)
        await conn.execute(
            _UPSERT_ROLLUP,
            (
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [groups[k].total for k in keys],
                [groups[k].events for k in keys],
            ),
        )

    if rejected:
        await conn.execute(
            _INSERT_DEADLETTERS,
            (
                [r.topic for r, _ in rejected],
                [r.partition for r, _ in rejected],
                [r.offset for r, _ in rejected],
                [why.reason for _, why in rejected],
                [why.field for _, why in rejected],
                [why.message for _, why in rejected],
                [why.value for _, why in rejected],
                [why.rule for _, why in rejected],
                [r.value for r, _ in rejected],
            ),
        )

    await conn.execute(
        _ADVANCE_OFFSETS,
        (
            [tp[0] for tp in tps],
            [tp[1] for tp in tps],
            [batch.next_offsets[tp] for tp in tps],
            [heads[tp] for tp in tps],
        ),
    )
    return SinkResult(
        inserted=len(fresh),
        inserted_by_type=dict(Counter(e.event_type_name for _, e in fresh)),
        duplicates=len(batch.accepted)
        - len(fresh)
        - (len(rejected) - len(batch.rejected))
        + batch.repeated,
        rejected=rejected,
    )


Accepted = list[tuple[Record, Envelope]]
Refused = list[tuple[Record, Rejection]]


async def _split_known(
    conn: psycopg.AsyncConnection[Any], accepted: Accepted
) -> tuple[Accepted, Refused]:
    """New events, and events whose id the ledger holds for *different* content.

    The same id with the same content is a redelivery and simply adds nothing; the same id
    with other content is a department reusing an id, which would be silently lost.
    """
    ids = [event.event_id for _, event in accepted]
    cur = await conn.execute(
        "SELECT event_id, payload FROM events WHERE event_id = ANY(%s)", (ids,)
    )
    stored = {row[0]: row[1] for row in await cur.fetchall()}
    fresh: Accepted = []
    conflicts: Refused = []
    for record, event in accepted:
        if event.event_id not in stored:
            fresh.append((record, event))
        elif stored[event.event_id] != event.model_dump(mode="json"):
            conflicts.append((record, reused_event_id(event)))
    return fresh, conflicts


async def _check_corrections(
    conn: psycopg.AsyncConnection[Any], fresh: Accepted
) -> tuple[Accepted, Refused]:
    """Refuse corrections the ledger cannot back: unknown event, another family, another
    metric or subdistrict, or a delta that would take the event's figure below zero."""
    corrections = [(r, e) for r, e in fresh if isinstance(e, Correction)]
    if not corrections:
        return fresh, []
    targets = list({e.corrects for _, e in corrections})
    cur = await conn.execute(
        "SELECT event_id, event_type, district, measures FROM events WHERE event_id = ANY(%s)",
        (targets,),
    )
    originals: dict[UUID, tuple[str, str, dict[str, Decimal]]] = {
        row[0]: (row[1], row[2], {k: Decimal(v) for k, v in row[3].items()})
        for row in await cur.fetchall()
    }
    # Originals arriving in this very batch, ahead of their correction.
    for _, event in fresh:
        if not isinstance(event, Correction):
            originals.setdefault(
                event.event_id, (event.event_type_name, str(event.district), event.measures())
            )
    cur = await conn.execute(
        "SELECT corrects, measures FROM events WHERE corrects = ANY(%s)", (targets,)
    )
    net: dict[tuple[UUID, str], Decimal] = {}
    for corrects, measures in await cur.fetchall():
        for metric, delta in measures.items():
            net[(corrects, metric)] = net.get((corrects, metric), Decimal(0)) + Decimal(delta)

    kept: Accepted = []
    refused: Refused = []
    for record, event in fresh:
        if not isinstance(event, Correction):
            kept.append((record, event))
            continue
        why = _judge_correction(event, originals.get(event.corrects), net)
        if why is None:
            key = (event.corrects, event.metric)
            net[key] = net.get(key, Decimal(0)) + event.delta
            kept.append((record, event))
        else:
            refused.append((record, why))
    return kept, refused


def _judge_correction(
    event: Correction,
    original: tuple[str, str, dict[str, Decimal]] | None,
    net: dict[tuple[UUID, str], Decimal],
) -> Rejection | None:
    target = str(event.corrects)
    if original is None:
        return sink_rejection(
            "unknown_corrected_event",
            "corrects",
            target,
            "corrects names an event in the ledger",
            zh="被更正的事件不在台账中（请核对 event_id，或先报送原事件）",
            en="the corrected event is not in the ledger (check the event_id, or send it first)",
        )
    event_type, district, measures = original
    if event_type.partition(".")[0] != event.family or event_type.endswith(".correction"):
        return sink_rejection(
            "correction_family_mismatch",
            "corrects",
            target,
            f"an event of the {event.family} family",
            zh=f"被更正的事件是 {event_type}，不是本部门的原始事件",
            en=f"the corrected event is a {event_type}, not an original {event.family} event",
        )
    if event.metric not in measures:
        return sink_rejection(
            "correction_metric_mismatch",
            "metric",
            event.metric,
            f"one of {', '.join(sorted(measures))}",
            zh=f"被更正的事件没有指标 {event.metric}",
            en=f"the corrected event has no metric {event.metric}",
        )
    if str(event.district) != district:
        return sink_rejection(
            "correction_district_mismatch",
            "district",
            str(event.district),
            f"district = {district}",
            zh=f"更正必须记在原事件的街道（{district}）",
            en=f"a correction must be booked on the original event's district ({district})",
        )
    after = (
        measures[event.metric] + net.get((event.corrects, event.metric), Decimal(0)) + event.delta
    )
    if after < 0:
        return sink_rejection(
            "correction_exceeds_original",
            "delta",
            str(event.delta),
            "original + corrections >= 0",
            zh=f"更正后该事件的 {event.metric} 将为负数（{after}）",
            en=f"after this correction the event's {event.metric} would be negative ({after})",
        )
    return None


async def _lock_offsets(
    conn: psycopg.AsyncConnection[Any], tps: list[TopicPartition]
) -> dict[TopicPartition, bytes]:
    """Lock each partition's cursor row (creating it), return the chain head per partition.

    The lock serialises two workers that briefly both hold a partition during a rebalance.
    """
    topics, partitions = [tp[0] for tp in tps], [tp[1] for tp in tps]
    await conn.execute(
        """INSERT INTO consumer_offsets (topic, partition, next_offset, last_hash)
           SELECT t, p, 0, %s FROM unnest(%s::text[], %s::int[]) AS x(t, p)
           ON CONFLICT (topic, partition) DO NOTHING""",
        (GENESIS, topics, partitions),
    )
    cur = await conn.execute(
        """SELECT topic, partition, last_hash FROM consumer_offsets
           WHERE (topic, partition) IN (SELECT * FROM unnest(%s::text[], %s::int[]))
           ORDER BY topic, partition FOR UPDATE""",
        (topics, partitions),
    )
    return {(row[0], row[1]): bytes(row[2]) for row in await cur.fetchall()}


_EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "schema_version",
    "department",
    "district",
    "occurred_at",
    "reported_at",
    "ingested_at",
    "project",
    "source_ref",
    "corrects",
    "measures",
    "payload",
    "topic",
    "partition",
    "kafka_offset",
    "prev_hash",
    "hash",
)
_INSERT_EVENTS = """
INSERT INTO events (event_id, event_type, schema_version, department, district, occurred_at,
                    reported_at, ingested_at, project, source_ref, corrects, measures, payload,
                    topic, partition, kafka_offset, prev_hash, hash)
SELECT e, t, v, d, di, o, r, i, p, s, c, m::jsonb, pl::jsonb, tp, pa, k, ph, h
FROM unnest(%s::uuid[], %s::text[], %s::int[], %s::text[], %s::text[], %s::timestamptz[],
            %s::timestamptz[], %s::timestamptz[], %s::text[], %s::text[], %s::uuid[],
            %s::text[], %s::text[], %s::text[], %s::int[], %s::bigint[], %s::bytea[],
            %s::bytea[])
     AS x(e, t, v, d, di, o, r, i, p, s, c, m, pl, tp, pa, k, ph, h)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""
_UPSERT_ROLLUP = """
INSERT INTO metric_daily (day, district, metric, total, events)
SELECT * FROM unnest(%s::date[], %s::text[], %s::text[], %s::numeric[], %s::bigint[])
ON CONFLICT (day, district, metric) DO UPDATE
SET total = metric_daily.total + EXCLUDED.total, events = metric_daily.events + EXCLUDED.events
"""
_INSERT_DEADLETTERS = """
INSERT INTO deadletters (topic, partition, kafka_offset, reason, field, message, value, rule, raw)
SELECT * FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::text[], %s::text[], %s::text[],
                     %s::text[], %s::text[], %s::bytea[])
ON CONFLICT (topic, partition, kafka_offset) DO NOTHING
"""
_ADVANCE_OFFSETS = """
UPDATE consumer_offsets AS c
SET next_offset = GREATEST(c.next_offset, x.n), last_hash = x.h, updated_at = now()
FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::bytea[]) AS x(t, p, n, h)
WHERE c.topic = x.t AND c.partition = x.p
"""


async def stored_offsets(
    conn: psycopg.AsyncConnection[Any], tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Next offset to read per partition, as recorded with the rows it produced."""
    cur = await conn.execute(
        """SELECT topic, partition, next_offset FROM consumer_offsets
           WHERE (topic, partition) IN (SELECT * FROM unnest(%s::text[], %s::int[]))""",
        ([tp[0] for tp in tps], [tp[1] for tp in tps]),
    )
    return {(row[0], row[1]): int(row[2]) for row in await cur.fetchall()}

"""Write one batch in one transaction: ledger rows (new event ids only, hash-chained),
the rollup groups those rows touch, dead letters, and the consumer offsets.

Tables: ``events``, ``metric_daily``, ``deadletters``, ``consumer_offsets``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg

from streams.chain import GENESIS, canonical, link
from streams.db import DatabaseError, DatabaseUnavailable
from streams.rollup import rollup
from streams.sink import Batch, SinkResult, TopicPartition


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

    ids = [event.event_id for _, event in batch.accepted]
    cur = await conn.execute("SELECT event_id FROM events WHERE event_id = ANY(%s)", (ids,))
    existing = {row[0] for row in await cur.fetchall()}
    fresh = [(r, e) for r, e in batch.accepted if e.event_id not in existing]
    fresh.sort(key=lambda item: (item[0].topic, item[0].partition, item[0].offset))

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

    if batch.rejected:
        await conn.execute(
            _INSERT_DEADLETTERS,
            (
                [r.topic for r, _ in batch.rejected],
                [r.partition for r, _ in batch.rejected],
                [r.offset for r, _ in batch.rejected],
                [why.reason for _, why in batch.rejected],
                [why.field for _, why in batch.rejected],
                [why.message for _, why in batch.rejected],
                [r.value for r, _ in batch.rejected],
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
        duplicates=len(batch.accepted) - len(fresh) + batch.repeated,
        rejected=list(batch.rejected),
    )


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
                    reported_at, ingested_at, project, source_ref, measures, payload, topic,
                    partition, kafka_offset, prev_hash, hash)
SELECT e, t, v, d, di, o, r, i, p, s, m::jsonb, pl::jsonb, tp, pa, k, ph, h
FROM unnest(%s::uuid[], %s::text[], %s::int[], %s::text[], %s::text[], %s::timestamptz[],
            %s::timestamptz[], %s::timestamptz[], %s::text[], %s::text[], %s::text[],
            %s::text[], %s::text[], %s::int[], %s::bigint[], %s::bytea[], %s::bytea[])
     AS x(e, t, v, d, di, o, r, i, p, s, m, pl, tp, pa, k, ph, h)
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
INSERT INTO deadletters (topic, partition, kafka_offset, reason, field, message, raw)
SELECT * FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::text[], %s::text[], %s::text[],
                     %s::bytea[])
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

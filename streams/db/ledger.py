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
from psycopg import sql

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.validation import Rejection
from streams.acceptance import Original, judge_corrections, split_known
from streams.chain import GENESIS, canonical, link
from streams.db import DatabaseError, DatabaseUnavailable
from streams.rollup import rollup
from streams.sink import (
    Batch,
    Record,
    SinkResult,
    TopicPartition,
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

    rows: list[tuple[Any, ...]] = []
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
        rows.append(
            (
                event.event_id,
                event.event_type_name,
                event.schema_version,
                event.department,
                str(event.district),
                event.occurred_at,
                event.reported_at,
                ingested_at,
                event.project,
                event.source_ref,
                event.corrects if isinstance(event, Correction) else None,
                orjson.dumps(measures).decode(),
                orjson.dumps(payload).decode(),
                record.topic,
                record.partition,
                record.offset,
                prev,
                heads[tp],
            )
        )

    if fresh:
        cur = await _insert_events(conn, rows)
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
        # %b: the ids go as one binary uuid[] (the text form was quoted id by id, ~4 µs
        # per event in this query alone).
        "SELECT event_id, payload FROM events WHERE event_id = ANY(%b)",
        (ids,),
    )
    stored = {row[0]: row[1] for row in await cur.fetchall()}
    return split_known(accepted, stored, lambda event: event.model_dump(mode="json"))


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
    originals: dict[UUID, Original] = {
        row[0]: (row[1], row[2], {k: Decimal(v) for k, v in row[3].items()})
        for row in await cur.fetchall()
    }
    cur = await conn.execute(
        "SELECT corrects, measures FROM events WHERE corrects = ANY(%s)", (targets,)
    )
    net: dict[tuple[UUID, str], Decimal] = {}
    for corrects, measures in await cur.fetchall():
        for metric, delta in measures.items():
            net[(corrects, metric)] = net.get((corrects, metric), Decimal(0)) + Decimal(delta)
    return judge_corrections(fresh, originals, net)


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


# The ledger rows of a batch travel by binary COPY into a per-session staging table, then
# one INSERT ... SELECT ... ON CONFLICT DO NOTHING moves them: a parameterised INSERT of 18
# arrays spent ~150 µs per event adapting the arrays on the client, COPY a few µs.
_STAGE_COLUMNS = (
    ("event_id", "uuid"),
    ("event_type", "text"),
    ("schema_version", "int4"),
    ("department", "text"),
    ("district", "text"),
    ("occurred_at", "timestamptz"),
    ("reported_at", "timestamptz"),
    ("ingested_at", "timestamptz"),
    ("project", "text"),
    ("source_ref", "text"),
    ("corrects", "uuid"),
    ("measures", "text"),
    ("payload", "text"),
    ("topic", "text"),
    ("partition", "int4"),
    ("kafka_offset", "int8"),
    ("prev_hash", "bytea"),
    ("hash", "bytea"),
)
_STAGE_NAMES = sql.SQL(", ").join(sql.Identifier(name) for name, _ in _STAGE_COLUMNS)
# ON COMMIT DELETE ROWS: the staging table is empty at the start of every transaction.
_CREATE_STAGE = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS events_stage ({}) ON COMMIT DELETE ROWS"
).format(
    sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
        for name, kind in _STAGE_COLUMNS
    )
)
_COPY_STAGE = sql.SQL("COPY pg_temp.events_stage ({}) FROM STDIN (FORMAT BINARY)").format(
    _STAGE_NAMES
)
_INSERT_EVENTS = sql.SQL(
    """INSERT INTO events ({names})
SELECT {selected} FROM pg_temp.events_stage
ORDER BY topic, partition, kafka_offset
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id"""
).format(
    names=_STAGE_NAMES,
    selected=sql.SQL(", ").join(
        sql.SQL("{}::jsonb").format(sql.Identifier(name))
        if name in ("measures", "payload")
        else sql.Identifier(name)
        for name, _ in _STAGE_COLUMNS
    ),
)


async def _insert_events(
    conn: psycopg.AsyncConnection[Any], rows: list[tuple[Any, ...]]
) -> psycopg.AsyncCursor[Any]:
    # Created in the batch's own transaction every time: a table created once per
    # connection vanished with the first batch's rollback (a retried batch then failed
    # on "schema pg_temp does not exist" until the connection was replaced).
    await conn.execute(_CREATE_STAGE)
    async with conn.cursor().copy(_COPY_STAGE) as copy:
        copy.set_types([kind for _, kind in _STAGE_COLUMNS])
        for row in rows:
            await copy.write_row(row)
    return await conn.execute(_INSERT_EVENTS)


# %b: arrays of a few thousand groups go in binary; the text form quotes every element.
_UPSERT_ROLLUP = """
INSERT INTO metric_daily (day, district, metric, total, events)
SELECT * FROM unnest(%b::date[], %b::text[], %b::text[], %b::numeric[], %b::bigint[])
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

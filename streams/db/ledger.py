"""Write one batch in one transaction: ledger rows (new event ids only, hash-chained),
the rollup groups those rows touch, dead letters, and the consumer offsets.

Tables: ``events``, ``metric_daily``, ``deadletters``, ``consumer_offsets``. Every failure
leaves as one of the errors below, which say whether trying again can help.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import set_json_dumps

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.rejections import Rejection
from streams.acceptance import CorrectionRefs, Original, judge_corrections, split_known
from streams.batch import Batch, Record, SinkResult, sink_rejection
from streams.chain import canonical, link, payload_digest
from streams.db import DatabaseError, DatabaseUnavailable
from streams.db.cursors import advance as cursors_advance
from streams.db.cursors import lock as cursors_lock
from streams.db.ledger_row import COLUMNS as LEDGER_COLUMNS
from streams.db.ledger_row import PG_TYPES, LedgerRow
from streams.rollup import rollup


class ConcurrentInsert(DatabaseError):
    """Another worker inserted one of our event ids (or correction references) between our
    check and our insert: retrying sees it and judges the batch again."""


class TopicReset(DatabaseError):
    """Another event already sits at one of this batch's Kafka positions: the topic was
    deleted and created again (a new incarnation) and the worker has not noticed yet."""


class RecordRefused(DatabaseError):
    """Writing the batch failed because of a value in it (the database refused it, or the
    row could not be built): the same on every retry. The batch must be split until the
    record is found; ``rejection`` says why, for a batch of one record."""

    def __init__(self, message: str, rejection: Rejection) -> None:
        super().__init__(message)
        self.rejection = rejection


# SQLSTATE classes whose errors a value causes, whatever the moment: 22 data exception
# (out-of-range date or number, invalid text), 23 integrity constraint, 54 program limit
# exceeded (a value too large for an index row). Everything else — connection lost (08),
# serialization failure or deadlock (40), lock not available (55), operator intervention
# such as a shutdown or a statement timeout (57), resources (53), a missing table or
# privilege (42: a deployment fault, not the record's) — may pass on a later try.
_CAUSED_BY_DATA = ("22", "23", "54")


async def write_batch(conn: psycopg.AsyncConnection[Any], batch: Batch) -> SinkResult:
    """Write ``batch`` in one transaction; every failure leaves as the project's own error,
    telling the caller whether to retry (:class:`DatabaseUnavailable`, a plain
    :class:`DatabaseError`, :class:`ConcurrentInsert`), to look for a topic reset
    (:class:`TopicReset`) or to split the batch (:class:`RecordRefused`)."""
    step = _Step()
    try:
        async with conn.transaction():
            return await _write(conn, batch, step)
    except DatabaseError:
        raise
    except psycopg.errors.UniqueViolation as exc:
        constraint = exc.diag.constraint_name
        if constraint == "event_keys_position":
            raise TopicReset(f"writing a batch failed: {exc}".strip()) from exc
        if constraint == "correction_keys_ref":
            raise ConcurrentInsert("a correction reference was recorded concurrently") from exc
        raise _refused(exc, step) from exc
    except psycopg.Error as exc:
        # psycopg raises DataError itself, without a SQLSTATE, for a value it cannot send
        # (a Decimal with more digits after the point than numeric holds).
        caused_by_data = isinstance(exc, psycopg.DataError | psycopg.IntegrityError)
        if caused_by_data or (exc.sqlstate or "")[:2] in _CAUSED_BY_DATA:
            raise _refused(exc, step) from exc
        if isinstance(exc, psycopg.OperationalError):
            raise DatabaseUnavailable(f"writing a batch failed: {exc}".strip()) from exc
        raise DatabaseError(f"writing a batch failed: {exc}".strip()) from exc
    except (OSError, MemoryError) as exc:  # the machine's trouble, not the record's
        raise DatabaseUnavailable(f"writing a batch failed: {exc!r}") from exc
    except Exception as exc:  # building a row from a value failed (a date beyond year 9999…)
        raise RecordRefused(
            f"building the rows of a batch failed: {exc!r}",
            _unprocessable(
                step.field,
                f"{type(exc).__name__}: {exc}; {step.what}",
                zh="无法存储该记录（",
                en="the record could not be stored (",
            ),
        ) from exc


class _Step:
    """What ``_write`` was doing, for the message of a record that fails alone."""

    def __init__(self) -> None:
        self.what = "reading what the ledger holds"
        self.field: str | None = None

    def now(self, what: str, field: str | None = None) -> None:
        self.what, self.field = what, field


def _refused(exc: psycopg.Error, step: _Step) -> RecordRefused:
    diag = exc.diag
    detail = diag.message_primary or str(exc)
    if diag.message_detail:
        detail += f" ({diag.message_detail})"
    detail += f"; {step.what}"
    return RecordRefused(
        f"writing a batch failed: {exc}".strip(),
        _unprocessable(
            diag.column_name or step.field,
            f"{exc.sqlstate}: {detail}" if exc.sqlstate else detail,
            zh="数据库拒绝存储该记录（",
            en="PostgreSQL refused to store the record (",
        ),
    )


def _unprocessable(column: str | None, why: str, *, zh: str, en: str) -> Rejection:
    why = why.replace("\x00", "\\x00")[:300]
    return sink_rejection(
        "unprocessable",
        column,
        None,
        "the record can be stored",
        zh=f"{zh}{why}）；同批其他记录已存储",
        en=f"{en}{why}); the rest of its batch was stored",
    )


async def _write(conn: psycopg.AsyncConnection[Any], batch: Batch, step: _Step) -> SinkResult:
    ingested_at = datetime.now(UTC)
    incarnation = batch.incarnation
    positions = {tp: (tp[0], incarnation, tp[1]) for tp in batch.next_offsets}
    cursors = await cursors_lock(conn, sorted(positions.values()))
    heads = {tp: cursors[position][1] for tp, position in positions.items()}

    rejected = list(batch.rejected)
    fresh, conflicts = await _split_known(conn, batch.accepted)
    rejected.extend(conflicts)
    fresh.sort(key=lambda item: (item[0].topic, item[0].partition, item[0].offset))
    fresh, refused = await _check_corrections(conn, fresh)
    rejected.extend(refused)

    step.now("building the ledger rows", "payload")
    staged: list[tuple[Any, ...]] = []
    for record, event in fresh:
        tp = (record.topic, record.partition)
        payload = event.model_dump(mode="json")
        correction = event if isinstance(event, Correction) else None
        measures = {metric: str(q) for metric, q in event.measures().items()}
        content = canonical(
            event_id=event.event_id,
            topic=record.topic,
            incarnation=incarnation,
            partition=record.partition,
            offset=record.offset,
            ingested_at=ingested_at,
            payload=payload,
            measures=measures,
        )
        prev = heads[tp]
        heads[tp] = link(prev, content)
        row = LedgerRow(
            event_id=event.event_id,
            event_type=event.event_type_name,
            schema_version=event.schema_version,
            department=event.department,
            district=str(event.district),
            occurred_at=event.occurred_at,
            reported_at=event.reported_at,
            ingested_at=ingested_at,
            project=event.project,
            source_ref=event.source_ref,
            corrects=None if correction is None else correction.corrects,
            measures=measures,
            payload=payload,
            topic=record.topic,
            incarnation=incarnation,
            partition=record.partition,
            kafka_offset=record.offset,
            prev_hash=prev,
            hash=heads[tp],
        )
        for_keys = (  # what event_keys and correction_keys take from the row
            payload_digest(payload),
            None if correction is None else correction.metric,
            None if correction is None else correction.delta,
        )
        staged.append((*row, *for_keys))

    if fresh:
        step.now("writing the ledger rows (events)")
        if await _insert_events(conn, staged) != len(fresh):
            # The chain was computed for rows that are no longer all new: roll back, retry.
            raise ConcurrentInsert("an event id of this batch was inserted concurrently")
        step.now("summing the daily rollup by local day", "occurred_at")
        groups = rollup((e.occurred_at, str(e.district), e.measures()) for _, e in fresh)
        keys = sorted(groups)
        step.now("writing the daily rollup (metric_daily)", ", ".join(sorted({k[2] for k in keys})))
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
        step.now("writing the dead letters")
        await conn.execute(
            _INSERT_DEADLETTERS,
            (
                [r.topic for r, _ in rejected],
                [incarnation] * len(rejected),
                [r.partition for r, _ in rejected],
                [r.offset for r, _ in rejected],
                [why.reason for _, why in rejected],
                [_text(why.field) for _, why in rejected],
                [_text(why.message) for _, why in rejected],
                [_text(why.value) for _, why in rejected],
                [_text(why.rule) for _, why in rejected],
                [r.value for r, _ in rejected],
            ),
        )

    await cursors_advance(
        conn,
        {positions[tp]: offset for tp, offset in batch.next_offsets.items()},
        {positions[tp]: head for tp, head in heads.items()},
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


def _text(value: str | None) -> str | None:
    """PostgreSQL text holds no NUL; a dead letter must be storable whatever it quotes."""
    return None if value is None else value.replace("\x00", "\\x00")


Accepted = list[tuple[Record, Envelope]]
Refused = list[tuple[Record, Rejection]]


async def _split_known(
    conn: psycopg.AsyncConnection[Any], accepted: Accepted
) -> tuple[Accepted, Refused]:
    """New events, and events whose id the ledger holds for *different* content.

    The same id with the same content is a redelivery and simply adds nothing; the same id
    with other content is a department reusing an id, which would be silently lost. Asked
    of ``event_keys`` (content as a digest): the ledger row itself is read only for the
    rare id recorded before digests were.
    """
    cur = await conn.execute(
        # %b: the ids go as one binary uuid[] (the text form was quoted id by id, ~4 µs
        # per event in this query alone).
        """SELECT event_id, digest, ingested_at, topic, incarnation, partition, kafka_offset
           FROM event_keys WHERE event_id = ANY(%b)""",
        ([event.event_id for _, event in accepted],),
    )
    found = await cur.fetchall()
    stored: dict[UUID, bytes] = {row[0]: bytes(row[1]) for row in found if row[1] is not None}
    legacy = [(*row[2:], row[0]) for row in found if row[1] is None]
    for event_id, payload in await _ledger_rows(conn, legacy, ("payload",)):
        stored[event_id] = payload_digest(payload)
    return split_known(
        accepted, stored, lambda event: payload_digest(event.model_dump(mode="json"))
    )


# (ingested_at, topic, incarnation, partition, kafka_offset, event_id) of a ledger row
Located = tuple[Any, ...]


async def _ledger_rows(
    conn: psycopg.AsyncConnection[Any], located: list[Located], columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    """``event_id`` and ``columns`` of the ledger rows at ``located``: by their ingest time
    and Kafka position, which a compressed TimescaleDB chunk can find without decompressing
    more than the segment holding the row (by event_id alone it would decompress every
    chunk)."""
    if not located:
        return []
    query = sql.SQL(
        """SELECT event_id, {} FROM events
           WHERE ingested_at = ANY(%s) AND topic = ANY(%s) AND incarnation = ANY(%s)
             AND partition = ANY(%s) AND kafka_offset = ANY(%s) AND event_id = ANY(%s)"""
    ).format(sql.SQL(", ").join(sql.Identifier(name) for name in columns))
    cur = await conn.execute(query, [sorted({row[i] for row in located}) for i in range(6)])
    return list(await cur.fetchall())


async def _check_corrections(
    conn: psycopg.AsyncConnection[Any], fresh: Accepted
) -> tuple[Accepted, Refused]:
    """Refuse corrections the ledger cannot back (unknown event, another family, another
    metric or subdistrict, a delta that would take the event's figure below zero) or
    already holds (the department's reference recorded under another event_id)."""
    corrections = [e for _, e in fresh if isinstance(e, Correction)]
    if not corrections:
        return fresh, []
    targets = list({e.corrects for e in corrections})
    cur = await conn.execute(
        """SELECT ingested_at, topic, incarnation, partition, kafka_offset, event_id
           FROM event_keys WHERE event_id = ANY(%s)""",
        (targets,),
    )
    originals: dict[UUID, Original] = {
        row[0]: (row[1], row[2], {k: Decimal(v) for k, v in row[3].items()})
        for row in await _ledger_rows(
            conn, list(await cur.fetchall()), ("event_type", "district", "measures")
        )
    }
    cur = await conn.execute(
        "SELECT corrects, metric, delta FROM correction_keys WHERE corrects = ANY(%s)",
        (targets,),
    )
    net: dict[tuple[UUID, str], Decimal] = {}
    for corrects, metric, delta in await cur.fetchall():
        net[(corrects, metric)] = net.get((corrects, metric), Decimal(0)) + delta
    cur = await conn.execute(
        """SELECT department, source_ref FROM correction_keys
           WHERE (department, source_ref) IN (SELECT * FROM unnest(%s::text[], %s::text[]))""",
        ([e.department for e in corrections], [e.source_ref for e in corrections]),
    )
    refs: CorrectionRefs = {(row[0], row[1]) for row in await cur.fetchall()}
    return judge_corrections(fresh, originals, net, refs)


# The ledger rows of a batch travel by binary COPY into a per-session staging table, then
# one INSERT ... SELECT ... ON CONFLICT DO NOTHING moves them: a parameterised INSERT of 19
# arrays spent ~150 µs per event adapting the arrays on the client, COPY a few µs. Each
# staged row is a LedgerRow followed by what event_keys and correction_keys take from it.
_KEY_COLUMNS = (("digest", "bytea"), ("metric", "text"), ("delta", "numeric"))
_STAGE_COLUMNS = (*zip(LEDGER_COLUMNS, PG_TYPES, strict=True), *_KEY_COLUMNS)
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
# The keys first: an id recorded meanwhile by another worker is not inserted (and counted
# by the caller), a Kafka position already taken fails on event_keys_position (a topic
# reset), a correction reference already used fails on correction_keys_ref.
_INSERT_KEYS = """
WITH keys AS (
    INSERT INTO event_keys (event_id, ingested_at, topic, incarnation, partition, kafka_offset,
                            digest)
    SELECT event_id, ingested_at, topic, incarnation, partition, kafka_offset, digest
    FROM pg_temp.events_stage
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), corrections AS (
    INSERT INTO correction_keys (event_id, corrects, department, source_ref, metric, delta)
    SELECT event_id, corrects, department, source_ref, metric, delta
    FROM pg_temp.events_stage WHERE corrects IS NOT NULL
)
SELECT count(*) FROM keys
"""
_LEDGER_NAMES = sql.SQL(", ").join(sql.Identifier(name) for name in LEDGER_COLUMNS)
_INSERT_EVENTS = sql.SQL(
    """INSERT INTO events ({names})
SELECT {names} FROM pg_temp.events_stage
ORDER BY topic, partition, kafka_offset"""
).format(names=_LEDGER_NAMES)


async def _insert_events(conn: psycopg.AsyncConnection[Any], rows: list[tuple[Any, ...]]) -> int:
    """Stage ``rows``, record their keys, and the ledger rows if every key was new; return
    how many keys were new."""
    # Created in the batch's own transaction every time: a table created once per
    # connection vanished with the first batch's rollback (a retried batch then failed
    # on "schema pg_temp does not exist" until the connection was replaced).
    await conn.execute(_CREATE_STAGE)
    cursor = conn.cursor()
    # Payloads and measures go to their jsonb columns as orjson writes them (the standard
    # library's json, psycopg's default, is several times slower).
    set_json_dumps(orjson.dumps, cursor)
    async with cursor.copy(_COPY_STAGE) as copy:
        copy.set_types([kind for _, kind in _STAGE_COLUMNS])
        for row in rows:
            await copy.write_row(row)
    cur = await conn.execute(_INSERT_KEYS)
    counted = await cur.fetchone()
    inserted = int(counted[0]) if counted else 0
    if inserted == len(rows):
        await conn.execute(_INSERT_EVENTS)
    return inserted


# %b: arrays of a few thousand groups go in binary; the text form quotes every element.
_UPSERT_ROLLUP = """
INSERT INTO metric_daily (day, district, metric, total, events)
SELECT * FROM unnest(%b::date[], %b::text[], %b::text[], %b::numeric[], %b::bigint[])
ON CONFLICT (day, district, metric) DO UPDATE
SET total = metric_daily.total + EXCLUDED.total, events = metric_daily.events + EXCLUDED.events
"""
_INSERT_DEADLETTERS = """
INSERT INTO deadletters
    (topic, incarnation, partition, kafka_offset, reason, field, message, value, rule, raw)
SELECT * FROM unnest(%s::text[], %s::int[], %s::int[], %s::bigint[], %s::text[], %s::text[],
                     %s::text[], %s::text[], %s::text[], %s::bytea[])
ON CONFLICT (topic, incarnation, partition, kafka_offset) DO NOTHING
"""

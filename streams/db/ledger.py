"""Write one batch in one transaction: ledger rows (new event ids only, hash-chained),
the rollup groups those rows touch, dead letters, and the consumer offsets.

Tables: ``events``, ``metric_daily``, ``deadletters``, ``consumer_offsets``. Every failure
leaves as one of the errors below, which say whether trying again can help.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any
from uuid import UUID

import orjson
import psycopg
from psycopg import sql
from psycopg.types.string import BytesBinaryDumper

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.rejections import Rejection
from streams.acceptance import CorrectionRefs, Original, judge_corrections, split_known
from streams.batch import Batch, Record, SinkResult, TopicPartition, sink_rejection
from streams.chain import event_json, json_digest, payload_digest
from streams.db import DatabaseError, DatabaseUnavailable
from streams.db.batch_rows import BatchRows, ChainTip, adopt, build_rows, in_chain_order
from streams.db.cursors import advance as cursors_advance
from streams.db.cursors import lock as cursors_lock
from streams.db.ledger_row import COLUMNS as LEDGER_COLUMNS
from streams.db.ledger_row import PG_TYPES
from streams.rollup import RollupKey, Totals


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


async def write_batch(
    conn: psycopg.AsyncConnection[Any],
    batch: Batch,
    *,
    tip: ChainTip | None = None,
    built: Callable[[], None] | None = None,
    before_commit: Callable[[], Awaitable[None]] | None = None,
) -> SinkResult:
    """Write ``batch`` in one transaction; every failure leaves as the project's own error,
    telling the caller whether to retry (:class:`DatabaseUnavailable`, a plain
    :class:`DatabaseError`, :class:`ConcurrentInsert`), to look for a topic reset
    (:class:`TopicReset`) or to split the batch (:class:`RecordRefused`).

    ``tip``: the writer's chain tip (streams.db.batch_rows), with which the batch's
    prebuilt rows are judged and which is moved on; ``built``: called once the batch's
    rows are built (the next batch's may be prebuilt from then on); ``before_commit``:
    awaited last, inside the transaction (the family's previous receipts, which must be
    acknowledged before this batch commits: streams/receipts.py)."""
    step = _Step()
    tip = ChainTip() if tip is None else tip
    try:
        async with conn.transaction():
            result, stamped = await _write(conn, batch, step, tip, built)
            if before_commit is not None:
                step.now("waiting for the previous batch's receipts")
                await before_commit()
        if stamped is not None:
            tip.committed_at = stamped
        return result
    except DatabaseError:
        raise
    except psycopg.errors.UniqueViolation as exc:
        constraint = exc.diag.constraint_name
        if constraint == "event_keys_position":
            raise TopicReset(f"writing a batch failed: {exc}".strip()) from exc
        if constraint in ("event_keys_pkey", "correction_keys_pkey"):
            raise ConcurrentInsert("an event id of this batch was recorded concurrently") from exc
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


async def _write(
    conn: psycopg.AsyncConnection[Any],
    batch: Batch,
    step: _Step,
    tip: ChainTip,
    built_hook: Callable[[], None] | None,
) -> tuple[SinkResult, datetime | None]:
    """The batch's outcome and, if it wrote ledger rows, the instant they carry."""
    incarnation = batch.incarnation
    positions = {tp: (tp[0], incarnation, tp[1]) for tp in batch.next_offsets}
    cursors = await cursors_lock(conn, sorted(positions.values()))
    heads = {tp: cursors[position][1] for tp, position in positions.items()}

    # Every accepted event is taken to be new, as in every batch of a backlog: event_keys'
    # unique constraints are the check, and only when they refuse one is the ledger asked
    # which events it holds (a lookup of every id cost a round trip and ~1 µs per event).
    # Not with corrections: a re-sent one must count as a duplicate, and judged as new it
    # would be refused (its reference is recorded, its delta applied already).
    models = _models(batch.accepted)
    optimistic = not any(issubclass(model, Correction) for model in models)
    new, conflicts = (
        (batch.accepted, []) if optimistic else await _split_known(conn, batch.accepted)
    )
    rejected, fresh, built = await _judge(conn, batch, step, tip, heads, new, conflicts)
    if built_hook is not None:
        built_hook()

    if fresh:
        step.now("writing the ledger rows (event_keys)")
        if optimistic:
            await conn.execute(_SAVEPOINT)
        try:
            await _copy_rows(conn, _COPY_KEYS, built.keys)
        except psycopg.errors.UniqueViolation as exc:
            if not optimistic or exc.diag.constraint_name not in _KEY_CONSTRAINTS:
                raise
            await conn.execute(_BACK_TO_SAVEPOINT)
            new, conflicts = await _split_known(conn, batch.accepted)
            rejected, fresh, built = await _judge(conn, batch, step, tip, heads, new, conflicts)
            if fresh:
                # Now a conflict is another writer's insert or a topic reset (write_batch).
                await _copy_rows(conn, _COPY_KEYS, built.keys)
    heads = built.heads

    if fresh:
        step.now("writing the ledger rows (events)")
        await _copy_rows(conn, _COPY_CORRECTIONS, built.corrections)
        await _copy_rows(conn, _COPY_EVENTS, built.ledger)
        step.now("summing the daily rollup by local day", "occurred_at")
        groups = built.rollup()
        keys = sorted(groups)
        step.now("writing the daily rollup (metric_daily)", ", ".join(sorted({k[2] for k in keys})))
        await conn.execute(_UPSERT_ROLLUP, (_rollup_document(groups, keys),))

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
    result = SinkResult(
        inserted=len(fresh),
        # Counted by model class (in C: a generator expression cost ~0.7 µs per event),
        # then named: a class is one event type. The inserted events are some of the
        # accepted ones, and all of them when as many (every batch of a backlog): counted
        # already.
        inserted_by_type={
            model.event_type_name: n
            for model, n in (
                models if len(fresh) == len(batch.accepted) else _models(fresh)
            ).items()
        },
        duplicates=len(batch.accepted)
        - len(fresh)
        - (len(rejected) - len(batch.rejected))
        + batch.repeated,
        rejected=rejected,
    )
    return result, built.ingested_at if fresh else None


async def _judge(
    conn: psycopg.AsyncConnection[Any],
    batch: Batch,
    step: _Step,
    tip: ChainTip,
    heads: dict[TopicPartition, bytes],
    new: Accepted,
    conflicts: Refused,
) -> tuple[Refused, Accepted, BatchRows]:
    """(rejected, fresh, built): the batch's records refused, the events it inserts (in
    chain order) and their rows, taking ``new`` to be the accepted events the ledger does
    not hold and ``conflicts`` those it holds with other content."""
    rejected = [*batch.rejected, *conflicts]
    fresh, refused = await _check_corrections(conn, in_chain_order(new))
    rejected.extend(refused)
    step.now("building the ledger rows", "payload")
    built = adopt(batch.prebuilt, fresh=fresh, heads=heads, tip=tip) or build_rows(
        fresh, incarnation=batch.incarnation, ingested_at=datetime.now(UTC), heads=heads
    )
    tip.heads.update(built.heads)
    return rejected, fresh, built


def _text(value: str | None) -> str | None:
    """PostgreSQL text holds no NUL; a dead letter must be storable whatever it quotes."""
    return None if value is None else value.replace("\x00", "\\x00")


Accepted = list[tuple[Record, Envelope]]
Refused = list[tuple[Record, Rejection]]
_event_of = itemgetter(1)


def _models(events: Accepted) -> Counter[type[Envelope]]:
    return Counter(map(type, map(_event_of, events)))


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
    return split_known(accepted, stored, lambda event: json_digest(event_json(event)))


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


# The rows go by binary COPY straight into their tables, keys first. The first try takes
# every event as new, behind a savepoint: an id or a position event_keys holds already sends
# the batch back to it, to be judged by what the ledger holds. After that an id recorded
# meanwhile by another worker fails on event_keys_pkey (the batch is judged again), a Kafka
# position already taken on event_keys_position (a topic reset), a correction reference
# already used on correction_keys_ref. A parameterised INSERT of 19 arrays spent ~150 µs
# per event adapting the arrays on the client; a staging table that one INSERT ... SELECT
# ... ON CONFLICT emptied cost PostgreSQL a second write and read of every row.
_KEY_COLUMNS = (
    ("event_id", "uuid"),
    ("ingested_at", "timestamptz"),
    ("topic", "text"),
    ("incarnation", "int4"),
    ("partition", "int4"),
    ("kafka_offset", "int8"),
    ("digest", "bytea"),
)
_CORRECTION_COLUMNS = (
    ("event_id", "uuid"),
    ("corrects", "uuid"),
    ("department", "text"),
    ("source_ref", "text"),
    ("metric", "text"),
    ("delta", "numeric"),
)


def _copy(table: str, columns: Sequence[tuple[str, str]]) -> tuple[sql.Composed, list[str]]:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
    )
    return statement, [kind for _, kind in columns]


_COPY_KEYS = _copy("event_keys", _KEY_COLUMNS)
_COPY_CORRECTIONS = _copy("correction_keys", _CORRECTION_COLUMNS)
# A binary COPY names no types: each field is the bytes of its column type's binary input.
# The jsonb fields come as jsonb's binary form already (streams.db.batch_rows.JSONB_V1 +
# the JSON), so psycopg sends them as it sends bytea, untouched; its jsonb dumper would call
# back into Python twice per field.
_COPY_EVENTS = _copy(
    "events",
    [
        (name, "bytea" if kind == "jsonb" else kind)
        for name, kind in zip(LEDGER_COLUMNS, PG_TYPES, strict=True)
    ],
)


async def _copy_rows(
    conn: psycopg.AsyncConnection[Any],
    copy_of: tuple[sql.Composed, list[str]],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Write ``rows`` by one binary COPY (none: nothing is sent)."""
    if not rows:
        return
    statement, types = copy_of
    cursor = conn.cursor()
    # By type name, psycopg picks the last dumper registered for bytea: its DB-API Binary
    # wrapper's, a Python call per field (five per event). Its C dumper of bytes, again.
    cursor.adapters.register_dumper(bytes, BytesBinaryDumper)
    async with cursor.copy(statement) as copy:
        copy.set_types(types)
        # Rows formatted in one loop, their data sent each time the formatter's buffer is
        # full (what AsyncCopy.write_row does, without a coroutine per row).
        write_row, send = copy.formatter.write_row, copy.writer.write
        for row in rows:
            if data := write_row(row):
                await send(data)


_SAVEPOINT = "SAVEPOINT all_new"
_BACK_TO_SAVEPOINT = "ROLLBACK TO SAVEPOINT all_new"
# What refuses a batch taken to hold only new events: an id already recorded, or a position
# already taken (a record read again, as by a second owner of the partition in a rebalance).
_KEY_CONSTRAINTS = ("event_keys_pkey", "event_keys_position")


# The groups go as one JSON array, in key order (rows are locked in one order by every
# writer). Five binary arrays of a thousand-odd groups cost the client twice as much: psycopg
# dumps an array element by element in Python, orjson writes the document in one call.
_UPSERT_ROLLUP = """
INSERT INTO metric_daily (day, district, metric, total, events)
SELECT (g ->> 0)::date, g ->> 1, g ->> 2, (g ->> 3)::numeric, (g ->> 4)::bigint
FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS groups (g, n)
ORDER BY n
ON CONFLICT (day, district, metric) DO UPDATE
SET total = metric_daily.total + EXCLUDED.total, events = metric_daily.events + EXCLUDED.events
"""


def _rollup_document(groups: dict[RollupKey, Totals], keys: list[RollupKey]) -> str:
    """The groups as ``[[day, district, metric, total, events], …]``; totals as decimal
    text, which numeric reads exactly."""
    return orjson.dumps(
        [
            (key[0].isoformat(), key[1], key[2], str(groups[key].total), groups[key].events)
            for key in keys
        ]
    ).decode()


_INSERT_DEADLETTERS = """
INSERT INTO deadletters
    (topic, incarnation, partition, kafka_offset, reason, field, message, value, rule, raw)
SELECT * FROM unnest(%s::text[], %s::int[], %s::int[], %s::bigint[], %s::text[], %s::text[],
                     %s::text[], %s::text[], %s::text[], %s::bytea[])
ON CONFLICT (topic, incarnation, partition, kafka_offset) DO NOTHING
"""

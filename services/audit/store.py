"""The audit's reads from PostgreSQL: the ledger (``events``), ``metric_daily`` and
``consumer_offsets``. Nothing here writes.

Every audit reads inside one ``REPEATABLE READ, READ ONLY`` transaction (:func:`snapshot`),
so the chains, the chain heads and the rollups it compares are one consistent state even
while workers keep writing. Large reads go through server-side cursors, never all at once.
Connects as the read-only auditor role: ``CITYSTREAM_AUDIT_DATABASE_URL``,
``CITYSTREAM_DB_SCHEMA`` (through ``streams.db``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import orjson
import psycopg
from psycopg import IsolationLevel, sql
from psycopg.types.json import set_json_loads

from streams.db import connect, errors
from streams.rollup import RollupKey
from streams.settings import Settings

TP = tuple[str, int]
Conn = psycopg.Connection[Any]

# Rows per round trip of a server-side cursor: large enough that the trips cost little,
# small enough that a batch is a few MB.
FETCH_ROWS = 20_000

_cursor_names = itertools.count(1)


@contextmanager
def snapshot(settings: Settings) -> Iterator[Conn]:
    """A read-only connection whose reads all see one committed state of the database."""
    conn = connect(settings, audit=True)
    try:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        # orjson parses jsonb several times faster than the standard library.
        set_json_loads(orjson.loads, conn)
        yield conn
    finally:
        conn.close()


def _stream(conn: Conn, query: sql.Composed | sql.SQL, params: Sequence[Any] = ()) -> Iterator[Any]:
    name = f"citystream_audit_{next(_cursor_names)}"
    with errors("reading the ledger"), conn.cursor(name=name, binary=True) as cur:
        cur.itersize = FETCH_ROWS
        cur.execute(query, params)
        yield from cur


# --------------------------------------------------------------------------- chains

CHAIN_COLUMNS = sql.SQL(
    """event_id, topic, partition, kafka_offset, ingested_at, payload, measures, prev_hash,
       hash, event_type, schema_version, department, district, occurred_at, reported_at,
       project, source_ref, corrects, incarnation"""
)


def chain_rows(conn: Conn) -> Iterator[tuple[Any, ...]]:
    """Every ledger row, each topic-incarnation-partition in offset order (the chain's
    order), as tuples of :data:`CHAIN_COLUMNS`."""
    return _stream(
        conn,
        sql.SQL(
            "SELECT {} FROM events ORDER BY topic, incarnation, partition, kafka_offset"
        ).format(CHAIN_COLUMNS),
    )


# (topic, incarnation, partition)
ChainKey = tuple[str, int, int]


def consumer_offsets(conn: Conn) -> dict[ChainKey, tuple[int, bytes]]:
    """(topic, incarnation, partition) → (next offset, chain head) as the sink recorded
    them."""
    with errors("reading consumer_offsets"):
        rows = conn.execute(
            "SELECT topic, incarnation, partition, next_offset, last_hash FROM consumer_offsets"
        ).fetchall()
    return {(row[0], row[1], row[2]): (int(row[3]), bytes(row[4])) for row in rows}


def incarnations(conn: Conn) -> dict[str, list[tuple[int, UUID | None]]]:
    """Topic → its recorded incarnations (number, topic id), oldest first."""
    with errors("reading topic_incarnations"):
        rows = conn.execute(
            "SELECT topic, incarnation, topic_id FROM topic_incarnations "
            "ORDER BY topic, incarnation"
        ).fetchall()
    found: dict[str, list[tuple[int, UUID | None]]] = {}
    for topic, number, topic_id in rows:
        found.setdefault(topic, []).append((int(number), topic_id))
    return found


# --------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class TimeWindow:
    """Ledger rows by ``ingested_at``: from ``start`` (or the first) to ``end`` (or the last)."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class OffsetWindow:
    """Ledger rows by Kafka position: per partition of the incarnation Kafka holds, offsets
    [first, past-last). Rows of a topic's earlier incarnations lie before every window."""

    bounds: Mapping[TP, tuple[int, int]]
    # Topic → the incarnation whose records Kafka holds (1 where none was recorded).
    incarnations: Mapping[str, int]


Window = TimeWindow | OffsetWindow
Part = Literal["before", "inside", "after"]

# event_id, event_type, district, occurred_at, measures, corrects, ingested_at, payload
REPLAY_COLUMNS = sql.SQL(
    "e.event_id, e.event_type, e.district, e.occurred_at, e.measures, e.corrects, "
    "e.ingested_at, {payload}"
)


class _Part:
    """The SQL selecting one part of the ledger relative to a window: a join (with its
    parameters) and a condition (with its)."""

    def __init__(self, window: Window, part: Part) -> None:
        self.join: sql.Composable = sql.SQL("")
        self.join_params: list[Any] = []
        self.condition: sql.Composable
        self.params: list[Any] = []
        if isinstance(window, TimeWindow):
            start, end = window.start, window.end
            if part == "before":
                self.condition = sql.SQL("false" if start is None else "e.ingested_at < %s")
                self.params = [] if start is None else [start]
            elif part == "after":
                self.condition = sql.SQL("false" if end is None else "e.ingested_at > %s")
                self.params = [] if end is None else [end]
            else:
                self.condition = sql.SQL(
                    "(%s::timestamptz IS NULL OR e.ingested_at >= %s) "
                    "AND (%s::timestamptz IS NULL OR e.ingested_at <= %s)"
                )
                self.params = [start, start, end, end]
            return
        tps = sorted(window.bounds)
        topics = sorted(window.incarnations)
        # w: the window of each partition Kafka holds; rows of an earlier incarnation (or of
        # a partition the re-created topic no longer has) have no w and lie before it.
        self.join = sql.SQL(
            "JOIN unnest(%s::text[], %s::int[]) AS i(t, n) ON e.topic = i.t "
            "LEFT JOIN unnest(%s::text[], %s::int[], %s::bigint[], %s::bigint[]) "
            "AS w(t, p, lo, hi) "
            "ON e.topic = w.t AND e.partition = w.p AND e.incarnation = i.n"
        )
        self.join_params = [
            topics,
            [window.incarnations[t] for t in topics],
            [tp[0] for tp in tps],
            [tp[1] for tp in tps],
            [window.bounds[tp][0] for tp in tps],
            [window.bounds[tp][1] for tp in tps],
        ]
        self.condition = sql.SQL(
            {
                "before": "(e.incarnation < i.n OR (e.incarnation = i.n "
                "AND (w.t IS NULL OR e.kafka_offset < w.lo)))",
                "inside": "e.kafka_offset >= w.lo AND e.kafka_offset < w.hi",
                "after": "(e.incarnation > i.n OR e.kafka_offset >= w.hi)",
            }[part]
        )

    def query(
        self, columns: sql.Composable, topics: Sequence[str], order: str = ""
    ) -> tuple[sql.Composed, list[Any]]:
        query = sql.SQL("SELECT {} FROM events e {} WHERE e.topic = ANY(%s) AND {} {}").format(
            columns, self.join, self.condition, sql.SQL(order)
        )
        return query, [*self.join_params, list(topics), *self.params]


def replay_rows(
    conn: Conn,
    *,
    topics: Sequence[str],
    window: Window,
    part: Part,
    payloads: bool,
    ordered: bool,
) -> Iterator[tuple[Any, ...]]:
    """Ledger rows of ``topics`` in one part of ``window``, as tuples of
    :data:`REPLAY_COLUMNS`; the payload of every row if ``payloads``, else of corrections
    only. ``ordered``: in ingest order (``ingested_at``, then Kafka position)."""
    payload = sql.SQL(
        "e.payload" if payloads else "CASE WHEN e.corrects IS NOT NULL THEN e.payload END"
    )
    order = (
        "ORDER BY e.ingested_at, e.topic, e.incarnation, e.partition, e.kafka_offset"
        if ordered
        else ""
    )
    query, params = _Part(window, part).query(REPLAY_COLUMNS.format(payload=payload), topics, order)
    return _stream(conn, query, params)


def count_rows(conn: Conn, *, topics: Sequence[str], window: Window, part: Part) -> int:
    query, params = _Part(window, part).query(sql.SQL("count(*)"), topics)
    with errors("counting ledger rows"):
        row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


# The dead letters whose verdict came from storing them, not from the rules: PostgreSQL
# refused a value, or building its row failed. Replay cannot recompute that verdict.
UNSTORABLE_REASONS = ("unprocessable", "internal_error")


def unstorable_positions(
    conn: Conn, *, incarnations: Mapping[str, int]
) -> set[tuple[str, int, int]]:
    """(topic, partition, offset) of the records of each topic's given incarnation that the
    workers dead-lettered because they could not be stored."""
    topics = sorted(incarnations)
    with errors("reading dead letters"):
        rows = conn.execute(
            """SELECT d.topic, d.partition, d.kafka_offset FROM deadletters d
               JOIN unnest(%s::text[], %s::int[]) AS i(t, n)
                 ON d.topic = i.t AND d.incarnation = i.n
               WHERE d.reason = ANY(%s)""",
            (topics, [incarnations[t] for t in topics], list(UNSTORABLE_REASONS)),
        ).fetchall()
    return {(row[0], row[1], int(row[2])) for row in rows}


def event_ids(conn: Conn, *, except_topics: Sequence[str]) -> Iterator[UUID]:
    """Ids of the ledger rows of every topic but ``except_topics``."""
    for row in _stream(
        conn,
        sql.SQL("SELECT event_id FROM events WHERE NOT (topic = ANY(%s))"),
        [list(except_topics)],
    ):
        yield row[0]


def corrected_ids(conn: Conn, *, topics: Sequence[str]) -> set[UUID]:
    """Ids of the events some ledger correction of ``topics`` names."""
    with errors("reading corrections"):
        rows = conn.execute(
            "SELECT DISTINCT corrects FROM events WHERE corrects IS NOT NULL AND topic = ANY(%s)",
            (list(topics),),
        ).fetchall()
    return {row[0] for row in rows}


def rollups(conn: Conn, *, families: Sequence[str]) -> dict[RollupKey, tuple[Decimal, int]]:
    """``metric_daily`` rows of the metrics of ``families``: key → (total, events)."""
    with errors("reading metric_daily"):
        rows = conn.execute(
            "SELECT day, district, metric, total, events FROM metric_daily "
            "WHERE split_part(metric, '.', 1) = ANY(%s)",
            (list(families),),
        ).fetchall()
    return {(row[0], row[1], row[2]): (Decimal(row[3]), int(row[4])) for row in rows}


# --------------------------------------------------------------------------- as-of, explain


@dataclass(frozen=True)
class LedgerEvent:
    """A ledger row as an auditor reads it, with its amount of one metric."""

    event_id: UUID
    event_type: str
    department: str
    district: str
    occurred_at: datetime
    ingested_at: datetime
    project: str | None
    source_ref: str | None
    corrects: UUID | None
    value: Decimal  # the metric's quantity in this row (0 if it has none)
    reason: str | None  # corrections: why, and who approved it
    approved_by: str | None


_EVENT_COLUMNS = sql.SQL(
    "event_id, event_type, department, district, occurred_at, ingested_at, project, "
    "source_ref, corrects, coalesce(measures ->> {metric}, '0'), payload ->> 'reason', "
    "payload ->> 'approved_by'"
)


def _ledger_events(
    conn: Conn, metric: str, condition: sql.Composable, params: Sequence[Any]
) -> list[LedgerEvent]:
    query = sql.SQL("SELECT {} FROM events WHERE {} ORDER BY occurred_at, event_id").format(
        _EVENT_COLUMNS.format(metric=sql.Literal(metric)), condition
    )
    with errors("reading the events ledger"):
        rows = conn.execute(query, params).fetchall()
    return [
        LedgerEvent(
            event_id=row[0],
            event_type=row[1],
            department=row[2],
            district=row[3],
            occurred_at=row[4],
            ingested_at=row[5],
            project=row[6],
            source_ref=row[7],
            corrects=row[8],
            value=Decimal(row[9]),
            reason=row[10],
            approved_by=row[11],
        )
        for row in rows
    ]


def _ingested(ingested_by: datetime | None) -> tuple[sql.Composable, list[Any]]:
    if ingested_by is None:
        return sql.SQL("true"), []
    return sql.SQL("ingested_at <= %s"), [ingested_by]


def metric_events(
    conn: Conn,
    *,
    metric: str,
    first: datetime,
    until: datetime,
    district: str | None,
    ingested_by: datetime | None,
) -> list[LedgerEvent]:
    """Rows adding to ``metric`` (originals and corrections) that occurred in
    [``first``, ``until``), of ``district`` if given, ingested by ``ingested_by`` if given:
    exactly the rows whose sum is the metric's ``metric_daily`` total over those days."""
    ingested, ingested_params = _ingested(ingested_by)
    district_filter = sql.SQL("true") if district is None else sql.SQL("district = %s")
    condition = sql.SQL("measures ? %s AND occurred_at >= %s AND occurred_at < %s AND {} AND {}")
    params = [metric, first, until, *([] if district is None else [district]), *ingested_params]
    return _ledger_events(conn, metric, condition.format(district_filter, ingested), params)


def item_events(
    conn: Conn,
    *,
    metric: str,
    event_types: Sequence[str],
    codes: Sequence[str],
    until: datetime,
    ingested_by: datetime | None,
) -> tuple[list[LedgerEvent], list[LedgerEvent]]:
    """As :func:`streams.db.pledges.item_events` (events of ``event_types`` naming one of
    ``codes``, and their corrections, occurring before ``until``), only counting rows
    ingested by ``ingested_by`` when it is given."""
    if not event_types or not codes:
        return [], []
    ingested, ingested_params = _ingested(ingested_by)
    originals = _ledger_events(
        conn,
        metric,
        sql.SQL("event_type = ANY(%s) AND project = ANY(%s) AND occurred_at < %s AND {}").format(
            ingested
        ),
        [list(event_types), list(codes), until, *ingested_params],
    )
    corrections = _ledger_events(
        conn,
        metric,
        sql.SQL("corrects = ANY(%s) AND occurred_at < %s AND {}").format(ingested),
        [[e.event_id for e in originals], until, *ingested_params],
    )
    return originals, corrections


def corrections_of(
    conn: Conn, *, metric: str, ids: Sequence[UUID], ingested_by: datetime | None
) -> list[LedgerEvent]:
    """The ledger's corrections of the events ``ids`` (ingested by ``ingested_by``)."""
    if not ids:
        return []
    ingested, ingested_params = _ingested(ingested_by)
    return _ledger_events(
        conn,
        metric,
        sql.SQL("corrects = ANY(%s) AND {}").format(ingested),
        [list(ids), *ingested_params],
    )


def ingested_count(conn: Conn, *, ingested_by: datetime) -> int:
    with errors("counting ledger rows"):
        row = conn.execute(
            "SELECT count(*) FROM events WHERE ingested_at <= %s", (ingested_by,)
        ).fetchone()
    return int(row[0]) if row else 0

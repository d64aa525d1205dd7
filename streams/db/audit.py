"""The audit's reads of PostgreSQL: the ledger (``events``, as :class:`LedgerRow`),
``metric_daily`` and ``deadletters``; the cursors (``consumer_offsets``,
``topic_incarnations``) are read through :mod:`streams.db.cursors`. Nothing here writes.

Every audit reads inside one ``REPEATABLE READ, READ ONLY`` transaction (:func:`snapshot`),
so the chains, the chain heads and the rollups it compares are one consistent state even
while workers keep writing. Large reads go through server-side cursors, never all at once.
Connects as the read-only auditor role: ``CITYSTREAM_AUDIT_DATABASE_URL``,
``CITYSTREAM_DB_SCHEMA``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar
from uuid import UUID

import orjson
import psycopg
from psycopg import IsolationLevel, sql
from psycopg.rows import RowFactory, tuple_row
from psycopg.types.json import set_json_loads

from streams.batch import TopicPartition
from streams.db import connect, errors
from streams.db.ledger_row import LedgerRow, ReplayRow, ledger_rows, rows_of, select_list
from streams.rollup import RollupKey
from streams.settings import Settings

Conn = psycopg.Connection[Any]
R = TypeVar("R")

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


def _stream(
    conn: Conn,
    query: sql.Composed | sql.SQL,
    params: Sequence[Any],
    row_factory: RowFactory[R],
) -> Iterator[R]:
    name = f"citystream_audit_{next(_cursor_names)}"
    with (
        errors("reading the ledger"),
        conn.cursor(name=name, binary=True, row_factory=row_factory) as cur,
    ):
        cur.itersize = FETCH_ROWS
        cur.execute(query, params)
        yield from cur


def _count(conn: Conn, query: sql.Composed | sql.SQL, params: Sequence[Any] = ()) -> int:
    with errors("counting ledger rows"):
        row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- chains


def chain_rows(conn: Conn) -> Iterator[LedgerRow]:
    """Every ledger row, each topic-incarnation-partition in offset order (the chain's
    order)."""
    return _stream(
        conn,
        sql.SQL(
            "SELECT {} FROM events ORDER BY topic, incarnation, partition, kafka_offset"
        ).format(select_list()),
        (),
        ledger_rows,
    )


def row_count(conn: Conn) -> int:
    return _count(conn, sql.SQL("SELECT count(*) FROM events"))


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

    bounds: Mapping[TopicPartition, tuple[int, int]]
    # Topic → the incarnation whose records Kafka holds (1 where none was recorded).
    incarnations: Mapping[str, int]


Window = TimeWindow | OffsetWindow
Part = Literal["before", "inside", "after"]


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


_replay_rows = rows_of(ReplayRow)
# For readers that need only corrections' payloads (replay judges them again, explain shows
# why and who approved): the others' are left out, and with them most of what rows weigh.
_CORRECTIONS_PAYLOAD = {"payload": sql.SQL("CASE WHEN e.corrects IS NOT NULL THEN e.payload END")}


def replay_rows(
    conn: Conn,
    *,
    topics: Sequence[str],
    window: Window,
    part: Part,
    payloads: bool,
    ordered: bool,
) -> Iterator[ReplayRow]:
    """Ledger rows of ``topics`` in one part of ``window``; the payload of every row if
    ``payloads``, else of corrections only (None for the others: most of what a row
    weighs). ``ordered``: in ingest order (``ingested_at``, then Kafka position)."""
    instead = {} if payloads else _CORRECTIONS_PAYLOAD
    order = (
        "ORDER BY e.ingested_at, e.topic, e.incarnation, e.partition, e.kafka_offset"
        if ordered
        else ""
    )
    columns = select_list("e", instead, ReplayRow)
    query, params = _Part(window, part).query(columns, topics, order)
    return _stream(conn, query, params, _replay_rows)


def count_rows(conn: Conn, *, topics: Sequence[str], window: Window, part: Part) -> int:
    query, params = _Part(window, part).query(sql.SQL("count(*)"), topics)
    return _count(conn, query, params)


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
        tuple_row,
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


def _ledger_events(conn: Conn, condition: sql.Composable, params: Sequence[Any]) -> list[LedgerRow]:
    """Ledger rows matching ``condition``, by occurrence; payloads of corrections only."""
    query = sql.SQL("SELECT {} FROM events e WHERE {} ORDER BY occurred_at, event_id").format(
        select_list("e", _CORRECTIONS_PAYLOAD), condition
    )
    with errors("reading the events ledger"):
        return conn.cursor(row_factory=ledger_rows).execute(query, params).fetchall()


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
) -> list[LedgerRow]:
    """Rows adding to ``metric`` (originals and corrections) that occurred in
    [``first``, ``until``), of ``district`` if given, ingested by ``ingested_by`` if given:
    exactly the rows whose sum is the metric's ``metric_daily`` total over those days."""
    ingested, ingested_params = _ingested(ingested_by)
    district_filter = sql.SQL("true") if district is None else sql.SQL("district = %s")
    condition = sql.SQL("measures ? %s AND occurred_at >= %s AND occurred_at < %s AND {} AND {}")
    params = [metric, first, until, *([] if district is None else [district]), *ingested_params]
    return _ledger_events(conn, condition.format(district_filter, ingested), params)


def item_events(
    conn: Conn,
    *,
    event_types: Sequence[str],
    codes: Sequence[str],
    until: datetime,
    ingested_by: datetime | None,
) -> tuple[list[LedgerRow], list[LedgerRow]]:
    """As :func:`streams.db.pledges.item_events` (events of ``event_types`` naming one of
    ``codes``, and their corrections, occurring before ``until``), only counting rows
    ingested by ``ingested_by`` when it is given."""
    if not event_types or not codes:
        return [], []
    ingested, ingested_params = _ingested(ingested_by)
    originals = _ledger_events(
        conn,
        sql.SQL("event_type = ANY(%s) AND project = ANY(%s) AND occurred_at < %s AND {}").format(
            ingested
        ),
        [list(event_types), list(codes), until, *ingested_params],
    )
    corrections = _ledger_events(
        conn,
        sql.SQL("corrects = ANY(%s) AND occurred_at < %s AND {}").format(ingested),
        [[e.event_id for e in originals], until, *ingested_params],
    )
    return originals, corrections


def level_events(
    conn: Conn, *, event_types: Sequence[str], until: datetime, ingested_by: datetime | None
) -> tuple[list[LedgerRow], list[LedgerRow]]:
    """As :func:`streams.db.pledges.level_reports` (reports of a level metric's
    ``event_types`` and their corrections, occurring before ``until``), only counting rows
    ingested by ``ingested_by`` when it is given."""
    if not event_types:
        return [], []
    ingested, ingested_params = _ingested(ingested_by)
    reports = _ledger_events(
        conn,
        sql.SQL("event_type = ANY(%s) AND occurred_at < %s AND {}").format(ingested),
        [list(event_types), until, *ingested_params],
    )
    corrections = _ledger_events(
        conn,
        sql.SQL("corrects = ANY(%s) AND occurred_at < %s AND {}").format(ingested),
        [[e.event_id for e in reports], until, *ingested_params],
    )
    return reports, corrections


def corrections_of(
    conn: Conn, *, ids: Sequence[UUID], ingested_by: datetime | None
) -> list[LedgerRow]:
    """The ledger's corrections of the events ``ids`` (ingested by ``ingested_by``)."""
    if not ids:
        return []
    ingested, ingested_params = _ingested(ingested_by)
    return _ledger_events(
        conn,
        sql.SQL("corrects = ANY(%s) AND {}").format(ingested),
        [list(ids), *ingested_params],
    )


def ingested_count(conn: Conn, *, ingested_by: datetime) -> int:
    return _count(
        conn, sql.SQL("SELECT count(*) FROM events WHERE ingested_at <= %s"), [ingested_by]
    )

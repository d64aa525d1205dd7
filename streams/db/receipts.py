"""What the worker's receipts (:mod:`streams.receipts`) read back from PostgreSQL: which
records of a committed batch inserted their event, and what was judged at a range of one
partition's offsets — ledger rows (``events``) and dead letters (``deadletters``), both by
their Kafka position indexes. Only reads; where a partition's cursors stand is
:mod:`streams.db.cursors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from streams.db import errors
from streams.db.ledger_row import LedgerRow, ledger_rows, select_list

AsyncConn = psycopg.AsyncConnection[Any]
Position = tuple[int, int]  # (partition, offset) within one topic


class DeadLetter(NamedTuple):
    """What a refused receipt says, from a ``deadletters`` row."""

    kafka_offset: int
    reason: str
    field: str | None
    value: str | None
    rule: str | None
    message: str  # Chinese, " / ", English
    raw: bytes | None  # the record's bytes as Kafka held them


_STORED_AT = sql.SQL(
    """SELECT partition, kafka_offset FROM events
       WHERE topic = %s AND incarnation = %s
         AND (partition, kafka_offset) IN (SELECT * FROM unnest(%s::int[], %s::bigint[]))"""
)
_RANGE = sql.SQL(
    """WHERE topic = %s AND incarnation = %s AND partition = %s
         AND kafka_offset >= %s AND kafka_offset < %s
       ORDER BY kafka_offset"""
)
_LEDGER_ROWS = sql.SQL("SELECT {} FROM events {}").format(select_list(), _RANGE)
_DEAD_LETTERS = sql.SQL("SELECT {} FROM deadletters {}").format(
    sql.SQL(", ").join(sql.Identifier(name) for name in DeadLetter._fields), _RANGE
)


async def stored_positions(
    conn: AsyncConn, *, topic: str, incarnation: int, positions: Sequence[Position]
) -> set[Position]:
    """Which of ``positions`` hold a ledger row of ``topic``'s ``incarnation``."""
    with errors("reading which records were stored"):
        cur = await conn.execute(
            _STORED_AT,
            (topic, incarnation, [p for p, _ in positions], [o for _, o in positions]),
        )
        rows = await cur.fetchall()
    return {(int(p), int(o)) for p, o in rows}


async def judged(
    conn: AsyncConn, *, topic: str, incarnation: int, partition: int, start: int, stop: int
) -> tuple[list[LedgerRow], list[DeadLetter]]:
    """The ledger rows and the dead letters of the records at offsets [start, stop) of one
    partition, each in offset order."""
    params = (topic, incarnation, partition, start, stop)
    with errors("reading the ledger rows and dead letters of a partition"):
        rows = await conn.cursor(row_factory=ledger_rows).execute(_LEDGER_ROWS, params)
        stored = await rows.fetchall()
        letters = await conn.cursor(row_factory=class_row(DeadLetter)).execute(
            _DEAD_LETTERS, params
        )
        return stored, await letters.fetchall()

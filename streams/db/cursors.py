"""Where the worker stands in each topic: ``consumer_offsets`` (the next offset and chain head
of every topic-incarnation-partition) and ``topic_incarnations`` (each life of a topic).
Every statement on either table is here.

PostgreSQL, not Kafka's group commit, decides where reading resumes: the sink advances a
cursor in the same transaction as the rows its records produced. The worker's functions are
async; the readers at the end are for the audit's snapshot, "has the worker caught up"
(``services.progress``) and re-deriving receipts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from streams.chain import GENESIS
from streams.db import errors

AsyncConn = psycopg.AsyncConnection[Any]
Conn = psycopg.Connection[Any]
# (topic, incarnation, partition): one cursor, and one hash chain of the ledger
Position = tuple[str, int, int]


@dataclass(frozen=True)
class Incarnation:
    """The life of a topic the worker now reads, and whether it just began."""

    topic: str
    number: int
    topic_id: UUID | None
    # Why a new incarnation began (for the log and the pipeline dashboard); None if the
    # topic is the one already recorded.
    reset: str | None = None


async def current_incarnation(
    conn: AsyncConn, *, topic: str, topic_id: UUID | None, log_end: Mapping[int, int] | None
) -> Incarnation:
    """The incarnation the records of ``topic`` belong to now, recording a new one when the
    topic was deleted and created again.

    The topic id decides: an id other than the recorded one is a new incarnation, the same
    id is the same topic whatever its offsets look like (a restarting broker can report
    partitions' ends wrongly for a moment). Only where no id was ever recorded (a ledger
    from before ids were) do stored offsets beyond the partitions' log end (``log_end``:
    partition → end offset now) tell that the topic was re-created meanwhile. ``topic_id``
    None (the broker could not be asked) decides nothing: the recorded incarnation stays.
    """
    async with conn.transaction():
        # Two workers assigned the same topic at once record one incarnation, not two.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"citystream.incarnation/{topic}",),
        )
        cur = await conn.execute(
            """SELECT incarnation, topic_id FROM topic_incarnations WHERE topic = %s
               ORDER BY incarnation DESC LIMIT 1""",
            (topic,),
        )
        row = await cur.fetchone()
        if row is not None and (topic_id is None or row[1] == topic_id):
            return Incarnation(topic, int(row[0]), row[1])
        if topic_id is None:
            return Incarnation(topic, 1, None)  # recorded once the broker answers
        if row is not None:
            number = int(row[0]) + 1
            reason = f"the topic id changed from {row[1]} to {topic_id}"
            await _record(conn, topic, number, topic_id, f"topic reset: {reason}")
            return Incarnation(topic, number, topic_id, reset=reason)
        # First sight of the topic's id. Rows from before ids were recorded are the first
        # incarnation's; their stored offsets beyond the log end mean the topic was
        # re-created since.
        cur = await conn.execute(
            """SELECT partition, next_offset FROM consumer_offsets
               WHERE topic = %s AND incarnation = 1""",
            (topic,),
        )
        stored = {int(p): int(n) for p, n in await cur.fetchall()}
        ends = log_end or {}
        beyond = {} if log_end is None else {p: n for p, n in stored.items() if n > ends.get(p, 0)}
        if not beyond:
            await _record(conn, topic, 1, topic_id, "first read of the topic")
            return Incarnation(topic, 1, topic_id)
        shown = ", ".join(f"[{p}] {n} > {ends.get(p, 0)}" for p, n in sorted(beyond.items()))
        reason = f"stored offsets beyond the log end ({shown})"
        await _record(conn, topic, 1, None, "read before topic ids were recorded")
        await _record(conn, topic, 2, topic_id, f"topic reset: {reason}")
        return Incarnation(topic, 2, topic_id, reset=reason)


async def _record(
    conn: AsyncConn, topic: str, number: int, topic_id: UUID | None, reason: str
) -> None:
    await conn.execute(
        """INSERT INTO topic_incarnations (topic, incarnation, topic_id, reason)
           VALUES (%s, %s, %s, %s)""",
        (topic, number, topic_id, reason),
    )


async def stored_offsets(
    conn: AsyncConn, *, topic: str, incarnation: int, partitions: Sequence[int]
) -> dict[int, int]:
    """Partition → next offset to read, as recorded with the rows it produced; 0 for a
    partition of this incarnation nothing was stored for yet."""
    cur = await conn.execute(
        """SELECT partition, next_offset FROM consumer_offsets
           WHERE topic = %s AND incarnation = %s AND partition = ANY(%s)""",
        (topic, incarnation, list(partitions)),
    )
    stored = {int(p): int(n) for p, n in await cur.fetchall()}
    return {p: stored.get(p, 0) for p in partitions}


async def lock(conn: AsyncConn, positions: Sequence[Position]) -> dict[Position, tuple[int, bytes]]:
    """Lock each partition's cursor row (creating it); return (next offset, chain head) per
    partition. The lock serialises two workers that briefly both hold a partition during a
    rebalance."""
    topics, incarnations, partitions = (
        [p[0] for p in positions],
        [p[1] for p in positions],
        [p[2] for p in positions],
    )
    # One statement, one round trip: the rows are created or, when they exist, locked by
    # the no-op update, which returns them as they are (in the positions' order: two
    # writers lock rows in the same order).
    cur = await conn.execute(
        """INSERT INTO consumer_offsets AS c
               (topic, incarnation, partition, next_offset, last_hash)
           SELECT t, i, p, 0, %s
           FROM unnest(%s::text[], %s::int[], %s::int[]) WITH ORDINALITY AS x(t, i, p, n)
           ORDER BY n
           ON CONFLICT (topic, incarnation, partition)
               DO UPDATE SET next_offset = c.next_offset
           RETURNING c.topic, c.incarnation, c.partition, c.next_offset, c.last_hash""",
        (GENESIS, topics, incarnations, partitions),
    )
    return {(r[0], r[1], r[2]): (int(r[3]), bytes(r[4])) for r in await cur.fetchall()}


async def advance(
    conn: AsyncConn, next_offsets: Mapping[Position, int], heads: Mapping[Position, bytes]
) -> None:
    """Move the locked cursors to ``next_offsets`` (never back) with their chain heads."""
    positions = sorted(next_offsets)
    await conn.execute(
        """UPDATE consumer_offsets AS c
           SET next_offset = GREATEST(c.next_offset, x.n), last_hash = x.h, updated_at = now()
           FROM unnest(%s::text[], %s::int[], %s::int[], %s::bigint[], %s::bytea[])
                AS x(t, i, p, n, h)
           WHERE c.topic = x.t AND c.incarnation = x.i AND c.partition = x.p""",
        (
            [p[0] for p in positions],
            [p[1] for p in positions],
            [p[2] for p in positions],
            [next_offsets[p] for p in positions],
            [heads[p] for p in positions],
        ),
    )


# --------------------------------------------------------------------------- readers


def heads(conn: Conn) -> dict[Position, tuple[int, bytes]]:
    """Every cursor: (next offset, chain head) as the sink recorded them."""
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


def latest_offsets(conn: Conn) -> dict[tuple[str, int], int]:
    """(topic, partition) → next offset stored, of each topic's latest incarnation: the one
    Kafka holds now."""
    with errors("reading consumer_offsets"):
        rows = conn.execute(
            """SELECT c.topic, c.partition, c.next_offset FROM consumer_offsets c
               WHERE c.incarnation = (SELECT coalesce(max(i.incarnation), 1)
                                      FROM topic_incarnations i WHERE i.topic = c.topic)"""
        ).fetchall()
    return {(topic, partition): int(offset) for topic, partition, offset in rows}


async def topic_offsets(conn: AsyncConn, *, topic: str) -> list[tuple[int, int, int]]:
    """(incarnation, partition, next offset) of every cursor of ``topic``, in that order."""
    with errors("reading consumer_offsets"):
        cur = await conn.execute(
            """SELECT incarnation, partition, next_offset FROM consumer_offsets
               WHERE topic = %s ORDER BY incarnation, partition""",
            (topic,),
        )
        rows = await cur.fetchall()
    return [(int(i), int(p), int(n)) for i, p, n in rows]

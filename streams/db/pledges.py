"""Pledges in PostgreSQL: store catalogue versions, read what progress is computed from, and
read the SQL side of progress.

Tables: ``pledges`` and ``pledge_schedule`` (written, insert only), ``metric_daily`` and
``events`` (read); function ``pledge_progress_at(d)`` and view ``pledge_progress`` (read).
See ``streams/db/migrations/0004_pledges.sql``. Every function takes an open connection;
driver errors leave as :class:`streams.db.DatabaseError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from streams.db import errors as _errors


@dataclass(frozen=True)
class PledgeRecord:
    """One pledge as stored: the ``pledges`` columns and its ``pledge_schedule`` rows."""

    id: str
    year: int
    title_zh: str
    title_en: str
    metric: str
    target: Decimal
    unit: str
    start: date
    deadline: date
    department: str
    district: str | None
    schedule: dict[str, Any]
    progress_from: str
    items: tuple[str, ...]
    event_types: tuple[str, ...]
    source_file: str
    source_quote: str
    measurable: bool
    curve: tuple[tuple[date, Decimal], ...]

    @property
    def content_hash(self) -> str:
        """What decides whether a load stores a new version: every stored value."""
        content = {
            "id": self.id,
            "year": self.year,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "metric": self.metric,
            "target": str(self.target),
            "unit": self.unit,
            "start": self.start.isoformat(),
            "deadline": self.deadline.isoformat(),
            "department": self.department,
            "district": self.district,
            "schedule": self.schedule,
            "progress_from": self.progress_from,
            "items": list(self.items),
            "event_types": list(self.event_types),
            "source_file": self.source_file,
            "source_quote": self.source_quote,
            "measurable": self.measurable,
            "curve": [[day.isoformat(), str(value)] for day, value in self.curve],
        }
        return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class StoreReport:
    """Pledge ids by what a load did with them."""

    added: list[str] = field(default_factory=list)  # first version stored
    revised: list[tuple[str, int]] = field(default_factory=list)  # (id, new version)
    unchanged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ItemEvent:
    """A ledger row that may mark a pledge item done, with its net corrections."""

    event_id: UUID
    project: str
    district: str
    occurred_at: datetime
    measures: dict[str, Decimal]
    # Orders two reports of a level measured at the same moment (the later one counts).
    reported_at: datetime | None = None


@dataclass(frozen=True)
class CorrectionRow:
    corrects: UUID
    occurred_at: datetime
    measures: dict[str, Decimal]


_LATEST = """
    SELECT DISTINCT ON (id) id, version, content_hash
    FROM pledges
    ORDER BY id, version DESC
"""

_INSERT_PLEDGE = """
    INSERT INTO pledges (
        id, version, year, title_zh, title_en, metric, target, unit, start, deadline,
        department, district, schedule, progress_from, items, event_types, source_file,
        source_quote, measurable, content_hash
    ) VALUES (
        %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s
    )
"""


def store_pledges(conn: psycopg.Connection[Any], records: Sequence[PledgeRecord]) -> StoreReport:
    """Insert each record whose content differs from its latest stored version, as the next
    version with its schedule rows; leave the others alone. One transaction."""
    report = StoreReport()
    with _errors("storing pledges"), conn.transaction():
        # Two loaders at once would both pick the same next version; the second waits here.
        # An advisory lock, not LOCK TABLE: that mode needs UPDATE rights, which the
        # application role has on no ledger table (streams.db.roles).
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('citystream.pledges', 0))")
        latest = {row[0]: (int(row[1]), str(row[2])) for row in conn.execute(_LATEST).fetchall()}
        for record in records:
            digest = record.content_hash
            stored = latest.get(record.id)
            if stored is not None and stored[1] == digest:
                report.unchanged.append(record.id)
                continue
            version = 1 if stored is None else stored[0] + 1
            conn.execute(
                _INSERT_PLEDGE,
                (
                    record.id,
                    version,
                    record.year,
                    record.title_zh,
                    record.title_en,
                    record.metric,
                    record.target,
                    record.unit,
                    record.start,
                    record.deadline,
                    record.department,
                    record.district,
                    Jsonb(record.schedule),
                    record.progress_from,
                    list(record.items),
                    list(record.event_types),
                    record.source_file,
                    record.source_quote,
                    record.measurable,
                    digest,
                ),
            )
            with conn.cursor().copy(
                "COPY pledge_schedule (pledge_id, version, day, expected) FROM STDIN"
            ) as copy:
                for day, expected in record.curve:
                    copy.write_row((record.id, version, day, expected))
            latest[record.id] = (version, digest)
            if stored is None:
                report.added.append(record.id)
            else:
                report.revised.append((record.id, version))
    return report


def metric_days(
    conn: psycopg.Connection[Any], *, metric: str, first: date, last: date
) -> list[tuple[date, str, Decimal]]:
    """``metric_daily`` rows of one metric from ``first`` to ``last``: (day, district, total)."""
    with _errors("reading metric_daily"):
        rows = conn.execute(
            "SELECT day, district, total FROM metric_daily "
            "WHERE metric = %s AND day BETWEEN %s AND %s",
            (metric, first, last),
        ).fetchall()
    return [(row[0], row[1], Decimal(row[2])) for row in rows]


def item_events(
    conn: psycopg.Connection[Any],
    *,
    event_types: Sequence[str],
    codes: Sequence[str],
    until: datetime,
) -> tuple[list[ItemEvent], list[CorrectionRow]]:
    """Events of ``event_types`` naming one of ``codes`` as project, and the corrections of
    those events, both occurring before ``until``."""
    if not event_types or not codes:
        return [], []
    with _errors("reading the events ledger"):
        rows = conn.execute(
            "SELECT event_id, project, district, occurred_at, measures FROM events "
            "WHERE event_type = ANY(%s) AND project = ANY(%s) AND occurred_at < %s",
            (list(event_types), list(codes), until),
        ).fetchall()
        originals = [ItemEvent(row[0], row[1], row[2], row[3], _decimals(row[4])) for row in rows]
        rows = conn.execute(
            "SELECT corrects, occurred_at, measures FROM events "
            "WHERE corrects = ANY(%s) AND occurred_at < %s",
            ([e.event_id for e in originals], until),
        ).fetchall()
    corrections = [CorrectionRow(row[0], row[1], _decimals(row[2])) for row in rows]
    return originals, corrections


def level_reports(
    conn: psycopg.Connection[Any], *, event_types: Sequence[str], until: datetime
) -> tuple[list[ItemEvent], list[CorrectionRow]]:
    """Reports of ``event_types`` (a level metric's) and their corrections, both occurring
    before ``until``."""
    if not event_types:
        return [], []
    with _errors("reading the events ledger"):
        rows = conn.execute(
            "SELECT event_id, coalesce(project, ''), district, occurred_at, measures, "
            "reported_at FROM events WHERE event_type = ANY(%s) AND occurred_at < %s",
            (list(event_types), until),
        ).fetchall()
        reports = [
            ItemEvent(row[0], row[1], row[2], row[3], _decimals(row[4]), row[5]) for row in rows
        ]
        rows = conn.execute(
            "SELECT corrects, occurred_at, measures FROM events "
            "WHERE corrects = ANY(%s) AND occurred_at < %s",
            ([e.event_id for e in reports], until),
        ).fetchall()
    corrections = [CorrectionRow(row[0], row[1], _decimals(row[2])) for row in rows]
    return reports, corrections


def _decimals(measures: dict[str, str]) -> dict[str, Decimal]:
    return {metric: Decimal(quantity) for metric, quantity in measures.items()}


def progress_rows(
    conn: psycopg.Connection[Any], *, on: date | None, year: int | None = None
) -> list[dict[str, Any]]:
    """Rows of ``pledge_progress_at(on)``, or of the ``pledge_progress`` view (today, local)
    when ``on`` is None; only ``year``'s pledges if given; ordered by pledge id."""
    params: list[Any] = []
    source = sql.SQL("pledge_progress")
    if on is not None:
        source = sql.SQL("pledge_progress_at(%s)")
        params.append(on)
    where = sql.SQL("")
    if year is not None:
        where = sql.SQL("WHERE year = %s")
        params.append(year)
    query = sql.SQL('SELECT * FROM {} {} ORDER BY pledge_id COLLATE "C"').format(source, where)
    with _errors("reading pledge progress"), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()

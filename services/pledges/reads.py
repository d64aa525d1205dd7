"""Pledge progress read from PostgreSQL: each pledge's actual (to a date, and day by day for
the report's chart) computed by :mod:`services.pledges.rules` from the rows that
:mod:`streams.db.pledges` reads (``metric_daily``, ``events``), and the same numbers as SQL
computes them (``pledge_progress_at(d)``, the ``pledge_progress`` view; migration 0004).

No SQL here and no environment variable of its own: callers pass a connection made from
:class:`streams.settings.Settings`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from schemas.catalogue import Catalogue, Pledge
from schemas.seeds import load_catalogue
from services.pledges.rules import (
    PledgeProgress,
    Series,
    Status,
    Trend,
    evaluate,
    items_done,
    level_now,
    level_readings,
    metric_actual,
    selected,
)
from streams.db.pledges import (
    CorrectionRow,
    ItemEvent,
    item_events,
    level_reports,
    metric_days,
    progress_rows,
)
from streams.rollup import LOCAL_TZ, local_day


def local_today() -> date:
    """Today in Asia/Shanghai: the status day when none is asked for."""
    return datetime.now(LOCAL_TZ).date()


def _end_of_local_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=LOCAL_TZ)


def _item_events(
    conn: psycopg.Connection[Any], pledge: Pledge, catalogue: Catalogue, *, on: date
) -> tuple[list[ItemEvent], list[CorrectionRow]]:
    """The events naming the item pledge's codes, and their corrections, up to ``on``."""
    return item_events(
        conn,
        event_types=catalogue.metric(pledge.metric).event_types,
        codes=[item.code for item in pledge.items],
        until=_end_of_local_day(on),
    )


def _level_reports(
    conn: psycopg.Connection[Any], pledge: Pledge, catalogue: Catalogue, *, on: date
) -> tuple[list[ItemEvent], list[CorrectionRow]]:
    """The reports of the level pledge's metric, and their corrections, up to ``on``."""
    return level_reports(
        conn,
        event_types=catalogue.metric(pledge.metric).event_types,
        until=_end_of_local_day(on),
    )


def level_to_date(
    conn: psycopg.Connection[Any], pledge: Pledge, catalogue: Catalogue, *, on: date
) -> tuple[Decimal, Trend | None]:
    """A level pledge's latest reading by the end of ``on``, and its trend."""
    reports, corrections = _level_reports(conn, pledge, catalogue, on=on)
    return level_now(level_readings(pledge, reports, corrections, on=on))


def actual_to_date(
    conn: psycopg.Connection[Any], pledge: Pledge, catalogue: Catalogue, *, on: date
) -> Decimal | None:
    """The pledge's actual by the end of ``on`` read from the database; None if unmeasurable."""
    if not pledge.measurable:
        return None
    if pledge.progress_from == "metric":
        rows = metric_days(conn, metric=pledge.metric, first=pledge.start, last=on)
        return metric_actual(rows, pledge, on=on)
    if pledge.progress_from == "level":
        return level_to_date(conn, pledge, catalogue, on=on)[0]
    originals, corrections = _item_events(conn, pledge, catalogue, on=on)
    return Decimal(items_done(pledge, originals, corrections, on=on))


def actual_series(
    conn: psycopg.Connection[Any], pledge: Pledge, catalogue: Catalogue, *, on: date
) -> Series | None:
    """The cumulative actual at the end of ``start`` and of each later day up to ``on`` on
    which it changes, then at ``on``; None for a pledge no event can measure. The same
    definitions as :func:`actual_to_date`, evaluated on each day the actual changes, so the
    last point is the pledge's actual."""
    if not pledge.measurable:
        return None
    if on < pledge.start:
        return ()
    if pledge.progress_from == "metric":
        rows = metric_days(conn, metric=pledge.metric, first=pledge.start, last=on)
        days = {day for day, _, _ in rows}

        def value(day: date) -> Decimal:
            return metric_actual(rows, pledge, on=day)

    elif pledge.progress_from == "level":
        reports, level_corrections = _level_reports(conn, pledge, catalogue, on=on)
        days = {local_day(e.occurred_at) for e in reports}
        days |= {local_day(c.occurred_at) for c in level_corrections}

        def value(day: date) -> Decimal:
            readings = level_readings(pledge, reports, level_corrections, on=day)
            return level_now(readings)[0]

    else:
        originals, corrections = _item_events(conn, pledge, catalogue, on=on)
        days = {local_day(e.occurred_at) for e in originals}
        days |= {local_day(c.occurred_at) for c in corrections}

        def value(day: date) -> Decimal:
            return Decimal(items_done(pledge, originals, corrections, on=day))

    points = [(pledge.start, value(pledge.start))]
    for day in sorted(d for d in days if pledge.start < d <= on):
        amount = value(day)
        if amount != points[-1][1]:
            points.append((day, amount))
    if points[-1][0] != on:
        points.append((on, points[-1][1]))
    return tuple(points)


def progress(
    conn: psycopg.Connection[Any],
    *,
    on: date,
    year: int | None = None,
    catalogue: Catalogue | None = None,
) -> list[PledgeProgress]:
    """Progress of every pledge (of ``year``) at the end of local day ``on``, computed in
    Python from the catalogue (default: ``seeds/``) and ``metric_daily`` / ``events``."""
    catalogue = catalogue if catalogue is not None else load_catalogue()
    rows = []
    for pledge in selected(catalogue, year):
        if pledge.progress_from == "level":
            actual, trend = level_to_date(conn, pledge, catalogue, on=on)
            rows.append(evaluate(pledge, on=on, actual=actual, trend=trend))
        else:
            actual_now = actual_to_date(conn, pledge, catalogue, on=on)
            rows.append(evaluate(pledge, on=on, actual=actual_now))
    return rows


def progress_from_sql(
    conn: psycopg.Connection[Any], *, on: date | None, year: int | None = None
) -> list[PledgeProgress]:
    """The same numbers from ``pledge_progress_at(on)`` (the ``pledge_progress`` view, i.e.
    today in Asia/Shanghai, when ``on`` is None), for the latest stored pledge versions."""
    return [
        PledgeProgress(
            pledge_id=row["pledge_id"],
            year=row["year"],
            title_zh=row["title_zh"],
            title_en=row["title_en"],
            metric=row["metric"],
            unit=row["unit"],
            district=row["district"],
            target=row["target"],
            start=row["start"],
            deadline=row["deadline"],
            on=row["on_day"],
            expected_to_date=row["expected_to_date"],
            actual_to_date=row["actual_to_date"],
            gap_units=row["gap_units"],
            gap_days=row["gap_days"],
            projected_completion=row["projected_completion"],
            status=Status(row["status"]),
        )
        for row in progress_rows(conn, on=on, year=year)
    ]

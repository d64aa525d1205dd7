"""``audit as-of``: pledge progress exactly as the platform showed it at a past moment.

The live figures (``pledges status``) read ``metric_daily``, which only ever holds the
present. What it held at a moment T is the rollup of the ledger rows ingested by then
(the sink writes a row and its rollup in one transaction, stamped ``ingested_at``), so
this recomputes each pledge's actual from those rows alone, with the same functions as the
live status: :func:`streams.rollup.rollup` and :func:`services.pledges.metric_actual` for
metric pledges, :func:`services.pledges.items_done` for item pledges,
:func:`services.pledges.rules.level_readings` for level pledges (a rate's latest report), and
:func:`services.pledges.evaluate` for expected, gaps, projection and status. A correction
counts only if it was ingested by T, however early its own date.

``ingested_at`` is stamped when the sink's transaction begins, so a batch being written at
T counts as shown at T. Tables: ``events`` (read, :mod:`streams.db.audit`).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from schemas.catalogue import Catalogue, Pledge
from services.pledges.rules import (
    PledgeProgress,
    Trend,
    evaluate,
    items_done,
    level_now,
    level_readings,
    metric_actual,
    selected,
)
from streams.db import audit as db
from streams.db.ledger_row import LedgerRow
from streams.db.pledges import CorrectionRow, ItemEvent
from streams.rollup import LOCAL_TZ, local_day, rollup


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=LOCAL_TZ)


def amount(row: LedgerRow, metric: str) -> Decimal:
    """The row's quantity of ``metric``: 0 if it has none."""
    return Decimal(row.measures.get(metric, "0"))


def metric_rows(
    conn: db.Conn, pledge: Pledge, *, on: date, ingested_by: datetime | None
) -> list[LedgerRow]:
    """The ledger rows behind a metric pledge's actual at the end of ``on``: its metric,
    its subdistrict (if any), local days start..on, ingested by ``ingested_by``."""
    return db.metric_events(
        conn,
        metric=pledge.metric,
        first=local_midnight(pledge.start),
        until=local_midnight(on + timedelta(days=1)),
        district=None if pledge.district is None else pledge.district.value,
        ingested_by=ingested_by,
    )


def item_rows(
    conn: db.Conn,
    pledge: Pledge,
    catalogue: Catalogue,
    *,
    on: date,
    ingested_by: datetime | None,
) -> tuple[list[ItemEvent], list[CorrectionRow], list[LedgerRow], list[LedgerRow]]:
    """What an item pledge's count is computed from (as ``services.pledges`` types), and
    the ledger rows they come from, for listing them."""
    metric = pledge.metric
    originals, corrections = db.item_events(
        conn,
        event_types=catalogue.metric(pledge.metric).event_types,
        codes=[item.code for item in pledge.items],
        until=local_midnight(on + timedelta(days=1)),
        ingested_by=ingested_by,
    )
    return (
        [
            ItemEvent(
                e.event_id, e.project or "", e.district, e.occurred_at, {metric: amount(e, metric)}
            )
            for e in originals
        ],
        [
            CorrectionRow(e.corrects, e.occurred_at, {metric: amount(e, metric)})
            for e in corrections
            if e.corrects is not None
        ],
        originals,
        corrections,
    )


def level_rows(
    conn: db.Conn,
    pledge: Pledge,
    catalogue: Catalogue,
    *,
    on: date,
    ingested_by: datetime | None,
) -> tuple[list[ItemEvent], list[CorrectionRow], list[LedgerRow], list[LedgerRow]]:
    """What a level pledge's reading is computed from (as ``services.pledges`` types), and
    the ledger rows they come from, for listing them."""
    metric = pledge.metric
    reports, corrections = db.level_events(
        conn,
        event_types=catalogue.metric(metric).event_types,
        until=local_midnight(on + timedelta(days=1)),
        ingested_by=ingested_by,
    )
    return (
        [
            ItemEvent(
                e.event_id,
                e.project or "",
                e.district,
                e.occurred_at,
                {metric: amount(e, metric)},
                e.reported_at,
            )
            for e in reports
        ],
        [
            CorrectionRow(e.corrects, e.occurred_at, {metric: amount(e, metric)})
            for e in corrections
            if e.corrects is not None
        ],
        reports,
        corrections,
    )


def level_as_of(
    conn: db.Conn,
    pledge: Pledge,
    catalogue: Catalogue,
    *,
    on: date,
    ingested_by: datetime | None,
) -> tuple[Decimal, Trend | None]:
    """A level pledge's latest reading at the end of ``on`` from the rows ingested by
    ``ingested_by``, and its trend."""
    reports, corrections, _, _ = level_rows(conn, pledge, catalogue, on=on, ingested_by=ingested_by)
    return level_now(level_readings(pledge, reports, corrections, on=on))


def metric_figure(rows: list[LedgerRow], pledge: Pledge, *, on: date) -> Decimal:
    """A metric pledge's actual from its ledger rows: rolled up as the sink rolls up, then
    summed as the live status sums ``metric_daily``."""
    metric = pledge.metric
    groups = rollup((e.occurred_at, e.district, {metric: amount(e, metric)}) for e in rows)
    days = [(day, district, totals.total) for (day, district, _), totals in groups.items()]
    return metric_actual(days, pledge, on=on)


def actual_as_of(
    conn: db.Conn,
    pledge: Pledge,
    catalogue: Catalogue,
    *,
    on: date,
    ingested_by: datetime | None,
) -> Decimal | None:
    """The pledge's actual at the end of ``on`` from the rows ingested by ``ingested_by``
    (every row when None); None if the pledge is not measurable."""
    if not pledge.measurable:
        return None
    if pledge.progress_from == "metric":
        return metric_figure(
            metric_rows(conn, pledge, on=on, ingested_by=ingested_by), pledge, on=on
        )
    if pledge.progress_from == "level":
        return level_as_of(conn, pledge, catalogue, on=on, ingested_by=ingested_by)[0]
    originals, corrections, _, _ = item_rows(
        conn, pledge, catalogue, on=on, ingested_by=ingested_by
    )
    return Decimal(items_done(pledge, originals, corrections, on=on))


def default_day(moment: datetime) -> date:
    """The day ``pledges status`` showed by default at ``moment``: its local date."""
    return local_day(moment)


def progress_as_of(
    conn: db.Conn,
    *,
    at: datetime,
    on: date | None = None,
    year: int | None = None,
    catalogue: Catalogue,
) -> list[PledgeProgress]:
    """Every pledge (of ``year``) as shown at ``at``, for the status day ``on`` (default:
    ``at``'s local date): the rows of ``pledges status`` at that moment."""
    day = on if on is not None else default_day(at)
    rows = []
    for pledge in selected(catalogue, year):
        if pledge.progress_from == "level":
            actual, trend = level_as_of(conn, pledge, catalogue, on=day, ingested_by=at)
            rows.append(evaluate(pledge, on=day, actual=actual, trend=trend))
        else:
            actual_then = actual_as_of(conn, pledge, catalogue, on=day, ingested_by=at)
            rows.append(evaluate(pledge, on=day, actual=actual_then))
    return rows

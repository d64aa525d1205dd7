"""``audit explain``: the ledger rows behind one pledge's figure, adding up to it exactly.

For a metric pledge every row that adds to the metric in the pledge's days and subdistrict
is listed — originals and corrections alike, each with its own amount (a correction is
booked on its own day and subdistrict, like any event) — and the ``counted`` column is that
amount: its sum is the figure. For an item pledge the figure is a count of items: each
item's events and corrections are listed with their amounts (counted 0), followed by one
``item`` line per item counting 1 when its net amount is above zero. For a level pledge (a
rate's latest report) every report in the pledge's days is listed in the order the rules
read them, latest last, each with its corrections; only the latest report and its
corrections are counted (their level and deltas), and the ``item`` column marks that
report ``latest``: the level the figure shows.

The figure itself is computed by the code that shows it — ``services.pledges`` for the live
status (from ``metric_daily``), :mod:`services.audit.as_of` for a past moment — and compared
with the sum of the lines; a live figure the ledger does not add up to is reported (run
``audit replay`` to find the rollup rows that differ).

Writes ``.csv`` (UTF-8 with BOM, as Excel on Chinese Windows expects) or ``.xlsx``
(openpyxl). Tables: ``events``, ``metric_daily`` (read, :mod:`streams.db.audit`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal, NamedTuple
from uuid import UUID

from schemas.catalogue import Catalogue, Pledge
from services.audit.as_of import (
    actual_as_of,
    amount,
    default_day,
    item_rows,
    level_rows,
    metric_rows,
)
from services.audit.common import AuditInputError, quantity
from services.pledges.reads import actual_to_date, local_today
from services.pledges.rules import items_done
from streams.db import audit as db
from streams.db.ledger_row import LedgerRow
from streams.rollup import LOCAL_TZ, local_day

LineKind = Literal["event", "correction", "item"]

COLUMNS = (
    "kind",
    "item",
    "event_id",
    "event_type",
    "department",
    "district",
    "occurred_at",
    "ingested_at",
    "value",
    "counted",
    "source_ref",
    "project",
    "corrects",
    "corrected_by",
    "reason",
    "approved_by",
)


class Amount(NamedTuple):
    """A correction's ledger row with its amount of the pledge's metric."""

    row: LedgerRow
    value: Decimal

    @property
    def event_id(self) -> UUID:
        return self.row.event_id


@dataclass(frozen=True)
class Line:
    kind: LineKind
    counted: Decimal  # what this line adds to the figure
    event: LedgerRow | None = None  # None for an item line
    item: str | None = None
    value: Decimal | None = None  # the row's amount of the metric; an item's net amount
    corrected_by: tuple[Amount, ...] = ()


@dataclass
class Explanation:
    pledge: Pledge
    on: date
    as_of: datetime | None
    figure: Decimal | None  # as shown: live status, or as of the moment
    lines: list[Line] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.counted for line in self.lines), Decimal(0))

    @property
    def adds_up(self) -> bool:
        return self.figure is None or self.total == self.figure


def find_pledge(catalogue: Catalogue, pledge_id: str) -> Pledge:
    try:
        return catalogue.pledge(pledge_id)
    except KeyError:
        ids = sorted(p.id for p in catalogue.pledges)
        near = [i for i in ids if pledge_id.split("-")[-1] in i] or ids
        raise AuditInputError(
            f"PLEDGE: {pledge_id!r} is not in the catalogue (seeds/pledges/); "
            f"e.g. {', '.join(near[:6])}"
        ) from None


def _chains(
    conn: db.Conn, pledge: Pledge, originals: Sequence[LedgerRow], at: datetime | None
) -> dict[UUID, tuple[Amount, ...]]:
    found: dict[UUID, list[Amount]] = {}
    ids = [e.event_id for e in originals if e.corrects is None]
    for correction in db.corrections_of(conn, ids=ids, ingested_by=at):
        if correction.corrects is not None:
            found.setdefault(correction.corrects, []).append(
                Amount(correction, amount(correction, pledge.metric))
            )
    return {event_id: tuple(chain) for event_id, chain in found.items()}


def _metric_lines(conn: db.Conn, pledge: Pledge, *, on: date, at: datetime | None) -> list[Line]:
    rows = metric_rows(conn, pledge, on=on, ingested_by=at)
    chains = _chains(conn, pledge, rows, at)
    return [
        Line(
            kind="event" if row.corrects is None else "correction",
            counted=amount(row, pledge.metric),
            event=row,
            value=amount(row, pledge.metric),
            corrected_by=chains.get(row.event_id, ()),
        )
        for row in rows
    ]


def _item_lines(
    conn: db.Conn, pledge: Pledge, catalogue: Catalogue, *, on: date, at: datetime | None
) -> tuple[list[Line], int]:
    """The item pledge's lines, and its count by ``services.pledges.items_done``."""
    originals, corrections, original_rows, correction_rows = item_rows(
        conn, pledge, catalogue, on=on, ingested_by=at
    )
    done = items_done(pledge, originals, corrections, on=on)
    codes = [item.code for item in pledge.items]
    district = None if pledge.district is None else pledge.district.value
    # The same selection items_done makes: originals of the items in the pledge's days and
    # subdistrict, and their corrections dated by the status day.
    counted = [
        e
        for e in original_rows
        if e.project in codes
        and pledge.start <= local_day(e.occurred_at) <= on
        and (district is None or e.district == district)
    ]
    kept = {e.event_id: e for e in counted}
    applied = [c for c in correction_rows if c.corrects in kept and local_day(c.occurred_at) <= on]
    chains: dict[UUID, list[Amount]] = {}
    for c in applied:
        if c.corrects is not None:
            chains.setdefault(c.corrects, []).append(Amount(c, amount(c, pledge.metric)))
    lines: list[Line] = []
    for code in codes:
        net = Decimal(0)
        for event in (e for e in counted if e.project == code):
            value = amount(event, pledge.metric)
            net += value
            chain = tuple(chains.get(event.event_id, ()))
            lines.append(Line("event", Decimal(0), event, code, value, chain))
            for correction in chain:
                net += correction.value
                lines.append(Line("correction", Decimal(0), correction.row, code, correction.value))
        lines.append(Line("item", Decimal(1 if net > 0 else 0), None, code, net))
    return lines, done


def _level_lines(
    conn: db.Conn, pledge: Pledge, catalogue: Catalogue, *, on: date, at: datetime | None
) -> list[Line]:
    """The level pledge's reports with their corrections, the latest counted."""
    _, _, report_rows, correction_rows = level_rows(conn, pledge, catalogue, on=on, ingested_by=at)
    district = None if pledge.district is None else pledge.district.value
    # The same selection and order services.pledges.rules.level_readings makes.
    reports = sorted(
        (
            e
            for e in report_rows
            if pledge.start <= local_day(e.occurred_at) <= on
            and (district is None or e.district == district)
            and pledge.metric in e.measures
        ),
        key=lambda e: (e.occurred_at, e.reported_at, e.event_id),
    )
    chains: dict[UUID, list[Amount]] = {}
    for c in correction_rows:
        if c.corrects is not None and local_day(c.occurred_at) <= on:
            chains.setdefault(c.corrects, []).append(Amount(c, amount(c, pledge.metric)))
    lines: list[Line] = []
    for position, report in enumerate(reports):
        latest = position == len(reports) - 1
        value = amount(report, pledge.metric)
        chain = tuple(chains.get(report.event_id, ()))
        lines.append(
            Line(
                "event",
                value if latest else Decimal(0),
                report,
                "latest" if latest else None,
                value,
                chain,
            )
        )
        for correction in chain:
            lines.append(
                Line(
                    "correction",
                    correction.value if latest else Decimal(0),
                    correction.row,
                    "latest" if latest else None,
                    correction.value,
                )
            )
    return lines


def explain(
    conn: db.Conn,
    pledge: Pledge,
    catalogue: Catalogue,
    *,
    at: datetime | None = None,
    on: date | None = None,
) -> Explanation:
    """The lines behind ``pledge``'s figure on ``on`` — as shown live, or as of ``at``."""
    day = on if on is not None else (default_day(at) if at is not None else local_today())
    if not pledge.measurable:
        return Explanation(pledge, day, at, None)
    if at is None:
        figure = actual_to_date(conn, pledge, catalogue, on=day)
    else:
        figure = actual_as_of(conn, pledge, catalogue, on=day, ingested_by=at)
    if pledge.progress_from == "metric":
        lines = _metric_lines(conn, pledge, on=day, at=at)
    elif pledge.progress_from == "level":
        lines = _level_lines(conn, pledge, catalogue, on=day, at=at)
    else:
        lines, _ = _item_lines(conn, pledge, catalogue, on=day, at=at)
    return Explanation(pledge, day, at, figure, lines)


# --------------------------------------------------------------------------- output


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(LOCAL_TZ).isoformat()


def _chain_text(line: Line) -> str:
    return "; ".join(
        f"{c.event_id} ({'+' if c.value > 0 else ''}{quantity(c.value)}, "
        f"{local_day(c.row.occurred_at).isoformat()})"
        for c in line.corrected_by
    )


def row_values(line: Line) -> list[str | Decimal | None]:
    """One line in the order of :data:`COLUMNS`; amounts stay exact decimals."""
    e = line.event
    return [
        line.kind,
        line.item,
        None if e is None else str(e.event_id),
        None if e is None else e.event_type,
        None if e is None else e.department,
        None if e is None else e.district,
        None if e is None else _when(e.occurred_at),
        None if e is None else _when(e.ingested_at),
        line.value,
        line.counted,
        None if e is None else e.source_ref,
        None if e is None else e.project,
        None if e is None or e.corrects is None else str(e.corrects),
        _chain_text(line) or None,
        # A correction's payload says why, and who approved it (only corrections' are read).
        None if e is None or e.payload is None else e.payload.get("reason"),
        None if e is None or e.payload is None else e.payload.get("approved_by"),
    ]


def write(explanation: Explanation, path: Path) -> None:
    """The lines to ``path``: ``.csv`` or ``.xlsx`` (a second sheet sums them up)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(COLUMNS)
            for line in explanation.lines:
                out.writerow(
                    "" if v is None else quantity(v) if isinstance(v, Decimal) else v
                    for v in row_values(line)
                )
        return
    if suffix != ".xlsx":
        raise AuditInputError(f"--out: {path.name} must end in .csv or .xlsx")
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("events")
    sheet.append(list(COLUMNS))
    for line in explanation.lines:
        sheet.append(row_values(line))
    summary = book.create_sheet("summary")
    p = explanation.pledge
    for label, value in (
        ("pledge", p.id),
        ("title_zh", p.title_zh),
        ("title_en", p.title_en),
        ("metric", p.metric),
        ("unit", p.unit),
        ("district", "zone" if p.district is None else p.district.value),
        ("status day (Asia/Shanghai)", explanation.on.isoformat()),
        ("as of", _when(explanation.as_of) or "live"),
        ("figure shown", explanation.figure),
        ("sum of counted", explanation.total),
        ("lines", len(explanation.lines)),
    ):
        summary.append([label, value])
    book.save(path)

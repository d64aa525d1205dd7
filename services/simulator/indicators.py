"""Indicator reports (``schemas/indicators.py``): a rate a department counts from time to
time — the share of entitled households moved back, the kindergarten inclusive rate.

A :class:`Readings` spec lists every reading of the year: the day it was counted, the level
it shows, and the counts behind it (numerator = level × denominator, rounded) or, without a
denominator, the percentage as a clerk types it. A reading can be designed to arrive late
(``reported``) or to be over-stated and corrected later (``overstated``): the worker must
place a late report on the day it was measured, and add a correction's delta to the reading
it corrects (:mod:`services.pledges.rules`).

Pure: no randomness here; the usual report time of a reading without ``reported`` is drawn
with every other event's (:func:`services.simulator.reports.report_times`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from schemas.districts import District
from schemas.envelope import CST
from schemas.indicators import IndicatorReport
from services.simulator.context import Context, Draft
from services.simulator.scenario import Day, SimulationError

# A count is taken at the end of the working day; a report designed for a day is sent in
# the morning, a correction before noon.
MEASURED = time(17, 0)
REPORTED = time(10, 30)
CORRECTED = time(11, 45)


@dataclass(frozen=True)
class Overstated:
    """A reading sent ``by`` percentage points too high, corrected on ``corrected``."""

    by: str
    corrected: Day
    approver: str
    why_zh: str
    why_en: str


@dataclass(frozen=True)
class Reading:
    """One count: measured on ``day`` (month, day), showing ``level`` percent."""

    day: Day
    level: str
    # With a denominator the report gives numerator and denominator (the level follows from
    # them); without, the percentage only.
    denominator: int | None = None
    # Reported on this day instead of within hours (a count sent late).
    reported: Day | None = None
    overstated: Overstated | None = None


@dataclass(frozen=True)
class Readings:
    """A year's readings of one indicator, in the order they were measured."""

    model: type[IndicatorReport]
    readings: tuple[Reading, ...]
    # Zone-wide rates are not split by subdistrict.
    district: District = District.ZONE


def numerator(level: Decimal, denominator: int) -> int:
    """The count that gives ``level`` percent of ``denominator``, rounded half-even."""
    return int((level * denominator / 100).to_integral_value(rounding=ROUND_HALF_EVEN))


def readings(ctx: Context, spec: Readings) -> list[Draft]:
    drafts = []
    previous: datetime | None = None
    for reading in spec.readings:
        measured = datetime.combine(ctx.day(*reading.day), MEASURED, CST)
        if previous is not None and measured <= previous:
            raise SimulationError(f"{spec.model.event_type_name}: readings out of order")
        previous = measured
        level = Decimal(reading.level)
        fields: dict[str, Any]
        if reading.denominator is None:
            fields = {"level_pct": level}
        else:
            fields = {
                "numerator": numerator(level, reading.denominator),
                "denominator": reading.denominator,
            }
        draft = Draft(spec.model, spec.district, measured, None, fields)
        if reading.reported is not None:
            draft.reported_at = datetime.combine(ctx.day(*reading.reported), REPORTED, CST)
            if draft.reported_at <= measured:
                raise SimulationError(f"{spec.model.event_type_name}: reported before measured")
        if reading.overstated is not None:
            draft.excess = _overstated(ctx, spec.model, reading, reading.overstated, draft)
        drafts.append(draft)
    return drafts


def _overstated(
    ctx: Context, model: type[IndicatorReport], reading: Reading, over: Overstated, draft: Draft
) -> tuple[str, str, Decimal, str, str, datetime]:
    if reading.denominator is not None or draft.reported_at is None:
        # The excess is added to the typed percentage, and the correction must follow a
        # report whose time is known.
        raise SimulationError(
            f"{model.event_type_name}: an overstated reading gives level_pct only and its "
            "reported day"
        )
    corrected = datetime.combine(ctx.day(*over.corrected), CORRECTED, CST)
    if corrected <= draft.reported_at:
        raise SimulationError(f"{model.event_type_name}: corrected before it was reported")
    excess = Decimal(over.by)
    reason = f"{over.why_zh}，多报 {excess} 个百分点 / {over.why_en}; overstated by {excess} points"
    return ("level_pct", model.metric, excess, reason, over.approver, corrected)

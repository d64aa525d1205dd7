"""The pledge progress rules, pure: what each pledge's schedule expects by a date, what the
events show, the gap, a run-rate projection and a status. No I/O: :mod:`services.pledges.reads`
feeds these from PostgreSQL, and the audit (:mod:`services.audit.as_of`) feeds them its own
rows; the same numbers come from SQL (``pledge_progress`` view, ``pledge_progress_at(d)``;
migration 0004).

Definitions, for a pledge and a local (Asia/Shanghai) date D, at the end of D:

- **expected to date**: the schedule's cumulative amount by D, ``Pledge.expected_by(D)``
  rounded to 4 decimal places (:data:`EXPECTED_QUANTUM`). 0 before start, the target from
  the deadline on. The loader stores this same curve, one row per day from start to
  deadline, in ``pledge_schedule``; SQL reads it from there.
- **actual to date**: for ``progress_from: metric``, the sum of ``metric_daily.total`` of
  the pledge's metric from start to D (corrections included, as the rollups include them),
  only the pledge's subdistrict when it names one. For ``progress_from: items``, the number
  of named items done: an item is done when the ledger's events of the metric's event types
  that name its code as ``project``, from start to D (local day of ``occurred_at``), net of
  the corrections of those events up to D, add up to more than zero. For ``progress_from:
  level`` (a rate a department measures, :mod:`schemas.indicators`), the latest *reading*:
  among the reports of the metric's event types measured (local day of ``occurred_at``)
  from start to D, in scope, the one measured last — among reports of the same moment the
  one reported last (``reported_at``), then the greater event id — at its reported level
  plus the deltas of its corrections up to D; 0 before the first report. A report sent late
  counts from the day it was measured and never overrides a newer measurement.
- **gap (units)**: actual − expected.
- **gap (days)**: R − D, where R is the last day whose expected amount the actual covers
  (the last day with expected ≤ actual); start − 1 when not even the first day's amount is
  covered; D itself when the whole curve is covered and D is past the deadline. Negative:
  behind the schedule by that many days; positive: ahead (or, where the schedule expects
  nothing yet, the days until it does).
- **projected completion**: the day on which the average daily rate since start
  (actual / days elapsed, D included) reaches the target: start + ceil(target × elapsed /
  actual) − 1 days, exactly (no rounding), capped at 9999-12-31. None when there is no
  progress (actual ≤ 0) or D is before start. The average since start understates the pace
  inside a season (seasonal and step schedules), so early in a season the projection can
  lie past the deadline while the pledge is on schedule; the gap rules below still hold.
  For a level, a rate since start means nothing (the level starts where last year left
  it): the projection extends the trend from the first reading (day F, level f) to the
  latest (day L, level l): L + ceil((target − l) × (L − F) / (l − f)) days when l > f and
  L > F; L once l ≥ target; None otherwise (one reading, or no rise).
- **status**, the first rule that applies:

  1. ``not_measurable`` — the pledge has ``measurable: false`` (no event can measure it);
     actual, gaps and projection are then None.
  2. ``achieved`` — actual ≥ target.
  3. ``overdue`` — D is after the deadline (and not achieved).
  4. ``behind`` — gap ≤ :data:`BEHIND_GAP_DAYS` days, or actual < :data:`BEHIND_SHARE` ×
     expected.
  5. ``at_risk`` — projected completion after the deadline, or actual <
     :data:`AT_RISK_SHARE` × expected.
  6. ``on_track`` — otherwise.

  The thresholds are constants below, each with why; ``pledge_status()`` in
  ``streams/db/migrations/0004_pledges.sql`` repeats them and tests hold the two equal.
  The share rules are strict where little is due yet: with nothing reported on the first
  day of a linear or milestone curve a pledge is already ``behind``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from uuid import UUID

from schemas.catalogue import Catalogue, Pledge
from streams.db.pledges import CorrectionRow, ItemEvent
from streams.rollup import local_day

# The schedule curve is stored and compared at this precision: finer than any unit's
# meaning (1/10000 of a school, of a m²), coarse enough that actual − expected is exact in
# Python's 28-digit decimals as it is in PostgreSQL's numeric.
EXPECTED_QUANTUM = Decimal("0.0001")

# Behind by a month or more. Our assumption: progress is reviewed monthly, so a slip of a
# month has outlived a review cycle and is no longer explained by a ledger sent late.
BEHIND_GAP_DAYS = -30
# Less than 80% of what is due: a fifth of the planned work is missing, more than a late
# batch explains; catching up needs action, not patience. Catches big shortfalls on steep
# curves that the day count is slow to show (a step due date, a short season).
BEHIND_SHARE = Decimal("0.80")
# Less than 95% of what is due: more than the usual noise of departments sending their
# ledgers (台账) in batches, so worth a warning before it becomes a gap.
AT_RISK_SHARE = Decimal("0.95")

# Projections are capped here rather than overflowing the calendar (a tiny rate).
LAST_DAY = date(9999, 12, 31)


class Status(StrEnum):
    ACHIEVED = "achieved"
    OVERDUE = "overdue"
    BEHIND = "behind"
    AT_RISK = "at_risk"
    ON_TRACK = "on_track"
    NOT_MEASURABLE = "not_measurable"


STATUS_LABELS: dict[Status, tuple[str, str, str]] = {
    # status: (中文, English, rich style)
    Status.ACHIEVED: ("已完成", "achieved", "bold green"),
    Status.OVERDUE: ("已逾期", "overdue", "bold red"),
    Status.BEHIND: ("滞后", "behind", "red"),
    Status.AT_RISK: ("有风险", "at risk", "yellow"),
    Status.ON_TRACK: ("正常", "on track", "green"),
    Status.NOT_MEASURABLE: ("无法计量", "not measurable", "dim"),
}

Curve = tuple[tuple[date, Decimal], ...]
# A level pledge's first and latest reading (day, level), for its projection.
Trend = tuple[tuple[date, Decimal], tuple[date, Decimal]]
# A cumulative actual: (day, amount) at the start and on each day it changes.
Series = tuple[tuple[date, Decimal], ...]


@dataclass(frozen=True)
class PledgeProgress:
    pledge_id: str
    year: int
    title_zh: str
    title_en: str
    metric: str
    unit: str
    district: str | None
    target: Decimal
    start: date
    deadline: date
    on: date
    expected_to_date: Decimal
    actual_to_date: Decimal | None
    gap_units: Decimal | None
    gap_days: int | None
    projected_completion: date | None
    status: Status


def pledge_year(pledge: Pledge) -> int:
    return int(pledge.id[:4])


def expected_cumulative(pledge: Pledge, day: date) -> Decimal:
    """The schedule's amount by the end of ``day``, at the stored precision."""
    return pledge.expected_by(day).quantize(EXPECTED_QUANTUM)


def schedule_curve(pledge: Pledge) -> Curve:
    """(day, expected) for every day from start to deadline: what ``pledge_schedule`` holds."""
    days = (pledge.deadline - pledge.start).days + 1
    return tuple(
        (day, expected_cumulative(pledge, day))
        for day in (pledge.start + timedelta(days=n) for n in range(days))
    )


def reached_day(curve: Curve, actual: Decimal, *, on: date) -> date:
    """The last day whose expected amount ``actual`` covers (see the module docstring)."""
    covered = bisect_right([expected for _, expected in curve], actual)
    if covered == 0:
        return curve[0][0] - timedelta(days=1)
    if covered == len(curve) and on > curve[-1][0]:
        return on
    return curve[covered - 1][0]


def gap_in_days(curve: Curve, actual: Decimal, *, on: date) -> int:
    return (reached_day(curve, actual, on=on) - on).days


def projected_completion(*, start: date, target: Decimal, actual: Decimal, on: date) -> date | None:
    """When the average daily rate since start reaches the target; None without progress."""
    if actual <= 0 or on < start:
        return None
    elapsed = (on - start).days + 1
    days_needed = math.ceil(Fraction(target) * elapsed / Fraction(actual))
    return start + timedelta(days=min(days_needed - 1, (LAST_DAY - start).days))


def classify(
    *,
    measurable: bool,
    actual: Decimal | None,
    expected: Decimal,
    target: Decimal,
    gap_days: int | None,
    projected: date | None,
    deadline: date,
    on: date,
) -> Status:
    """The status rules of the module docstring, first match wins."""
    if not measurable or actual is None:
        return Status.NOT_MEASURABLE
    if actual >= target:
        return Status.ACHIEVED
    if on > deadline:
        return Status.OVERDUE
    if (gap_days is not None and gap_days <= BEHIND_GAP_DAYS) or actual < expected * BEHIND_SHARE:
        return Status.BEHIND
    if (projected is not None and projected > deadline) or actual < expected * AT_RISK_SHARE:
        return Status.AT_RISK
    return Status.ON_TRACK


def level_projection(trend: Trend | None, target: Decimal) -> date | None:
    """When a level reaches ``target`` if it keeps rising as from its first reading to its
    latest (module docstring); None without a rise."""
    if trend is None:
        return None
    (first_day, first), (last_day, last) = trend
    if last >= target:
        return last_day
    if last <= first or last_day <= first_day:
        return None
    days = math.ceil(Fraction(target - last) * (last_day - first_day).days / Fraction(last - first))
    return last_day + timedelta(days=min(days, (LAST_DAY - last_day).days))


def evaluate(
    pledge: Pledge,
    *,
    on: date,
    actual: Decimal | None,
    curve: Curve | None = None,
    trend: Trend | None = None,
) -> PledgeProgress:
    """Every number for one pledge at the end of ``on``, given its actual (None: unmeasurable)
    and, for a level pledge, its first and latest reading (None: no reading yet)."""
    expected = expected_cumulative(pledge, on)
    if not pledge.measurable:
        actual = None
    gap_units: Decimal | None = None
    gap_days: int | None = None
    projected: date | None = None
    if actual is not None:
        gap_units = actual - expected
        gap_days = gap_in_days(curve or schedule_curve(pledge), actual, on=on)
        if pledge.progress_from == "level":
            projected = level_projection(trend, pledge.target)
        else:
            projected = projected_completion(
                start=pledge.start, target=pledge.target, actual=actual, on=on
            )
    status = classify(
        measurable=pledge.measurable,
        actual=actual,
        expected=expected,
        target=pledge.target,
        gap_days=gap_days,
        projected=projected,
        deadline=pledge.deadline,
        on=on,
    )
    return PledgeProgress(
        pledge_id=pledge.id,
        year=pledge_year(pledge),
        title_zh=pledge.title_zh,
        title_en=pledge.title_en,
        metric=pledge.metric,
        unit=pledge.unit,
        district=None if pledge.district is None else pledge.district.value,
        target=pledge.target,
        start=pledge.start,
        deadline=pledge.deadline,
        on=on,
        expected_to_date=expected,
        actual_to_date=actual,
        gap_units=gap_units,
        gap_days=gap_days,
        projected_completion=projected,
        status=status,
    )


def metric_actual(
    rows: Sequence[tuple[date, str, Decimal]], pledge: Pledge, *, on: date
) -> Decimal:
    """Sum of the rollup rows (day, district, total) from start to ``on`` in scope."""
    district = None if pledge.district is None else pledge.district.value
    return sum(
        (
            total
            for day, row_district, total in rows
            if pledge.start <= day <= on and (district is None or row_district == district)
        ),
        Decimal(0),
    )


def items_done(
    pledge: Pledge,
    originals: Sequence[ItemEvent],
    corrections: Sequence[CorrectionRow],
    *,
    on: date,
) -> int:
    """How many of the pledge's items are done by the end of ``on`` (module docstring)."""
    codes = {item.code for item in pledge.items}
    district = None if pledge.district is None else pledge.district.value
    corrected: dict[UUID, Decimal] = {}
    for correction in corrections:
        if local_day(correction.occurred_at) <= on:
            delta = correction.measures.get(pledge.metric, Decimal(0))
            corrected[correction.corrects] = corrected.get(correction.corrects, Decimal(0)) + delta
    net: dict[str, Decimal] = {}
    for event in originals:
        if event.project not in codes or not pledge.start <= local_day(event.occurred_at) <= on:
            continue
        if district is not None and event.district != district:
            continue
        amount = event.measures.get(pledge.metric, Decimal(0))
        amount += corrected.get(event.event_id, Decimal(0))
        net[event.project] = net.get(event.project, Decimal(0)) + amount
    return sum(1 for amount in net.values() if amount > 0)


def level_readings(
    pledge: Pledge,
    reports: Sequence[ItemEvent],
    corrections: Sequence[CorrectionRow],
    *,
    on: date,
) -> list[tuple[date, Decimal]]:
    """(day measured, level net of corrections up to ``on``) of each report of a level
    pledge from start to ``on`` in scope, the latest last (module docstring)."""
    return readings(
        pledge.metric,
        reports,
        corrections,
        first=pledge.start,
        last=on,
        district=None if pledge.district is None else pledge.district.value,
    )


def readings(
    metric: str,
    reports: Sequence[ItemEvent],
    corrections: Sequence[CorrectionRow],
    *,
    first: date,
    last: date,
    district: str | None = None,
) -> list[tuple[date, Decimal]]:
    """The readings of a level ``metric`` measured from ``first`` to ``last`` (in
    ``district`` if given), each net of its corrections up to ``last``, the latest last."""
    corrected: dict[UUID, Decimal] = {}
    for correction in corrections:
        if local_day(correction.occurred_at) <= last:
            delta = correction.measures.get(metric, Decimal(0))
            corrected[correction.corrects] = corrected.get(correction.corrects, Decimal(0)) + delta
    chosen = [
        report
        for report in reports
        if first <= local_day(report.occurred_at) <= last
        and (district is None or report.district == district)
        and metric in report.measures
    ]
    chosen.sort(key=lambda r: (r.occurred_at, r.reported_at or r.occurred_at, r.event_id))
    return [
        (
            local_day(report.occurred_at),
            report.measures[metric] + corrected.get(report.event_id, Decimal(0)),
        )
        for report in chosen
    ]


def level_now(readings: Sequence[tuple[date, Decimal]]) -> tuple[Decimal, Trend | None]:
    """A level pledge's actual (its latest reading; 0 before the first) and its trend."""
    if not readings:
        return Decimal(0), None
    return readings[-1][1], (readings[0], readings[-1])


def selected(catalogue: Catalogue, year: int | None) -> list[Pledge]:
    pledges = catalogue.pledges if year is None else catalogue.pledges_for(year)
    return sorted(pledges, key=lambda pledge: pledge.id)

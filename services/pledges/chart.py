"""The pledge report's chart: one pledge's cumulative actual against its schedule curve as
inline SVG — grid, month axis, target, schedule (dashed), actual (solid), deadline and status
day marked. Pure: :mod:`services.pledges.report` passes a :class:`ChartData` in, and the
page's stylesheet (``report.html``) draws the classes this writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal
from html import escape

from services.pledges.formats import plain_number, with_unit
from services.pledges.rules import Curve, Series

# A status day long after the deadline would squeeze the schedule into a corner: the chart
# runs at most this far past the deadline and says where the status day lies.
CHART_OVERRUN = timedelta(days=92)


def nice_ticks(top: Decimal, *, integer: bool, count: int = 5) -> tuple[Decimal, ...]:
    """Evenly spaced round ticks from 0 covering ``top`` with about ``count`` intervals:
    steps of 1, 2, 2.5 or 5 × 10ⁿ (whole steps for counts)."""
    if top <= 0:
        return (Decimal(0), Decimal(1))
    raw = top / count
    magnitude = Decimal(1).scaleb(raw.adjusted())
    step = next(m * magnitude for m in (1, 2, Decimal("2.5"), 5, 10) if m * magnitude >= raw)
    if integer and step != step.to_integral_value():
        step = Decimal(1) if step < 1 else step * 2  # 2.5 → 5: the next round whole step
    intervals = int((top / step).to_integral_value(rounding=ROUND_CEILING))
    return tuple((step * n).normalize() for n in range(intervals + 1))


def month_ticks(first: date, last: date) -> list[tuple[date, str, str | None]]:
    """(day, month label, year label or None) for month starts from ``first`` to ``last``;
    quarterly past 14 months, yearly past 48. The year is shown on the first tick and on
    each January."""
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    every = 1 if months <= 14 else 3 if months <= 48 else 12
    ticks: list[tuple[date, str, str | None]] = []
    year, month = first.year, first.month
    if first.day != 1:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    while date(year, month, 1) <= last:
        if (month - 1) % every == 0:
            day = date(year, month, 1)
            show_year = not ticks or month == 1
            ticks.append((day, f"{month}月", f"{year}年" if show_year else None))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return ticks


@dataclass(frozen=True)
class Frame:
    """Maps days and amounts (display units) to SVG coordinates of one chart."""

    first: date
    last: date
    top: Decimal  # the amount at the top edge of the plot
    width: int = 640
    height: int = 250
    left: int = 58
    right: int = 18
    top_margin: int = 26
    bottom: int = 42

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    def x(self, day: date) -> float:
        span = max((self.last - self.first).days, 1)
        share = (day - self.first).days / span
        return self.left + (self.plot_right - self.left) * min(max(share, 0.0), 1.0)

    def y(self, value: Decimal) -> float:
        share = float(value / self.top) if self.top > 0 else 0.0
        share = min(max(share, 0.0), 1.0)
        return self.plot_bottom - (self.plot_bottom - self.top_margin) * share


@dataclass(frozen=True)
class ChartData:
    """What one pledge's chart shows; amounts in base units."""

    pledge_id: str
    start: date
    deadline: date
    on: date
    target: Decimal
    expected_on: Decimal
    schedule: Curve
    actual: Series | None  # None: not measurable
    scale: Decimal
    unit: str
    integer: bool


def chart_range(start: date, deadline: date, on: date) -> tuple[date, date]:
    return start, max(deadline, min(on, deadline + CHART_OVERRUN))


def step_points(actual: Series, *, last: date) -> list[tuple[date, Decimal]]:
    """A cumulative series as a step line: flat until the day it changes, then up; cut at
    ``last`` (the chart's right edge), where it holds its value."""
    points: list[tuple[date, Decimal]] = []
    for day, value in actual:
        if day > last:
            if points and points[-1][0] < last:
                points.append((last, points[-1][1]))
            break
        if points and value != points[-1][1]:
            points.append((day, points[-1][1]))
        points.append((day, value))
    return points


def _points(frame: Frame, points: Sequence[tuple[date, Decimal]], scale: Decimal) -> str:
    return " ".join(f"{frame.x(day):.1f},{frame.y(value / scale):.1f}" for day, value in points)


def chart_frame(data: ChartData) -> tuple[Frame, tuple[Decimal, ...]]:
    """The chart's frame and its amount ticks (display units): room for the target, the
    expected amount and every actual."""
    first, last = chart_range(data.start, data.deadline, data.on)
    highest = max([data.target, data.expected_on, *(value for _, value in data.actual or ())])
    ticks = nice_ticks(highest / data.scale, integer=data.integer)
    return Frame(first=first, last=last, top=ticks[-1]), ticks


def chart_svg(data: ChartData) -> str:
    """The chart as inline SVG: grid, month axis, target, schedule (dashed), actual (solid),
    deadline and status day marked. Series carry ``data-series`` for tests and tools."""
    frame, ticks = chart_frame(data)
    out: list[str] = []
    title = f"{data.pledge_id}: schedule and actual, {data.unit}"
    out.append(
        f'<svg class="chart" viewBox="0 0 {frame.width} {frame.height}" role="img" '
        f'aria-label="{escape(title)}" data-pledge="{escape(data.pledge_id)}">'
    )
    out.append(f"<title>{escape(title)}</title>")

    out.append('<g class="grid">')
    for tick in ticks:
        y = frame.y(tick)
        out.append(f'<line x1="{frame.left}" x2="{frame.plot_right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{plain_number(tick)}</text>"
        )
    out.append("</g>")
    out.append(
        f'<text class="unit" x="{frame.left - 6}" y="{frame.top_margin - 10}" '
        f'text-anchor="end">{escape(data.unit)}</text>'
    )

    out.append('<g class="x-axis">')
    out.append(
        f'<line class="axis" x1="{frame.left}" x2="{frame.plot_right}" '
        f'y1="{frame.plot_bottom}" y2="{frame.plot_bottom}"/>'
    )
    for day, month, year in month_ticks(frame.first, frame.last):
        x = frame.x(day)
        out.append(
            f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" '
            f'y1="{frame.plot_bottom}" y2="{frame.plot_bottom + 4}"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{frame.plot_bottom + 16}" text-anchor="middle">{month}</text>'
        )
        if year is not None:
            out.append(
                f'<text x="{x:.1f}" y="{frame.plot_bottom + 30}" text-anchor="middle">{year}</text>'
            )
    out.append("</g>")

    target_y = frame.y(data.target / data.scale)
    out.append(
        f'<line class="target" x1="{frame.left}" x2="{frame.plot_right}" '
        f'y1="{target_y:.1f}" y2="{target_y:.1f}"/>'
    )
    out.append(
        f'<text x="{frame.left + 4}" y="{target_y - 4:.1f}">目标 '
        f"{escape(with_unit(plain_number(data.target / data.scale), data.unit))}</text>"
    )

    deadline_x = frame.x(data.deadline)
    out.append(
        f'<line class="deadline" x1="{deadline_x:.1f}" x2="{deadline_x:.1f}" '
        f'y1="{frame.top_margin - 4}" y2="{frame.plot_bottom}"/>'
    )
    anchor = "end" if deadline_x > frame.left + 120 else "start"
    out.append(
        f'<text class="deadline-label" x="{deadline_x:.1f}" y="{frame.top_margin - 8}" '
        f'text-anchor="{anchor}">截止 deadline {data.deadline.month}月{data.deadline.day}日</text>'
    )

    on_inside = data.on <= frame.last
    on_x = frame.x(min(data.on, frame.last))
    if data.on >= frame.first:
        if on_inside:
            out.append(
                f'<line class="on-day" x1="{on_x:.1f}" x2="{on_x:.1f}" '
                f'y1="{frame.top_margin}" y2="{frame.plot_bottom}"/>'
            )
        label = (
            f"统计日 {data.on.month}月{data.on.day}日"
            if on_inside
            else f"统计日 {data.on.isoformat()} →"
        )
        right_side = on_x < frame.plot_right - 110
        out.append(
            f'<text class="on-day-label" x="{on_x + (4 if right_side else -4):.1f}" '
            f'y="{frame.top_margin + 12}" text-anchor="{"start" if right_side else "end"}">'
            f"{label}</text>"
        )

    schedule = list(data.schedule)
    if schedule and frame.last > schedule[-1][0]:
        schedule.append((frame.last, schedule[-1][1]))
    out.append(
        '<polyline class="series series-schedule" data-series="schedule" '
        f'points="{_points(frame, schedule, data.scale)}"/>'
    )
    if data.actual is not None and data.on >= frame.first:
        steps = step_points(data.actual, last=frame.last)
        if steps:
            out.append(
                '<polyline class="series series-actual" data-series="actual" '
                f'points="{_points(frame, steps, data.scale)}"/>'
            )
            day, value = steps[-1]
            out.append(
                f'<circle class="point-actual" cx="{frame.x(day):.1f}" '
                f'cy="{frame.y(value / data.scale):.1f}" r="4"/>'
            )
    if on_inside and data.on >= frame.first:
        out.append(
            f'<circle class="point-expected" cx="{on_x:.1f}" '
            f'cy="{frame.y(data.expected_on / data.scale):.1f}" r="3.5"/>'
        )
    out.append("</svg>")
    return "".join(out)

"""``citystream report``: the pledge report, one self-contained HTML page (``out/report.html``).

Per pledge, 中文 first: the cumulative actual against the schedule curve as an inline SVG
chart (deadline and status day marked), the status, target / actual / expected / gap in
units and in days, the projected completion and the quoted source sentence with its file.
The page fetches nothing: its CSS is inline (``services/report.html``), its charts are SVG
drawn here, it names only locally installed fonts, and it holds no ``http(s)://`` address.

The numbers are :func:`services.pledges.progress`'s; the daily actual series is built from
the same reads (``metric_daily`` and ``events`` through :mod:`streams.db.pledges`) and the
same definitions (:func:`services.pledges.metric_actual`, :func:`services.pledges.items_done`)
evaluated on each day the actual changes, so its last point is the pledge's actual.

Screenshots and the rendered DOM come from Debian's ``chromium`` in headless mode
(:func:`screenshot`, :func:`rendered_dom`). No environment variable of its own: callers pass
a connection made from :class:`streams.settings.Settings`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from html import escape
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import psycopg

from schemas.catalogue import (
    Catalogue,
    Metric,
    MilestonesSchedule,
    Pledge,
    SeasonalSchedule,
    load_catalogue,
)
from schemas.districts import LABELS, District
from schemas.errors import CityStreamError
from services.pledges import (
    AT_RISK_SHARE,
    BEHIND_GAP_DAYS,
    BEHIND_SHARE,
    STATUS_LABELS,
    Curve,
    PledgeProgress,
    Status,
    items_done,
    metric_actual,
    progress,
    schedule_curve,
    selected,
)
from streams.db.pledges import item_events, metric_days
from streams.rollup import LOCAL_TZ, local_day

DEFAULT_OUT = Path("out/report.html")

# Worst first, so the totals read like a to-do list.
STATUS_ORDER: tuple[Status, ...] = (
    Status.OVERDUE,
    Status.BEHIND,
    Status.AT_RISK,
    Status.ON_TRACK,
    Status.ACHIEVED,
    Status.NOT_MEASURABLE,
)

# Units stored in base codes whose display unit is a scaled one (万㎡): the base symbol, for
# exact figures. Units shown unscaled use the catalogue's display unit.
BASE_SYMBOLS = {"m2": "㎡", "km2": "km²", "km": "km"}
# Units whose amounts are counts: their axis ticks are whole numbers.
FRACTIONAL_UNITS = frozenset({"m2", "km", "km2", "percent", "yuan"})

# A status day long after the deadline would squeeze the schedule into a corner: the chart
# runs at most this far past the deadline and says where the status day lies.
CHART_OVERRUN = timedelta(days=92)

SCHEDULE_KINDS = {
    "linear": ("线性", "linear"),
    "seasonal": ("季节性", "seasonal"),
    "milestones": ("节点", "milestones"),
}

Series = tuple[tuple[date, Decimal], ...]


class ReportError(CityStreamError):
    """The report could not be written or rendered; the message says what to do."""


# --------------------------------------------------------------------------- formatting


def plain_number(value: Decimal, *, places: int = 2, sign: bool = False) -> str:
    """``value`` rounded to ``places`` decimals, thousands separated, no trailing zeros."""
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)  # never "-0"
    text = f"{rounded:+,f}" if sign and rounded != 0 else f"{rounded:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _with_unit(number: str, unit: str) -> str:
    # Chinese writes 75.9万㎡ and 93%, but 11 km.
    spaced = unit[:1].isascii() and unit[:1].isalpha()
    return f"{number} {unit}" if spaced else f"{number}{unit}"


def format_quantity(value: Decimal | None, metric: Metric, *, sign: bool = False) -> str:
    """An amount as a reader expects it: 759000 m² → "75.9万㎡", 2160 places → "2,160个"."""
    if value is None:
        return "—"
    return _with_unit(plain_number(value / metric.display_scale, sign=sign), metric.display_unit)


def base_unit(metric: Metric) -> str:
    if metric.display_scale == 1:
        return metric.display_unit
    return BASE_SYMBOLS.get(metric.unit, metric.unit)


def format_exact(value: Decimal | None, metric: Metric, *, sign: bool = False) -> str:
    """An amount in base units, every decimal kept: "2,562,900㎡"."""
    if value is None:
        return "—"
    exponent = value.normalize().as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    return _with_unit(plain_number(value, places=places, sign=sign), base_unit(metric))


def format_gap_days(days: int | None) -> tuple[str, str]:
    """(中文, English) for a gap in days; negative is behind the schedule."""
    if days is None:
        return "—", ""
    if days < 0:
        return f"落后 {-days} 天", f"{-days} days behind"
    if days > 0:
        return f"超前 {days} 天", f"{days} days ahead"
    return "0 天", "on schedule"


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def english_date(day: date) -> str:
    return f"{day.day} {day:%B} {day.year}"


# --------------------------------------------------------------------------- chart geometry


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
        f"{escape(_with_unit(plain_number(data.target / data.scale), data.unit))}</text>"
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


# --------------------------------------------------------------------------- data


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=LOCAL_TZ)


def actual_series(
    conn: psycopg.Connection[Any], pledge: Pledge, catalogue: Catalogue, *, on: date
) -> Series | None:
    """The cumulative actual at the end of ``start`` and of each later day up to ``on`` on
    which it changes, then at ``on``; None for a pledge no event can measure."""
    if not pledge.measurable:
        return None
    if on < pledge.start:
        return ()
    if pledge.progress_from == "metric":
        rows = metric_days(conn, metric=pledge.metric, first=pledge.start, last=on)
        days = {day for day, _, _ in rows}

        def value(day: date) -> Decimal:
            return metric_actual(rows, pledge, on=day)

    else:
        originals, corrections = item_events(
            conn,
            event_types=catalogue.metric(pledge.metric).event_types,
            codes=[item.code for item in pledge.items],
            until=_end_of_day(on),
        )
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


@dataclass(frozen=True)
class PledgeView:
    pledge: Pledge
    metric: Metric
    row: PledgeProgress
    actual: Series | None

    def chart(self) -> ChartData:
        return ChartData(
            pledge_id=self.pledge.id,
            start=self.pledge.start,
            deadline=self.pledge.deadline,
            on=self.row.on,
            target=self.pledge.target,
            expected_on=self.row.expected_to_date,
            schedule=schedule_curve(self.pledge),
            actual=self.actual,
            scale=self.metric.display_scale,
            unit=self.metric.display_unit,
            integer=self.pledge.unit not in FRACTIONAL_UNITS,
        )


def gather(
    conn: psycopg.Connection[Any], *, on: date, year: int | None, catalogue: Catalogue
) -> list[PledgeView]:
    """Every pledge (of ``year``) with its progress on ``on`` and its daily actual."""
    rows = {row.pledge_id: row for row in progress(conn, on=on, year=year, catalogue=catalogue)}
    return [
        PledgeView(
            pledge=pledge,
            metric=catalogue.metric(pledge.metric),
            row=rows[pledge.id],
            actual=actual_series(conn, pledge, catalogue, on=on),
        )
        for pledge in selected(catalogue, year)
    ]


# --------------------------------------------------------------------------- HTML


def _status_badge(status: Status) -> str:
    zh, en, _ = STATUS_LABELS[status]
    return f'<span class="status s-{status.value}">{zh} {en}</span>'


def _totals(views: Sequence[PledgeView]) -> str:
    counts = Counter(view.row.status for view in views)
    items = []
    for status in STATUS_ORDER:
        zh, en, _ = STATUS_LABELS[status]
        items.append(
            f'<li class="s-{status.value}" data-status="{status.value}">'
            f"{zh} {en}<b>{counts.get(status, 0)}</b></li>"
        )
    return (
        f'<ul class="totals" aria-label="status totals"><li class="s-all" '
        f'style="background:var(--ink)">全部 all<b>{len(views)}</b></li>{"".join(items)}</ul>'
    )


def _legend_line(css: str) -> str:
    return (
        f'<svg width="34" height="12" aria-hidden="true">'
        f'<line x1="2" y1="6" x2="32" y2="6" style="{css}"/></svg>'
    )


def _legend() -> str:
    entries = [
        (_legend_line("stroke:var(--actual);stroke-width:2.5"), "实际累计 actual, cumulative"),
        (
            _legend_line("stroke:var(--schedule);stroke-width:2;stroke-dasharray:6 4"),
            "进度计划 schedule (expected to date)",
        ),
        (
            _legend_line("stroke:var(--schedule);stroke-dasharray:2 3"),
            "目标 target",
        ),
        (
            _legend_line("stroke:var(--deadline);stroke-width:1.5;stroke-dasharray:5 3"),
            "截止日 deadline",
        ),
        (
            _legend_line("stroke:var(--today);stroke-width:1.5;stroke-dasharray:1 3"),
            "统计日 status day",
        ),
    ]
    return (
        '<ul class="legend" aria-label="legend">'
        + "".join(f"<li>{mark}{text}</li>" for mark, text in entries)
        + "</ul>"
    )


def _rules() -> str:
    behind_days = -BEHIND_GAP_DAYS
    return (
        '<p class="rules">状态按顺序判定 · Status, first rule that applies: '
        "已完成 achieved — actual ≥ target; 已逾期 overdue — past the deadline; "
        f"滞后 behind — {behind_days} days or more behind the schedule, or below "
        f"{BEHIND_SHARE:.0%} of what is due; 有风险 at risk — projected completion after the "
        f"deadline, or below {AT_RISK_SHARE:.0%} of what is due; 正常 on track — otherwise. "
        "差天数 gap in days: the last day whose expected amount the actual covers, minus the "
        "status day. 预计完成 projected: when the average daily rate since the start reaches "
        "the target.</p>"
    )


def _summary(views: Sequence[PledgeView]) -> str:
    head = (
        "<thead><tr><th>承诺 Pledge</th><th>编号 ID</th><th class='num'>目标 Target</th>"
        "<th class='num'>实际 Actual</th><th class='num'>应完成 Expected</th>"
        "<th class='num'>差天数 Gap days</th><th>状态 Status</th></tr></thead>"
    )
    rows = []
    for view in views:
        row, metric = view.row, view.metric
        gap = "—" if row.gap_days is None else f"{row.gap_days:+d}"
        rows.append(
            f'<tr><td class="title" title="{escape(row.title_zh)} {escape(row.title_en)}">'
            f'<a href="#{escape(row.pledge_id)}">{escape(row.title_zh)}</a>'
            f' <span class="en">{escape(row.title_en)}</span></td>'
            f"<td><code>{escape(row.pledge_id)}</code></td>"
            f"<td class='num'>{escape(format_quantity(row.target, metric))}</td>"
            f"<td class='num'>{escape(format_quantity(row.actual_to_date, metric))}</td>"
            f"<td class='num'>{escape(format_quantity(row.expected_to_date, metric))}</td>"
            f"<td class='num'>{gap}</td><td>{_status_badge(row.status)}</td></tr>"
        )
    return f'<table class="summary">{head}<tbody>{"".join(rows)}</tbody></table>'


def _signed_class(value: Decimal | int | None) -> str:
    if value is None or value == 0:
        return ""
    return ' class="neg"' if value < 0 else ' class="pos"'


def _figures(view: PledgeView) -> str:
    row, metric = view.row, view.metric
    gap_zh, gap_en = format_gap_days(row.gap_days)

    def cell(value: Decimal | None, *, sign: bool = False, css: str = "") -> str:
        exact = escape(format_exact(value, metric, sign=sign))
        shown = escape(format_quantity(value, metric, sign=sign))
        return f'<td{css} title="{exact}">{shown}</td>'

    return (
        '<table class="figures"><tr><th>目标 Target</th><th>实际 Actual</th>'
        "<th>应完成 Expected</th><th>差额 Gap</th><th>差天数 Gap (days)</th></tr><tr>"
        + cell(row.target)
        + cell(row.actual_to_date)
        + cell(row.expected_to_date)
        + cell(row.gap_units, sign=True, css=_signed_class(row.gap_units))
        + f"<td{_signed_class(row.gap_days)}>{gap_zh}"
        + (f"<br><small>{gap_en}</small>" if gap_en else "")
        + "</td></tr></table>"
    )


def _projection(view: PledgeView) -> str:
    row = view.row
    deadline = f"截止 deadline {row.deadline.isoformat()}"
    if row.status is Status.NOT_MEASURABLE:
        text = "—"
    elif row.status is Status.ACHIEVED:
        text = "<b>已完成 achieved</b>"
    elif row.projected_completion is None:
        text = "— <span class='late'>尚无进展 no progress yet</span>"
    elif row.projected_completion > row.deadline:
        text = (
            f"<b>{row.projected_completion.isoformat()}</b> "
            "<span class='late'>晚于截止日 after the deadline</span>"
        )
    else:
        text = f"<b>{row.projected_completion.isoformat()}</b>"
    return f'<p class="projection">预计完成 Projected completion: {text} ({deadline})</p>'


def _schedule_note(pledge: Pledge) -> str:
    schedule = pledge.schedule
    zh, en = SCHEDULE_KINDS[schedule.kind]
    detail = ""
    if isinstance(schedule, SeasonalSchedule):
        windows = ", ".join(
            f"{w.start:%m-%d}…{w.end:%m-%d} {w.share:.0%}" for w in schedule.windows
        )
        detail = f" ({escape(schedule.season)}: {windows})"
    elif isinstance(schedule, MilestonesSchedule):
        detail = f" ({schedule.interpolation}, {len(schedule.points)} points)"
    return (
        f'<p class="note">进度计划 Schedule: {zh} {en}{detail} — '
        f"{escape(pledge.schedule_reason)}</p>"
    )


def _scope(pledge: Pledge) -> str:
    zh, en = LABELS[pledge.district if pledge.district is not None else District.ZONE]
    return f"{zh} {en}"


def pledge_section(view: PledgeView, catalogue: Catalogue) -> str:
    pledge, row = view.pledge, view.row
    department = catalogue.department(pledge.owner)
    notes = []
    if not pledge.measurable and pledge.measurable_reason:
        notes.append(
            f'<p class="note">无法用事件计量 Not measurable by events: '
            f"{escape(pledge.measurable_reason)}</p>"
        )
    elif not view.metric.event_types:
        notes.append(
            '<p class="note">尚无事件类型上报此指标，实际为 0 · No event type reports '
            f"{escape(view.metric.name)} yet, so the actual stays 0"
            + (f": {escape(view.metric.note)}" if view.metric.note else "")
            + "</p>"
        )
    if pledge.progress_from == "items":
        names = "、".join(escape(item.name_zh) for item in pledge.items)
        notes.append(f'<p class="note">计数项目 Items counted: {names}</p>')
    return (
        f'<section class="pledge st-{row.status.value}" id="{escape(pledge.id)}" '
        f'data-pledge-id="{escape(pledge.id)}" data-status="{row.status.value}">'
        f"<h2>{escape(pledge.title_zh)}</h2>"
        f'<p class="title-en">{escape(pledge.title_en)}</p>'
        f'<div class="meta"><code>{escape(pledge.id)}</code>{_status_badge(row.status)}'
        f"<span>责任单位 Owner: {escape(department.name_zh)}</span>"
        f"<span>范围 Scope: {escape(_scope(pledge))}</span></div>"
        + chart_svg(view.chart())
        + _figures(view)
        + _projection(view)
        + _schedule_note(pledge)
        + "".join(notes)
        + f'<blockquote class="source">“{escape(pledge.source.quote)}”'
        f"<cite>来源 Source: {escape(pledge.source.file)}</cite></blockquote>"
        "</section>"
    )


def _template() -> Template:
    return Template(resources.files("services").joinpath("report.html").read_text("utf-8"))


def render(
    views: Sequence[PledgeView],
    catalogue: Catalogue,
    *,
    on: date,
    year: int | None,
    generated_at: datetime,
) -> str:
    """The whole page; pure (no database, no clock)."""
    zone = catalogue.zone
    years = f" {year}年" if year is not None else " "
    heading_zh = f"{zone.full_name_zh}{years}民生实事承诺进度"
    heading_en = (
        f"{zone.full_name_en}: progress of the {year} pledges"
        if year is not None
        else f"{zone.full_name_en}: progress of the pledges"
    )
    as_of = (
        f"统计截至 <strong>{chinese_date(on)}</strong> 日终（北京时间）· "
        f"Status at the end of <strong>{english_date(on)}</strong> (Asia/Shanghai)"
    )
    generated = (
        f"生成于 Generated {generated_at.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M} "
        "(Asia/Shanghai) by <code>citystream report</code> from PostgreSQL "
        "(metric_daily, events) and the pledge catalogue (seeds/pledges/)"
    )
    footer = (
        "CityStream · 民生实事数据流. 每项承诺的原文引自其来源文件 (../shared/seeds/) · "
        "Every pledge quotes its source document. 本页不访问网络 · This page loads nothing "
        "from the network."
    )
    return _template().substitute(
        title=escape(f"{heading_zh} · {english_date(on)}"),
        heading_zh=escape(heading_zh),
        heading_en=escape(heading_en),
        as_of=as_of,
        generated=generated,
        totals=_totals(views),
        legend=_legend(),
        rules=_rules(),
        summary=_summary(views),
        sections="\n".join(pledge_section(view, catalogue) for view in views),
        footer=footer,
    )


def write_report(
    conn: psycopg.Connection[Any],
    *,
    on: date,
    year: int | None = None,
    out: Path = DEFAULT_OUT,
    catalogue: Catalogue | None = None,
) -> Path:
    """Read progress and daily actuals, write the page to ``out``; return its path."""
    catalogue = catalogue if catalogue is not None else load_catalogue()
    views = gather(conn, on=on, year=year, catalogue=catalogue)
    if not views:
        raise ReportError(f"no pledges for {year} in seeds/pledges/")
    page = render(views, catalogue, on=on, year=year, generated_at=datetime.now(LOCAL_TZ))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out}: {exc}") from exc
    return out.resolve()


# --------------------------------------------------------------------------- chromium

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # we may run as root (CI); the page is our own file
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--no-first-run",
)


def chromium_path() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise ReportError(
            "chromium is not installed: run 'make system-deps' as root, or "
            "'sudo apt-get install chromium' (Debian's package)"
        )
    return found


def _chromium(args: Sequence[str], *, timeout_s: float) -> bytes:
    """Run headless chromium with its own throw-away profile; return its stdout."""
    with tempfile.TemporaryDirectory(prefix="citystream-chromium-") as profile:
        command = [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        # Its own session, so a hung browser is stopped with all of its helper processes.
        proc = subprocess.Popen(  # noqa: S603 - fixed binary, our own arguments
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ReportError(f"chromium did not finish within {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace")[-800:]
        raise ReportError(f"chromium exited with code {proc.returncode}: {tail}")
    return stdout


def screenshot(
    html: Path, png: Path, *, width: int = 1280, height: int = 1800, timeout_s: float = 120
) -> Path:
    """A PNG of the page's first ``width`` × ``height`` pixels, as headless chromium draws it."""
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    _chromium(
        [
            f"--window-size={width},{height}",
            f"--screenshot={png.resolve()}",
            html.resolve().as_uri(),
        ],
        timeout_s=timeout_s,
    )
    if not png.is_file():
        raise ReportError(f"chromium wrote no screenshot to {png}")
    return png


def rendered_dom(html: Path, *, timeout_s: float = 120) -> str:
    """The page's DOM after chromium parsed and laid it out (``--dump-dom``)."""
    return _chromium(["--dump-dom", html.resolve().as_uri()], timeout_s=timeout_s).decode()

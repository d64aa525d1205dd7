"""``citystream report``: the pledge report, one self-contained HTML page (``out/report.html``).

Per pledge, 中文 first: the cumulative actual against the schedule curve as an inline SVG
chart (:mod:`services.pledges.chart`; deadline and status day marked), the status, target /
actual / expected / gap in units and in days, the projected completion and the quoted source
sentence with its file. The page fetches nothing: its CSS is inline (the template
``report.html`` beside this module), its charts are SVG, it names only locally installed
fonts, and it holds no ``http(s)://`` address.

The numbers are :func:`services.pledges.reads.progress`'s; the daily actual series
(:func:`services.pledges.reads.actual_series`) comes from the same reads and the same
definitions, so its last point is the pledge's actual. Screenshots:
:mod:`services.pledges.screenshot`. No environment variable of its own: callers pass a
connection made from :class:`streams.settings.Settings`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from html import escape
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import psycopg

from schemas.catalogue import Catalogue, Metric, MilestonesSchedule, Pledge, SeasonalSchedule
from schemas.districts import LABELS, District
from schemas.errors import CityStreamError
from schemas.seeds import load_catalogue
from services.pledges.chart import ChartData, chart_svg
from services.pledges.formats import (
    chinese_date,
    english_date,
    format_exact,
    format_gap_days,
    format_quantity,
)
from services.pledges.reads import actual_series, progress
from services.pledges.rules import (
    AT_RISK_SHARE,
    BEHIND_GAP_DAYS,
    BEHIND_SHARE,
    STATUS_LABELS,
    PledgeProgress,
    Series,
    Status,
    schedule_curve,
    selected,
)
from streams.rollup import LOCAL_TZ

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

# Units whose amounts may be fractional; every other unit counts things, so its chart's
# amount ticks are whole numbers.
FRACTIONAL_UNITS = frozenset({"m2", "km", "km2", "percent", "yuan"})

SCHEDULE_KINDS = {
    "linear": ("线性", "linear"),
    "seasonal": ("季节性", "seasonal"),
    "milestones": ("节点", "milestones"),
}


class ReportError(CityStreamError):
    """The report could not be written or rendered; the message says what to do."""


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
    if pledge.progress_from == "level":
        notes.append(
            '<p class="note">按最新一次上报的比例计（非累加）· The latest reported level, not a '
            "sum: each report states the rate measured on its date; the projection extends the "
            "trend from the first report of the year to the latest</p>"
        )
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
    return Template(resources.files("services.pledges").joinpath("report.html").read_text("utf-8"))


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

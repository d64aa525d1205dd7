"""民生实事 · Pledge overview: every pledge of the year against its schedule.

Reads ``pledge_progress_at(d)`` (migration 0004; level pledges since 0011) for ``d`` = the
local day at the end of the dashboard's time range, so the dashboard shows any past day "as
shown on date X" and, with the default range (this year to now), today. Variables: year,
department, subdistrict, and a hidden ``pledge`` variable that repeats one row of panels per
measurable pledge. A level pledge (a rate, ``progress_from: level``) shows its actual, target
and expected in percent and its gap in percentage points (个百分点).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.panels import (
    Layout,
    data_link,
    gauge_panel,
    new_dashboard,
    query_variable,
    stat_panel,
    status_mappings,
    table_panel,
    timeseries_panel,
    title,
)
from dashboards.sqlparts import (
    STATUS_LABELS,
    TO_DAY,
    amount,
    day_start,
    departments_values,
    district_label,
    districts_values,
    gap_unit,
    latest_pledges,
    literal,
    metric_display_cte,
    with_unit,
)

UID = "citystream-pledges"
AUDIT_UID = "citystream-audit"

YEAR_SQL = "SELECT DISTINCT year AS __value, year || ' 年' AS __text FROM pledges ORDER BY 1 DESC"
DEPARTMENT_SQL = f"""SELECT coalesce(d.label, p.department) AS __text, p.department AS __value
FROM (SELECT DISTINCT department FROM pledges WHERE year = $year) p
LEFT JOIN {departments_values()} AS d(code, label) ON d.code = p.department
ORDER BY p.department"""
SUBDISTRICT_SQL = f"""SELECT label AS __text, code AS __value
FROM {districts_values()} AS d(code, label, position)
ORDER BY position"""
# Zone-wide pledges (district NULL) stay whichever subdistricts are chosen: every
# subdistrict contributes to them.
PLEDGE_SQL = f"""SELECT title_zh || ' · ' || title_en AS __text, id AS __value
FROM {latest_pledges()} p
WHERE year = $year AND measurable AND department IN ($department)
  AND (district IS NULL OR district IN ($subdistrict))
ORDER BY id"""

# The selected pledges' progress at the end of the time range.
PROGRESS_CTE = f"""progress AS (
  SELECT pp.*, l.department
  FROM pledge_progress_at({TO_DAY}) pp
  JOIN {latest_pledges()} l ON l.id = pp.pledge_id AND l.version = pp.version
  WHERE pp.year = $year AND l.department IN ($department)
    AND (pp.district IS NULL OR pp.district IN ($subdistrict))
)"""


def status_count(status: str) -> str:
    return f"""WITH {PROGRESS_CTE}
SELECT count(*) AS "承诺 · Pledges"
FROM progress
WHERE status = {literal(status)}"""


def summary_table() -> str:
    def quantity(column: str) -> str:
        return with_unit(amount(f"p.{column} / m.scale"), "m.unit")

    return f"""WITH {metric_display_cte()},
{PROGRESS_CTE}
SELECT
  p.title_zh || ' · ' || p.title_en AS "承诺 · Pledge",
  {district_label("coalesce(p.district, 'zone')")} AS "街道 · Subdistrict",
  p.status AS "状态 · Status",
  round(100 * p.actual_to_date / p.target, 1) AS "完成率 · Progress (%)",
  {quantity("target")} AS "目标 · Target",
  {quantity("actual_to_date")} AS "实际 · Actual",
  {quantity("expected_to_date")} AS "计划应完成 · Expected",
  {amount("p.gap_units / m.scale")} || ' ' || {gap_unit("m.unit")} AS "差距 · Gap",
  p.gap_days AS "差距天数 · Gap (days)",
  p.projected_completion AS "预计完成 · Projected completion",
  p.deadline AS "期限 · Deadline",
  p.pledge_id
FROM progress p
JOIN metric_display m USING (metric)
ORDER BY p.pledge_id"""


ONE_PLEDGE = f"pledge_progress_at({TO_DAY}) p WHERE p.pledge_id IN ($pledge)"

PROGRESS_GAUGE = (
    f'SELECT round(100 * p.actual_to_date / p.target, 1) AS "完成率 · Progress"\nFROM {ONE_PLEDGE}'
)
STATUS_STAT = f'SELECT p.status AS "状态 · Status"\nFROM {ONE_PLEDGE}'
GAP_DAYS_STAT = f'SELECT p.gap_days AS "差距天数 · Gap (days)"\nFROM {ONE_PLEDGE}'
PROJECTED_STAT = f"""SELECT
  coalesce(to_char(p.projected_completion, 'YYYY-MM-DD'), '—') AS "预计完成 · Projected completion",
  to_char(p.deadline, 'YYYY-MM-DD') AS "期限 · Deadline"
FROM {ONE_PLEDGE}"""
# Time-series format with a `metric` column names the series: the unit travels in the name,
# since one repeated panel serves pledges measured in 万㎡, 个 and 处 alike.
GAP_UNITS_STAT = f"""WITH {metric_display_cte()}
SELECT $__timeTo()::timestamptz AS time,
  '差距 · Gap (' || {gap_unit("m.unit")} || ')' AS metric,
  p.gap_units / m.scale AS value
FROM pledge_progress_at({TO_DAY}) p
JOIN metric_display m USING (metric)
WHERE p.pledge_id IN ($pledge)"""
# The schedule is a series of its own (Grafana has no goal line): pledge_schedule holds the
# curve the loader materialised. The actual curve is pledge_progress_at(d) for every day, so
# it is the same figure `citystream pledges status --on d` prints for that day.
CUMULATIVE_SERIES = f"""WITH {metric_display_cte()},
p AS (SELECT * FROM {ONE_PLEDGE})
SELECT * FROM (
  SELECT {day_start("s.day")} AS time,
    '计划 · Schedule (' || m.unit || ')' AS metric,
    s.expected / m.scale AS value
  FROM p
  JOIN pledge_schedule s ON s.pledge_id = p.pledge_id AND s.version = p.version
  JOIN metric_display m ON m.metric = p.metric
  WHERE {day_start("s.day")} BETWEEN $__timeFrom()::timestamptz AND $__timeTo()::timestamptz
  UNION ALL
  SELECT {day_start("g.day::date")},
    '实际 · Actual (' || m.unit || ')',
    a.actual_to_date / m.scale
  FROM p
  JOIN metric_display m ON m.metric = p.metric
  CROSS JOIN LATERAL generate_series(p.start, least(p.deadline, {TO_DAY}), interval '1 day')
    AS g(day)
  CROSS JOIN LATERAL (
    SELECT x.actual_to_date FROM pledge_progress_at(g.day::date) x WHERE x.pledge_id = p.pledge_id
  ) a
  WHERE {day_start("g.day::date")} BETWEEN $__timeFrom()::timestamptz AND $__timeTo()::timestamptz
) curves
ORDER BY time, metric"""


def build() -> db.Dashboard:
    dashboard = new_dashboard(
        UID,
        "民生实事 · Pledge overview",
        description=(
            "每项民生实事承诺的进度与计划对比；时间范围的终点即“截至日期”。"
            " · Each pledge against its schedule, as of the end of the time range."
        ),
        time_from="now/y",
        refresh="15m",
    )
    dashboard = (
        dashboard.with_variable(query_variable("year", "年度 · Year", YEAR_SQL))
        .with_variable(
            query_variable(
                "department",
                "部门 · Department",
                DEPARTMENT_SQL,
                multi=True,
                include_all=True,
            )
        )
        .with_variable(
            query_variable(
                "subdistrict", "街道 · Subdistrict", SUBDISTRICT_SQL, multi=True, include_all=True
            )
        )
        .with_variable(
            query_variable(
                "pledge",
                "承诺 · Pledge",
                PLEDGE_SQL,
                multi=True,
                include_all=True,
                hide=dm.VariableHide.HIDE_VARIABLE,
                description="One row of panels per measurable pledge (the rows repeat over it).",
            )
        )
    )
    layout = Layout(dashboard)
    layout.row(title("总览", "Overview"))
    for code, (label, colour) in STATUS_LABELS.items():
        layout.add(
            stat_panel(
                label,
                status_count(code),
                color_mode=cm.BigValueColorMode.BACKGROUND,
                steps=((None, colour),),
                decimals=0,
                unit="suffix: 项",
            ),
            w=4,
            h=4,
        )
    layout.band()
    layout.add(
        table_panel(
            title("承诺一览", "All pledges"),
            summary_table(),
            description="点击一行查看它背后的账本 · Click a row for the ledger behind it (Audit).",
            mappings=status_mappings(),
            links=[
                data_link(
                    "账本明细 · Ledger drill-down",
                    f"/d/{AUDIT_UID}?var-pledge=${{__data.fields.pledge_id}}&${{__url_time_range}}",
                )
            ],
        ),
        w=24,
        h=11,
    )
    layout.row("${pledge:text}", repeat="pledge")
    layout.at(
        gauge_panel(
            title("完成率", "Progress"), PROGRESS_GAUGE, description="实际 ÷ 目标 · actual ÷ target"
        ),
        x=0,
        w=4,
        h=8,
    )
    layout.at(
        timeseries_panel(
            title("累计完成与计划", "Cumulative actual vs schedule"),
            CUMULATIVE_SERIES,
            stepped=True,
            description=(
                "比率类承诺（如普惠率、回迁率）的实际值是当日最新上报的水平，不累加 · For a "
                "rate (a level pledge) the actual is the latest reported level, not a sum"
            ),
        ),
        x=4,
        w=10,
        h=8,
    )
    layout.at(
        stat_panel(
            title("状态", "Status"),
            STATUS_STAT,
            fields="/.*/",
            color_mode=cm.BigValueColorMode.BACKGROUND,
            mappings=status_mappings(),
        ),
        x=14,
        w=5,
        h=4,
    )
    layout.at(
        stat_panel(title("预计完成", "Projected completion"), PROJECTED_STAT, fields="/.*/"),
        x=19,
        w=5,
        h=4,
    )
    layout.at(
        stat_panel(
            title("差距", "Gap"),
            GAP_UNITS_STAT,
            fmt="time_series",
            text_mode=cm.BigValueTextMode.VALUE_AND_NAME,
            steps=((None, "red"), (0, "green")),
            decimals=2,
        ),
        x=14,
        w=5,
        h=4,
        dy=4,
    )
    layout.at(
        stat_panel(
            title("差距天数", "Gap in days"),
            GAP_DAYS_STAT,
            unit="suffix: 天",
            steps=((None, "red"), (-30, "orange"), (0, "green")),
            description="负数：比计划晚的天数 · negative: days behind the schedule",
        ),
        x=19,
        w=5,
        h=4,
        dy=4,
    )
    return dashboard

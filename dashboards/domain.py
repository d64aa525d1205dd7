"""The panels every family dashboard has, built from the family's declaration
(``schemas/<family>.py``): one board per family.

For each metric the family's events produce (``schemas.catalogue.EVENT_METRICS``): the total
in the time range, the cumulative trend per subdistrict and the total per subdistrict, read
from ``metric_daily``. A *level* (a rate reported from time to time,
``schemas/indicators.py``) is never in ``metric_daily``: its panels read its reports from
the ``events`` ledger instead — the latest level, the level of every report over time and
per subdistrict, and the reports with their numerator and denominator — each report at its
level plus the deltas of its corrections, the latest chosen as the pledge rules choose it
(``services/pledges/rules.py``: measured last, then reported last, then the greater event
id). A family whose projects reach milestones (``schemas/milestones.py``) lists each project
with its milestones and their dates. Then the latest events with their source references
and the corrections shown as restatements (original → corrected figure, reason, approver),
read from the ``events`` ledger. One variable: subdistrict (several, or all).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.panels import (
    GRID_WIDTH,
    Layout,
    bargauge_panel,
    new_dashboard,
    query_variable,
    stat_panel,
    table_panel,
    timeseries_panel,
    title,
)
from dashboards.sqlparts import (
    FROM_DAY,
    TO_DAY,
    Display,
    amount,
    day_start,
    district_label,
    districts_values,
    event_label,
    family_event_types,
    family_metrics,
    gap_unit,
    literal,
    local_date_text,
    local_day,
    metric_display_cte,
    metric_event_types,
    milestone_event_types,
    milestone_label,
    original_of,
    with_unit,
)
from schemas.family import Family

SUBDISTRICT_SQL = f"""SELECT label AS __text, code AS __value
FROM {districts_values()} AS d(code, label, position)
ORDER BY position"""

IN_RANGE = f"day BETWEEN {FROM_DAY} AND {TO_DAY}"


# Column names stay short: PostgreSQL cuts identifiers at 63 bytes (21 Chinese characters);
# the panel's title names the measure.
def total_stat(display: Display) -> str:
    return f"""SELECT {display.scaled("coalesce(sum(total), 0)")} AS "合计 · Total"
FROM metric_daily
WHERE metric = {literal(display.metric)} AND district IN ($subdistrict)
  AND {IN_RANGE}"""


def cumulative_series(display: Display) -> str:
    return f"""SELECT {day_start("day")} AS time,
  {district_label("district")} AS metric,
  {display.scaled("sum(sum(total)) OVER (PARTITION BY district ORDER BY day)")} AS value
FROM metric_daily
WHERE metric = {literal(display.metric)} AND district IN ($subdistrict)
  AND {IN_RANGE}
GROUP BY day, district
ORDER BY time, metric"""


def by_subdistrict(display: Display) -> str:
    return f"""SELECT d.label AS "街道 · Subdistrict",
  {display.scaled("coalesce(sum(m.total), 0)")} AS "合计 · Total"
FROM {districts_values()} AS d(code, label, position)
LEFT JOIN metric_daily m ON m.district = d.code AND m.metric = {literal(display.metric)}
  AND m.{IN_RANGE}
WHERE d.code IN ($subdistrict)
GROUP BY d.label, d.position
ORDER BY d.position"""


# --------------------------------------------------------------------------- levels

LEVEL_NOTE = (
    "水平值按上报记录取值，不累加：某日的值是截至该日测量的最新一次上报（先比测量时间，再比上报"
    "时间），加上该次上报的更正 · A level is not summed: its value on a day is the latest report "
    "measured by then (measured last, then reported last), plus its corrections"
)


LATEST_LEVEL = '"最新水平 · Latest level"'
# Latest first, as the pledge rules order a level's reports.
LATEST_FIRST = "occurred_at DESC, reported_at DESC, event_id DESC"


def level_reports_cte(display: Display) -> str:
    """``reports``: each report of a level metric measured (local day of ``occurred_at``) in the
    time range, in the chosen subdistricts, with its level as reported and the sum of its
    corrections' deltas dated up to the range's last day (a pledge's rule for day d)."""
    metric = literal(display.metric)
    types = ", ".join(literal(t) for t in metric_event_types(display.metric))
    return f"""reports AS (
  SELECT r.event_id, r.district, r.occurred_at, r.reported_at, r.source_ref, r.payload,
    (r.measures ->> {metric})::numeric AS reported,
    coalesce((
      SELECT sum((c.measures ->> {metric})::numeric)
      FROM events c
      WHERE c.corrects = r.event_id AND {local_day("c.occurred_at")} <= {TO_DAY}
    ), 0) AS corrected
  FROM events r
  WHERE r.event_type IN ({types}) AND r.measures ? {metric}
    AND r.district IN ($subdistrict)
    AND {local_day("r.occurred_at")} BETWEEN {FROM_DAY} AND {TO_DAY}
)"""


def latest_level_stat(display: Display) -> str:
    # A subquery, so the stat gets its one row (NULL: no report in the range) either way.
    return f"""WITH {level_reports_cte(display)}
SELECT (
  SELECT reported + corrected FROM reports ORDER BY {LATEST_FIRST} LIMIT 1
) AS {LATEST_LEVEL}"""


def level_series(display: Display) -> str:
    """Each report's level (corrections applied) at the moment it was measured, a series per
    subdistrict; of two reports of one moment the one reported last."""
    return f"""WITH {level_reports_cte(display)}
SELECT r.occurred_at AS time,
  {district_label("r.district")} AS metric,
  r.reported + r.corrected AS value
FROM (
  SELECT DISTINCT ON (district, occurred_at) *
  FROM reports
  ORDER BY district, occurred_at, reported_at DESC, event_id DESC
) r
ORDER BY time, metric"""


def level_by_subdistrict(display: Display) -> str:
    return f"""WITH {level_reports_cte(display)}
SELECT d.label AS "街道 · Subdistrict",
  r.level AS {LATEST_LEVEL}
FROM {districts_values()} AS d(code, label, position)
CROSS JOIN LATERAL (
  SELECT reported + corrected AS level FROM reports
  WHERE district = d.code
  ORDER BY {LATEST_FIRST}
  LIMIT 1
) r
WHERE d.code IN ($subdistrict)
ORDER BY d.position"""


def level_report_table(display: Display) -> str:
    """Every report, latest first: as reported, its corrections, the level that stands, the
    counts it came from; which one is the current level."""
    return f"""WITH {level_reports_cte(display)},
ranked AS (
  SELECT r.*,
    row_number() OVER (ORDER BY {LATEST_FIRST}) AS recency,
    row_number() OVER (PARTITION BY district, occurred_at
                       ORDER BY reported_at DESC, event_id DESC) AS at_moment
  FROM reports r
)
SELECT r.occurred_at AS "测量时间 · Measured",
  {district_label("r.district")} AS "街道 · Subdistrict",
  r.reported AS "上报值 · Reported (%)",
  r.corrected AS "更正 · Corrections (pp)",
  r.reported + r.corrected AS "现值 · Standing (%)",
  (r.payload ->> 'numerator')::bigint AS "分子 · Numerator",
  (r.payload ->> 'denominator')::bigint AS "分母 · Denominator",
  CASE WHEN r.recency = 1 THEN '当前水平 · Current level'
    WHEN r.at_moment > 1 THEN '已被同一时刻的后报取代 · Superseded by a later report'
    ELSE '' END AS "说明 · Note",
  r.source_ref AS "台账编号 · Source ref",
  r.reported_at AS "上报时间 · Reported",
  r.event_id::text AS "事件编号 · Event id"
FROM ranked r
ORDER BY r.recency"""


# --------------------------------------------------------------------------- the ledger


def milestones(family: str) -> str:
    """Each project's milestones in the time range: the day reached, and whether it still
    counts (a correction may have retracted the report)."""
    types = ", ".join(literal(t) for t in milestone_event_types(family))
    return f"""SELECT e.project AS "项目 · Project",
  e.payload ->> 'project_name' AS "项目名称 · Project name",
  {milestone_label("e.payload ->> 'milestone'")} AS "节点 · Milestone",
  {local_date_text("e.occurred_at")} AS "日期 · Date",
  {district_label("e.district")} AS "街道 · Subdistrict",
  {event_label("e.event_type")} AS "事件 · Event",
  CASE WHEN 1 + coalesce(corr.delta, 0) > 0 THEN '是 · yes'
    ELSE '否，已更正撤回 · no, retracted' END AS "计入 · Counted",
  e.source_ref AS "台账编号 · Source ref"
FROM events e
LEFT JOIN LATERAL (
  SELECT sum((c.payload ->> 'delta')::numeric) AS delta
  FROM events c
  WHERE c.corrects = e.event_id AND {local_day("c.occurred_at")} <= {TO_DAY}
) corr ON true
WHERE e.event_type IN ({types}) AND e.district IN ($subdistrict)
  AND $__timeFilter(e.occurred_at)
ORDER BY e.project, e.occurred_at, e.event_id
LIMIT 500"""


def quantities(column: str) -> str:
    """A ledger row's measures as a reader writes them: "新增供热面积 … 8.64 万㎡"."""
    quantity = with_unit(amount("kv.value::numeric / md.scale"), "md.unit")
    return f"""(SELECT string_agg(md.label || ': ' || {quantity}, '；' ORDER BY kv.key)
   FROM jsonb_each_text({column}) kv JOIN metric_display md ON md.metric = kv.key)"""


def _restated() -> str:
    """A correction ``c`` of the event ``o`` in the metric ``md``'s display unit: the original
    figure, the change (a change of a percentage in percentage points), the figure that now
    stands."""
    original = "(o.measures ->> md.metric)::numeric"
    change = "(c.payload ->> 'delta')::numeric"
    return f"""{with_unit(amount(f"{original} / md.scale"), "md.unit")} AS "原值 · Original",
  {amount(f"{change} / md.scale")} || ' ' || {gap_unit("md.unit")} AS "更正 · Change",
  {with_unit(amount(f"({original} + {change}) / md.scale"), "md.unit")}
    AS "更正后 · Restated\""""


# The three columns of a restatement, for the family boards and the audit.
RESTATED = _restated()


def latest_events(family: str) -> str:
    types = ", ".join(literal(t) for t in family_event_types(family))
    return f"""WITH {metric_display_cte()}
SELECT e.occurred_at AS "发生时间 · Occurred",
  {district_label("e.district")} AS "街道 · Subdistrict",
  e.project AS "项目 · Project",
  {event_label("e.event_type")} AS "事件 · Event",
  {quantities("e.measures")} AS "数量 · Quantity",
  e.source_ref AS "台账编号 · Source ref",
  e.reported_at AS "上报时间 · Reported",
  e.event_id::text AS "事件编号 · Event id"
FROM events e
WHERE e.event_type IN ({types}) AND e.district IN ($subdistrict)
  AND $__timeFilter(e.occurred_at)
ORDER BY e.occurred_at DESC, e.event_id
LIMIT 200"""


def restatements(family: str) -> str:
    """Each correction with the figure it corrects and the figure that now stands."""
    return f"""WITH {metric_display_cte()}
SELECT c.occurred_at AS "更正时间 · Corrected at",
  {district_label("c.district")} AS "街道 · Subdistrict",
  o.project AS "项目 · Project",
  md.label AS "指标 · Measure",
  {RESTATED},
  c.payload ->> 'reason' AS "原因 · Reason",
  c.payload ->> 'approved_by' AS "批准人 · Approved by",
  o.source_ref AS "原台账编号 · Original source ref",
  c.corrects::text AS "被更正事件 · Corrected event"
FROM events c
{original_of("c", "o")}
JOIN metric_display md ON md.metric = c.payload ->> 'metric'
WHERE c.event_type = {literal(f"{family}.correction")} AND c.district IN ($subdistrict)
  AND $__timeFilter(c.occurred_at)
ORDER BY c.occurred_at DESC, c.event_id"""


def _band_width(count: int, per_band: int = 6) -> int:
    """The width of ``count`` panels spread evenly over as few bands as hold them."""
    bands = -(-count // per_band)
    return GRID_WIDTH // -(-count // bands)


def _metric_panels(layout: Layout, display: Display) -> None:
    """The row of one summed metric: its cumulative trend and its total per subdistrict."""
    layout.row(title(f"{display.label_zh}（按街道）", f"{display.label_en} by subdistrict"))
    layout.add(
        timeseries_panel(
            title(f"累计{display.label_zh}", f"Cumulative {display.label_en.lower()}"),
            cumulative_series(display),
            unit=display.grafana_unit,
            decimals=display.decimals,
            stepped=True,
        ),
        w=16,
        h=8,
    )
    layout.add(
        bargauge_panel(
            title(f"各街道{display.label_zh}", f"{display.label_en} per subdistrict"),
            by_subdistrict(display),
            unit=display.grafana_unit,
            decimals=display.decimals,
        ),
        w=8,
        h=8,
    )


def _level_panels(layout: Layout, display: Display) -> None:
    """The row of one level: its reports over time, the latest per subdistrict, the reports."""
    layout.row(title(f"{display.label_zh}（历次上报）", f"{display.label_en}: every report"))
    layout.add(
        timeseries_panel(
            title(f"{display.label_zh}（按测量日期）", f"{display.label_en}, by date measured"),
            level_series(display),
            unit=display.grafana_unit,
            decimals=display.decimals,
            stepped=True,
            description=LEVEL_NOTE,
        ),
        w=16,
        h=8,
    )
    layout.add(
        bargauge_panel(
            title(f"各街道最新{display.label_zh}", f"{display.label_en}: latest per subdistrict"),
            level_by_subdistrict(display),
            unit=display.grafana_unit,
            decimals=display.decimals,
        ),
        w=8,
        h=8,
    )
    layout.add(
        table_panel(
            title(f"{display.label_zh}上报记录", f"{display.label_en}: reports"),
            level_report_table(display),
            description=LEVEL_NOTE,
        ),
        w=24,
        h=8,
    )


def build_domain(declared: Family) -> db.Dashboard:
    """The dashboard of one event family, from its declaration (schemas/family.py)."""
    family = declared.name
    dashboard = new_dashboard(
        declared.dashboard_uid,
        title(declared.title_zh, declared.title_en),
        description=declared.description,
        time_from="now/y",
    ).with_variable(
        query_variable(
            "subdistrict", "街道 · Subdistrict", SUBDISTRICT_SQL, multi=True, include_all=True
        )
    )
    metrics = family_metrics(family)
    layout = Layout(dashboard)
    if any(display.level for display in metrics):
        layout.row(title("总量与最新水平", "Totals and latest levels in the time range"))
    else:
        layout.row(title("总量", "Totals in the time range"))
    width = _band_width(len(metrics))
    for display in metrics:
        if display.level:
            panel = stat_panel(
                title(f"{display.label_zh}（最新上报）", f"{display.label_en} (latest report)"),
                latest_level_stat(display),
                unit=display.grafana_unit,
                decimals=display.decimals,
                description=LEVEL_NOTE,
            )
        else:
            panel = stat_panel(
                display.title,
                total_stat(display),
                unit=display.grafana_unit,
                decimals=display.decimals,
            )
        layout.add(panel, w=width, h=4)
    for display in metrics:
        if display.level:
            _level_panels(layout, display)
        else:
            _metric_panels(layout, display)
    layout.row(title("台账", "Ledger"))
    if milestone_event_types(family):
        layout.add(
            table_panel(
                title("项目节点", "Project milestones"),
                milestones(family),
                description=(
                    "每个项目在时间范围内达到的节点及日期；被更正撤回的节点不计入 · Each "
                    "project's milestones in the time range and the day each was reached; a "
                    "milestone a correction retracted does not count"
                ),
            ),
            w=24,
            h=10,
        )
    layout.add(
        table_panel(
            title("最新事件", "Latest events"),
            latest_events(family),
            description="账本中的原始事件，含台账编号 · Ledger rows with their source references",
        ),
        w=24,
        h=10,
    )
    layout.add(
        table_panel(
            title("更正（重述）", "Corrections as restatements"),
            restatements(family),
            description=(
                "原值、更正量与更正后数值；原记录从不修改 · The original figure, the change and "
                "the figure that now stands; the original row is never edited"
            ),
        ),
        w=24,
        h=8,
    )
    return dashboard

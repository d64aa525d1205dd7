"""The panels every family dashboard has (housing, education, heating, parking, drainage).

For each metric the family's events produce (``schemas.catalogue.EVENT_METRICS``): the total
in the time range, the cumulative trend per subdistrict and the total per subdistrict, read
from ``metric_daily``; then the latest events with their source references and the
corrections shown as restatements (original → corrected figure, reason, approver), read
from the ``events`` ledger. One variable: subdistrict (several, or all).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.panels import (
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
    literal,
    metric_display_cte,
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


def quantities(column: str) -> str:
    """A ledger row's measures as a reader writes them: "新增供热面积 … 8.64 万㎡"."""
    return f"""(SELECT string_agg(md.label || ': ' || {amount("kv.value::numeric / md.scale")}
    || ' ' || md.unit, '；' ORDER BY kv.key)
   FROM jsonb_each_text({column}) kv JOIN metric_display md ON md.metric = kv.key)"""


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
  {amount("(o.measures ->> md.metric)::numeric / md.scale")} || ' ' || md.unit AS "原值 · Original",
  {amount("(c.payload ->> 'delta')::numeric / md.scale")} || ' ' || md.unit AS "更正 · Change",
  {amount("((o.measures ->> md.metric)::numeric + (c.payload ->> 'delta')::numeric) / md.scale")}
    || ' ' || md.unit AS "更正后 · Restated",
  c.payload ->> 'reason' AS "原因 · Reason",
  c.payload ->> 'approved_by' AS "批准人 · Approved by",
  o.source_ref AS "原台账编号 · Original source ref",
  c.corrects::text AS "被更正事件 · Corrected event"
FROM events c
JOIN events o ON o.event_id = c.corrects
JOIN metric_display md ON md.metric = c.payload ->> 'metric'
WHERE c.event_type = {literal(f"{family}.correction")} AND c.district IN ($subdistrict)
  AND $__timeFilter(c.occurred_at)
ORDER BY c.occurred_at DESC, c.event_id"""


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
    layout.row(title("总量", "Totals in the time range"))
    width = max(4, 24 // len(metrics))
    for display in metrics:
        layout.add(
            stat_panel(display.title, total_stat(display), unit=display.grafana_unit, decimals=2),
            w=width,
            h=4,
        )
    for display in metrics:
        layout.row(title(f"{display.label_zh}（按街道）", f"{display.label_en} by subdistrict"))
        layout.add(
            timeseries_panel(
                title(f"累计{display.label_zh}", f"Cumulative {display.label_en.lower()}"),
                cumulative_series(display),
                unit=display.grafana_unit,
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
            ),
            w=8,
            h=8,
        )
    layout.row(title("台账", "Ledger"))
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

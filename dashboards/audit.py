"""审计 · Audit: from a pledge to the ledger rows behind its figure, and the hash chain.

One variable, ``pledge`` (the overview's table links here with it set). For that pledge, at
the end of the time range: its definition in every version; its progress figure next to
the same figure added up again from the ledger rows (they must agree); every ledger row
behind it with its source reference and Kafka coordinates; the corrections with their
reason and approver. Then the ledger's hash chain: each row's ``prev_hash`` must be the
``hash`` of the row before it in the same topic-partition (the first row's: 32 zero
bytes), and the last row's ``hash`` the head stored in ``consumer_offsets``. This checks
the links, not the hashes themselves (recomputing them needs the canonical form of
``streams/chain.py``); an edited row whose hash was recomputed breaks the next link.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import common as cm

from dashboards.domain import RESTATED, quantities
from dashboards.panels import (
    Layout,
    new_dashboard,
    query_variable,
    stat_panel,
    table_panel,
    title,
    value_mappings,
)
from dashboards.sqlparts import (
    TO_DAY,
    amount,
    district_label,
    event_label,
    latest_pledges,
    literal,
    local_day,
    metric_display_cte,
    original_of,
    with_unit,
)

UID = "citystream-audit"

PLEDGE_SQL = f"""SELECT year || ' · ' || title_zh || ' · ' || title_en AS __text, id AS __value
FROM {latest_pledges()} p
WHERE measurable
ORDER BY year DESC, id"""

# The pledge chosen, quoted as an SQL string whatever it holds.
PLEDGE = "${pledge:sqlstring}"

# How a pledge's figure is measured (pledges.progress_from), as the definition table says it.
PROGRESS_FROM = {
    "metric": "指标累计 · Sum of the metric",
    "items": "逐项完成 · Named items done",
    "level": "最新上报水平 · Latest reported level",
}


def progress_from_label(column: str) -> str:
    cases = " ".join(
        f"WHEN {literal(code)} THEN {literal(label)}" for code, label in PROGRESS_FROM.items()
    )
    return f"CASE {column} {cases} ELSE {column} END"


# The ledger rows that make up the pledge's figure: events (and corrections) carrying its
# metric, in its subdistrict, on local days from its start to the end of the time range.
BEHIND_CTE = f"""l AS (SELECT * FROM {latest_pledges()} x WHERE x.id IN ({PLEDGE})),
behind AS (
  SELECT e.*
  FROM events e, l
  WHERE e.measures ? l.metric
    AND (l.district IS NULL OR e.district = l.district)
    AND {local_day("e.occurred_at")} BETWEEN l.start AND {TO_DAY}
)"""

DEFINITION = f"""WITH {metric_display_cte()}
SELECT p.version AS "版本 · Version",
  p.loaded_at AS "载入时间 · Loaded",
  {with_unit(amount("p.target / md.scale"), "md.unit")} AS "目标 · Target",
  p.start AS "开始 · Start",
  p.deadline AS "期限 · Deadline",
  p.department AS "部门 · Department",
  {district_label("coalesce(p.district, 'zone')")} AS "街道 · Subdistrict",
  md.label AS "指标 · Measure",
  {progress_from_label("p.progress_from")} AS "计量方式 · Measured from",
  array_to_string(p.items, '、') AS "事项 · Items",
  p.source_file AS "来源文件 · Source file",
  p.source_quote AS "原文 · Source quote",
  p.content_hash AS "内容哈希 · Content hash"
FROM pledges p
JOIN metric_display md ON md.metric = p.metric
WHERE p.id IN ({PLEDGE})
ORDER BY p.version DESC"""

# The same figure twice: as pledge_progress_at computes it, and added up again here from the
# ledger rows (a metric pledge: their quantities, corrections included; an items pledge: the
# named items whose events, net of corrections, add up to more than nothing; a level pledge:
# the latest report — measured last, then reported last, then the greater event id — plus
# its corrections' deltas, 0 before the first report).
RECONCILE = f"""WITH {metric_display_cte()},
{BEHIND_CTE},
items AS (
  SELECT b.project
  FROM behind b, l
  WHERE b.corrects IS NULL AND b.event_type = ANY (l.event_types) AND b.project = ANY (l.items)
  GROUP BY b.project, l.metric
  HAVING sum((b.measures ->> l.metric)::numeric) + coalesce((
    SELECT sum((c.measures ->> l.metric)::numeric)
    FROM behind c
    WHERE c.corrects IN (
      SELECT o.event_id FROM behind o WHERE o.project = b.project AND o.corrects IS NULL
    )
  ), 0) > 0
),
latest_level AS (
  SELECT (b.measures ->> l.metric)::numeric + coalesce((
    SELECT sum((c.measures ->> l.metric)::numeric) FROM behind c WHERE c.corrects = b.event_id
  ), 0) AS level
  FROM behind b, l
  WHERE b.corrects IS NULL AND b.event_type = ANY (l.event_types)
  ORDER BY b.occurred_at DESC, b.reported_at DESC, b.event_id DESC
  LIMIT 1
)
SELECT
  p.actual_to_date / md.scale AS "进度数值 · Progress figure",
  CASE l.progress_from
    WHEN 'metric' THEN (SELECT coalesce(sum((b.measures ->> l.metric)::numeric), 0) FROM behind b)
    WHEN 'level' THEN coalesce((SELECT level FROM latest_level), 0)
    ELSE (SELECT count(*) FROM items)
  END / md.scale AS "账本合计 · Added up from the ledger"
FROM pledge_progress_at({TO_DAY}) p
JOIN l ON l.id = p.pledge_id
JOIN metric_display md ON md.metric = p.metric"""

EVENTS = f"""WITH {metric_display_cte()},
{BEHIND_CTE}
SELECT b.occurred_at AS "发生时间 · Occurred",
  {event_label("b.event_type")} AS "事件 · Event",
  {district_label("b.district")} AS "街道 · Subdistrict",
  b.project AS "项目 · Project",
  {quantities("b.measures")} AS "数量 · Quantity",
  b.source_ref AS "台账编号 · Source ref",
  b.corrects::text AS "更正的事件 · Corrects",
  b.reported_at AS "上报时间 · Reported",
  b.ingested_at AS "入账时间 · Ingested",
  b.topic || CASE WHEN b.incarnation > 1 THEN '#' || b.incarnation ELSE '' END
    || '[' || b.partition || ']@' || b.kafka_offset AS "Kafka 位置 · Kafka position",
  b.event_id::text AS "事件编号 · Event id",
  left(encode(b.hash, 'hex'), 16) AS "哈希 · Hash (first 16)"
FROM behind b
ORDER BY b.occurred_at, b.event_id"""

CORRECTIONS = f"""WITH {metric_display_cte()},
{BEHIND_CTE}
SELECT c.occurred_at AS "更正时间 · Corrected at",
  o.project AS "项目 · Project",
  {RESTATED},
  c.payload ->> 'reason' AS "原因 · Reason",
  c.payload ->> 'approved_by' AS "批准人 · Approved by",
  c.reported_at AS "上报时间 · Reported",
  o.source_ref AS "原台账编号 · Original source ref",
  c.corrects::text AS "被更正事件 · Corrected event",
  c.event_id::text AS "更正事件 · Correction event"
FROM behind c
{original_of("c", "o")}
JOIN metric_display md ON md.metric = c.payload ->> 'metric'
ORDER BY c.occurred_at, c.event_id"""

# Each ledger row beside the row before it in its topic-incarnation-partition (a topic
# deleted and created again starts new chains), and the stored head.
CHAIN_CTE = """chain AS (
  SELECT e.topic, e.incarnation, e.partition, e.kafka_offset, e.prev_hash, e.hash,
    lag(e.hash) OVER (PARTITION BY e.topic, e.incarnation, e.partition
                      ORDER BY e.kafka_offset) AS previous,
    row_number() OVER (PARTITION BY e.topic, e.incarnation, e.partition
                       ORDER BY e.kafka_offset DESC) AS from_end
  FROM events e
),
links AS (
  SELECT c.topic, c.incarnation, c.partition, c.hash, c.from_end,
    c.prev_hash IS DISTINCT FROM coalesce(c.previous, decode(repeat('00', 32), 'hex')) AS broken,
    c.from_end = 1 AND c.hash IS DISTINCT FROM o.last_hash AS bad_head
  FROM chain c
  LEFT JOIN consumer_offsets o USING (topic, incarnation, partition)
)"""
CHAIN_STATUS = f"""WITH {CHAIN_CTE}
SELECT count(*) FILTER (WHERE broken) + count(*) FILTER (WHERE bad_head)
  AS "断链 · Broken links"
FROM links"""
CHAIN_BY_PARTITION = f"""WITH {CHAIN_CTE}
SELECT topic AS "主题 · Topic",
  incarnation AS "第几次 · Incarnation",
  partition AS "分区 · Partition",
  count(*) AS "台账行数 · Ledger rows",
  count(*) FILTER (WHERE broken) AS "断链 · Broken links",
  CASE WHEN bool_or(bad_head) THEN '否 · no' ELSE '是 · yes' END AS "链头一致 · Head matches",
  left(string_agg(encode(hash, 'hex'), '') FILTER (WHERE from_end = 1), 16)
    AS "链头 · Head (first 16)"
FROM links
GROUP BY topic, incarnation, partition
ORDER BY 1, 2, 3"""


def build() -> db.Dashboard:
    dashboard = new_dashboard(
        UID,
        "审计 · Audit",
        description=(
            "从承诺追溯到账本中的每一条事件、更正及哈希链 · From a pledge to every ledger row "
            "behind it, its corrections, and the hash chain"
        ),
        time_from="now/y",
    ).with_variable(query_variable("pledge", "承诺 · Pledge", PLEDGE_SQL))
    layout = Layout(dashboard)
    layout.row(title("承诺", "Pledge"))
    layout.add(
        table_panel(title("承诺定义（全部版本）", "Definition, every version"), DEFINITION),
        w=24,
        h=6,
    )
    layout.add(
        stat_panel(
            title("账本核对", "Ledger check"),
            RECONCILE,
            text_mode=cm.BigValueTextMode.VALUE_AND_NAME,
            decimals=2,
            description=(
                "进度数值与账本逐条相加的结果应当相同 · The progress figure and the same figure "
                "added up from the ledger rows must agree"
            ),
        ),
        w=8,
        h=5,
    )
    layout.add(
        stat_panel(
            title("哈希链", "Hash chain"),
            CHAIN_STATUS,
            color_mode=cm.BigValueColorMode.BACKGROUND,
            steps=((None, "green"), (1, "red")),
            mappings=value_mappings({"0": ("完好 · Intact", "green")}),
            description=(
                "整个账本：断开的链接数与不一致的链头数 · Whole ledger: broken links and heads"
            ),
        ),
        w=6,
        h=5,
    )
    layout.add(
        table_panel(title("哈希链（按分区）", "Hash chain per partition"), CHAIN_BY_PARTITION),
        w=10,
        h=5,
    )
    layout.row(title("账本", "Ledger"))
    layout.add(
        table_panel(title("事件明细", "Ledger rows behind the figure"), EVENTS),
        w=24,
        h=10,
    )
    layout.add(
        table_panel(title("更正记录", "Corrections: reason and approver"), CORRECTIONS),
        w=24,
        h=7,
    )
    return dashboard

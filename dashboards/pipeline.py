"""数据管道 · Pipeline health: what the workers took in, accepted and refused, and how fresh.

From the database, the source of truth for what was consumed: ``events`` (accepted, by
``ingested_at``), ``deadletters`` (refused, by ``received_at``, with the reason),
``consumer_offsets`` (each partition's next offset) and ``topic_incarnations`` (topics
deleted and created again). "In" counts accepted plus refused
records; identical re-sends change nothing in the database and are counted only by the
workers' Prometheus counter ``citystream_events_duplicate_total`` (no Prometheus data
source is provisioned, so no panel reads it).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.panels import (
    Layout,
    bargauge_panel,
    new_dashboard,
    stat_panel,
    table_panel,
    timeseries_panel,
    title,
)

UID = "citystream-pipeline"
# Data older than this is stale: the alert rule "数据停更 · Data stale" fires, and the
# freshness panel turns red. Departments report in working hours; two hours without a
# single new ledger row during a working day means a producer or the workers stopped.
STALE_AFTER_MINUTES = 120

FRESHNESS = """SELECT extract(epoch FROM now() - max(ingested_at))
  AS "距最新入账 · Since newest ingested"
FROM events"""
ACCEPTED = """SELECT count(*) AS "已接受 · Accepted"
FROM events
WHERE $__timeFilter(ingested_at)"""
REJECTED = """SELECT count(*) AS "已拒收 · Rejected"
FROM deadletters
WHERE $__timeFilter(received_at)"""
UNPROCESSABLE = """SELECT count(*) AS "无法存储 · Unprocessable"
FROM deadletters
WHERE reason = 'unprocessable' AND $__timeFilter(received_at)"""
# A topic deleted and created again starts a new incarnation (streams.db.cursors).
RESETS = """SELECT count(*) AS "主题重建 · Topic resets"
FROM topic_incarnations
WHERE incarnation > 1 AND $__timeFilter(detected_at)"""
RESET_LOG = """SELECT detected_at AS "发现时间 · Detected",
  topic AS "主题 · Topic",
  incarnation AS "第几次 · Incarnation",
  topic_id AS "主题 ID · Topic id",
  reason AS "原因 · Reason"
FROM topic_incarnations
WHERE incarnation > 1
ORDER BY detected_at DESC
LIMIT 50"""
RECEIVED = """SELECT
  (SELECT count(*) FROM events WHERE $__timeFilter(ingested_at))
  + (SELECT count(*) FROM deadletters WHERE $__timeFilter(received_at)) AS "接收 · Records in"
"""
# Buckets of $__interval, computed in SQL rather than with $__timeGroup: the data source runs
# in TimescaleDB mode in production, where $__timeGroup becomes time_bucket(), which the
# plain PostgreSQL of our tests does not have; date_bin is in both.


def bucket(column: str) -> str:
    return (
        f"date_bin(make_interval(secs => $__interval_ms / 1000.0), {column}, "
        "TIMESTAMPTZ '2000-01-01 00:00:00+00')"
    )


THROUGHPUT = f"""SELECT time, metric, value FROM (
  SELECT {bucket("ingested_at")} AS time, '已接受 · Accepted' AS metric,
    count(*) AS value
  FROM events
  WHERE $__timeFilter(ingested_at)
  GROUP BY 1
  UNION ALL
  SELECT {bucket("received_at")}, '已拒收 · Rejected', count(*)
  FROM deadletters
  WHERE $__timeFilter(received_at)
  GROUP BY 1
) buckets
ORDER BY time, metric"""
BY_REASON = """SELECT reason AS "原因 · Reason", count(*) AS "条数 · Records"
FROM deadletters
WHERE $__timeFilter(received_at)
GROUP BY reason
ORDER BY 2 DESC, 1"""
LATEST_DEAD_LETTERS = """SELECT received_at AS "接收时间 · Received",
  topic AS "主题 · Topic",
  partition AS "分区 · Partition",
  kafka_offset AS "偏移 · Offset",
  reason AS "原因 · Reason",
  field AS "字段 · Field",
  value AS "取值 · Value",
  rule AS "规则 · Rule",
  message AS "说明 · Message"
FROM deadletters
WHERE $__timeFilter(received_at)
ORDER BY received_at DESC, id DESC
LIMIT 200"""
PARTITIONS = """SELECT o.topic AS "主题 · Topic",
  o.incarnation AS "第几次 · Incarnation",
  o.partition AS "分区 · Partition",
  o.next_offset AS "下一偏移 · Next offset",
  o.updated_at AS "更新时间 · Updated",
  coalesce(e.ledger_rows, 0) AS "台账行数 · Ledger rows",
  e.newest AS "最新入账 · Newest ingested",
  coalesce(d.letters, 0) AS "死信 · Dead letters"
FROM consumer_offsets o
LEFT JOIN (
  SELECT topic, incarnation, partition, count(*) AS ledger_rows, max(ingested_at) AS newest
  FROM events GROUP BY topic, incarnation, partition
) e USING (topic, incarnation, partition)
LEFT JOIN (
  SELECT topic, incarnation, partition, count(*) AS letters
  FROM deadletters GROUP BY topic, incarnation, partition
) d USING (topic, incarnation, partition)
ORDER BY 1, 2, 3"""


def build() -> db.Dashboard:
    dashboard = new_dashboard(
        UID,
        "数据管道 · Pipeline health",
        description=(
            "接收、接受与拒收的记录、死信与数据新鲜度 · Records in, accepted and refused, "
            "dead letters and freshness, from the database"
        ),
        time_from="now-24h",
        refresh="1m",
    )
    layout = Layout(dashboard)
    layout.row(title("概况", "At a glance"))
    layout.add(
        stat_panel(
            title("数据新鲜度", "Freshness"),
            FRESHNESS,
            unit="s",
            description="当前时间减去最新入账时间 · now − the newest ingested_at",
            steps=((None, "green"), (3600, "orange"), (STALE_AFTER_MINUTES * 60, "red")),
        ),
        w=6,
        h=4,
    )
    layout.add(stat_panel(title("接收", "Records in"), RECEIVED, decimals=0), w=6, h=4)
    layout.add(
        stat_panel(title("已接受", "Accepted"), ACCEPTED, decimals=0, steps=((None, "green"),)),
        w=6,
        h=4,
    )
    layout.add(
        stat_panel(
            title("已拒收", "Rejected (dead letters)"),
            REJECTED,
            decimals=0,
            steps=((None, "green"), (1, "orange")),
        ),
        w=6,
        h=4,
    )
    layout.add(
        stat_panel(
            title("无法存储", "Unprocessable records"),
            UNPROCESSABLE,
            decimals=0,
            description=(
                "通过校验但数据库拒绝存储的记录（已转入死信，同批其他记录已存储）· Records "
                "that passed every rule but could not be stored (dead-lettered; the rest of "
                "their batch was stored)"
            ),
            steps=((None, "green"), (1, "red")),
        ),
        w=12,
        h=4,
    )
    layout.add(
        stat_panel(
            title("主题重建", "Topic resets"),
            RESETS,
            decimals=0,
            description=(
                "主题被删除后重建，worker 从新主题开头读取 · A topic was deleted and created "
                "again; the workers read the new one from its start"
            ),
            steps=((None, "green"), (1, "red")),
        ),
        w=12,
        h=4,
    )
    layout.row(title("流量", "Throughput"))
    throughput = timeseries_panel(
        title("每段时间的接受与拒收", "Accepted and rejected per interval"),
        THROUGHPUT,
        bars=True,
    ).interval("1m")
    layout.add(throughput, w=16, h=8)
    layout.add(bargauge_panel(title("拒收原因", "Rejected by reason"), BY_REASON), w=8, h=8)
    layout.row(title("明细", "Details"))
    layout.add(
        table_panel(
            title("最新死信", "Latest dead letters"),
            LATEST_DEAD_LETTERS,
            description=(
                "每条被拒收的记录、原因与违反的规则 · Every refused record, why, and the rule"
            ),
        ),
        w=24,
        h=9,
    )
    layout.add(
        table_panel(
            title("各分区进度", "Progress per partition"),
            PARTITIONS,
            description=(
                "数据库记录的下一偏移（而非 Kafka 的提交）决定从哪里继续 · The next offset "
                "stored in PostgreSQL, not Kafka's commit, decides where a worker resumes"
            ),
        ),
        w=24,
        h=9,
    )
    layout.add(
        table_panel(
            title("主题重建记录", "Topic resets"),
            RESET_LOG,
            description=(
                "每次重建：旧主题的台账行保留，新主题从偏移 0 起计入，已入账的事件不重复计数 · "
                "Each reset: the old topic's ledger rows stay, the new one is counted from "
                "offset 0, events already in the ledger are not counted again"
            ),
        ),
        w=24,
        h=6,
    )
    return dashboard

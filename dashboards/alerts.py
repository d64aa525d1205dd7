"""Alert rules: a pledge at risk or behind, a dead-letter spike, a record that could not be
stored, a topic deleted and created again, data stale.

Each rule is one SQL query (refId ``A``, table format: exactly one numeric column, the other
columns become labels, one alert instance per row) and a threshold expression on it
(refId ``B``, the condition). :func:`rules` builds them with grafana-foundation-sdk in the
form of Grafana's alerting provisioning HTTP API (what ``citystream dashboards push``
sends); :func:`provisioning_file` turns them into Grafana's alerting file-provisioning
format (``deploy/grafana/provisioning/alerting/citystream.yaml``). Alert queries take no
dashboard variables; ``$__timeTo()`` is the evaluation time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from grafana_foundation_sdk.builders import alerting as ab
from grafana_foundation_sdk.builders import expr as eb
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as am
from grafana_foundation_sdk.models import dashboard as dm

from dashboards import pipeline, pledges
from dashboards.panels import FOLDER_TITLE, FOLDER_UID
from dashboards.query import DATASOURCE_UID, SQL
from dashboards.sqlparts import TO_DAY, latest_pledges, literal

ORG_ID = 1
EXPRESSION_UID = "__expr__"
# More dead letters than this within DEADLETTER_WINDOW_S is a spike: a department's system
# or a whole ledger import is sending records the contract refuses.
DEADLETTER_SPIKE = 20
DEADLETTER_WINDOW_S = 15 * 60

SEVERITY = {"at_risk": 1, "behind": 2}

# pledge_progress_at judges every kind of pledge the way `citystream pledges status` does —
# a summed metric from metric_daily, named items and levels (rates, never in metric_daily)
# from the events ledger (migrations 0004 and 0011) — so one rule covers them all, and no
# rule reads metric_daily itself.

PLEDGE_AT_RISK_SQL = f"""SELECT p.pledge_id AS pledge,
  p.title_zh AS title,
  l.department,
  CASE p.status WHEN 'behind' THEN {literal(SEVERITY["behind"])}
    WHEN 'at_risk' THEN {literal(SEVERITY["at_risk"])} ELSE 0 END AS severity
FROM pledge_progress_at({TO_DAY}) p
JOIN {latest_pledges()} l ON l.id = p.pledge_id AND l.version = p.version
WHERE {TO_DAY} BETWEEN p.start AND p.deadline AND p.status <> 'not_measurable'"""

DEADLETTER_SQL = """SELECT topic, count(*) AS dead_letters
FROM deadletters
WHERE $__timeFilter(received_at)
GROUP BY topic"""

UNSTORABLE_SQL = """SELECT topic, count(*) AS unprocessable
FROM deadletters
WHERE reason = 'unprocessable' AND $__timeFilter(received_at)
GROUP BY topic"""

RESET_SQL = """SELECT topic, count(*) AS resets
FROM topic_incarnations
WHERE incarnation > 1 AND $__timeFilter(detected_at)
GROUP BY topic"""

# No row when the ledger is empty (a new installation is not "stale").
STALE_SQL = """SELECT extract(epoch FROM $__timeTo()::timestamptz - max(ingested_at)) / 60
  AS minutes_since_newest_event
FROM events
HAVING count(*) > 0"""


@dataclass(frozen=True)
class RuleSpec:
    uid: str
    title: str
    group: str
    sql: str
    window_s: int
    comparison: Literal["gt"]
    threshold: float
    pending: str
    summary: str
    description: str
    severity: Literal["warning", "critical"]
    dashboard_uid: str
    panel_title: str


@dataclass(frozen=True)
class Group:
    name: str
    interval: str


# Group names are identifiers (they appear in API paths); the rules' titles are bilingual.
GROUPS = (Group("citystream-pledges", "30m"), Group("citystream-pipeline", "1m"))

SPECS: tuple[RuleSpec, ...] = (
    RuleSpec(
        uid="citystream-pledge-at-risk",
        title="承诺有风险或滞后 · Pledge at risk or behind",
        group=GROUPS[0].name,
        sql=PLEDGE_AT_RISK_SQL,
        window_s=86_400,
        comparison="gt",
        threshold=0,
        # Late reports catch up within hours; a pledge behind for a whole hour is behind.
        pending="1h",
        summary="{{ $labels.title }}（{{ $labels.pledge }}）有风险或滞后 · is at risk or behind",
        description=(
            "严重程度 · Severity {{ $values.A }}（1 有风险 · at risk，2 滞后 · behind）。"
            "部门 · Department: {{ $labels.department }}"
        ),
        severity="warning",
        dashboard_uid=pledges.UID,
        panel_title="承诺一览 · All pledges",
    ),
    RuleSpec(
        uid="citystream-deadletter-spike",
        title="死信激增 · Dead-letter spike",
        group=GROUPS[1].name,
        sql=DEADLETTER_SQL,
        window_s=DEADLETTER_WINDOW_S,
        comparison="gt",
        threshold=DEADLETTER_SPIKE,
        pending="0s",
        summary=(
            f"{{{{ $labels.topic }}}} 在 {DEADLETTER_WINDOW_S // 60} 分钟内有 {{{{ $values.A }}}} "
            f"条死信 · dead letters in {DEADLETTER_WINDOW_S // 60} minutes"
        ),
        description="见数据管道仪表板的“最新死信” · See “Latest dead letters” on Pipeline health",
        severity="warning",
        dashboard_uid=pipeline.UID,
        panel_title="最新死信 · Latest dead letters",
    ),
    RuleSpec(
        uid="citystream-unprocessable",
        title="记录无法存储 · Record could not be stored",
        group=GROUPS[1].name,
        sql=UNSTORABLE_SQL,
        window_s=3600,
        comparison="gt",
        threshold=0,
        pending="0s",
        summary=(
            "{{ $labels.topic }} 有 {{ $values.A }} 条记录通过校验但数据库拒绝存储 · records "
            "passed every rule but could not be stored"
        ),
        description=(
            "已转入死信，同批其他记录已存储；见“最新死信”的说明，修正后重新发送 · "
            "Dead-lettered, the rest of the batch stored; read the message in “Latest dead "
            "letters”, fix and send again"
        ),
        severity="warning",
        dashboard_uid=pipeline.UID,
        panel_title="无法存储 · Unprocessable records",
    ),
    RuleSpec(
        uid="citystream-topic-reset",
        title="主题被重建 · Topic deleted and created again",
        group=GROUPS[1].name,
        sql=RESET_SQL,
        window_s=3600,
        comparison="gt",
        threshold=0,
        pending="0s",
        summary="{{ $labels.topic }} 被删除后重建 · was deleted and created again",
        description=(
            "worker 已从新主题开头读取；旧主题中尚未入账的记录已随主题删除。核对谁删除了主题 · "
            "The workers read the new topic from its start; records of the old topic not yet "
            "stored were deleted with it. Find out who deleted the topic"
        ),
        severity="critical",
        dashboard_uid=pipeline.UID,
        panel_title="主题重建 · Topic resets",
    ),
    RuleSpec(
        uid="citystream-data-stale",
        title="数据停更 · Data stale",
        group=GROUPS[1].name,
        sql=STALE_SQL,
        window_s=600,
        comparison="gt",
        threshold=pipeline.STALE_AFTER_MINUTES,
        pending="10m",
        summary=(
            f"{{{{ $values.A }}}} 分钟无新入账（阈值 {pipeline.STALE_AFTER_MINUTES}）"
            " · minutes without a new ledger row"
        ),
        description="检查生产者与 worker · Check the producers and the workers",
        severity="critical",
        dashboard_uid=pipeline.UID,
        panel_title="数据新鲜度 · Freshness",
    ),
)


def _panel_id(dashboard_uid: str, panel_title: str) -> int:
    module = {pledges.UID: pledges, pipeline.UID: pipeline}[dashboard_uid]
    board = json.loads(json.dumps(module.build().build(), cls=JSONEncoder))
    for panel in board["panels"]:
        if panel.get("title") == panel_title:
            return int(panel["id"])
    raise LookupError(f"{dashboard_uid} has no panel titled {panel_title!r}")


def _rule(spec: RuleSpec) -> ab.Rule:
    query = (
        ab.Query("A")
        .datasource_uid(DATASOURCE_UID)
        .relative_time_range(am.RelativeTimeRange(from_val=spec.window_s, to=0))
        .model(SQL(spec.sql, ref_id="A", format="table"))
    )
    condition = (
        ab.Query("B")
        .datasource_uid(EXPRESSION_UID)
        .model(
            eb.TypeThreshold()
            .ref_id("B")
            .datasource(dm.DataSourceRef(type_val=EXPRESSION_UID, uid=EXPRESSION_UID))
            .expression("A")
            .conditions(
                [
                    eb.ExprTypeThresholdConditions().evaluator(
                        eb.ExprTypeThresholdConditionsEvaluator()
                        .type(spec.comparison)
                        .params([spec.threshold])
                    )
                ]
            )
        )
    )
    return (
        ab.Rule(spec.title)
        .uid(spec.uid)
        .rule_group(spec.group)
        .folder_uid(FOLDER_UID)
        .org_id(ORG_ID)
        .with_query(query)
        .with_query(condition)
        .condition("B")
        .for_val(spec.pending)
        # No row means nothing to report (no active pledge, no dead letter, empty ledger);
        # a query that fails is an error to look at, not an alert about the data.
        .no_data_state("OK")
        .exec_err_state("Error")
        .labels({"severity": spec.severity, "service": "citystream"})
        .annotations(
            {
                "summary": spec.summary,
                "description": spec.description,
                "__dashboardUid__": spec.dashboard_uid,
                "__panelId__": str(_panel_id(spec.dashboard_uid, spec.panel_title)),
            }
        )
        .is_paused(False)
    )


def rules() -> list[dict[str, Any]]:
    """Every rule as the provisioning API takes it (``POST /api/v1/provisioning/alert-rules``)."""
    built = [_rule(spec).build() for spec in SPECS]
    loaded: list[dict[str, Any]] = json.loads(json.dumps(built, cls=JSONEncoder))
    return loaded


def group_interval_s(group: Group) -> int:
    unit = {"s": 1, "m": 60, "h": 3600}[group.interval[-1]]
    return int(group.interval[:-1]) * unit


def provisioning_file() -> dict[str, Any]:
    """The same rules in Grafana's alerting file-provisioning format (``apiVersion: 1``)."""
    by_group: dict[str, list[dict[str, Any]]] = {group.name: [] for group in GROUPS}
    for rule in rules():
        annotations = dict(rule["annotations"])
        dashboard_uid = annotations.pop("__dashboardUid__")
        panel_id = int(annotations.pop("__panelId__"))
        by_group[rule["ruleGroup"]].append(
            {
                "uid": rule["uid"],
                "title": rule["title"],
                "condition": rule["condition"],
                "data": rule["data"],
                "dashboardUid": dashboard_uid,
                "panelId": panel_id,
                "noDataState": rule["noDataState"],
                "execErrState": rule["execErrState"],
                "for": rule["for"],
                "annotations": annotations,
                "labels": rule["labels"],
                "isPaused": rule["isPaused"],
            }
        )
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": ORG_ID,
                "name": group.name,
                # The dashboards' folder, by title: the file format names folders by title.
                "folder": FOLDER_TITLE,
                "interval": group.interval,
                "rules": by_group[group.name],
            }
            for group in GROUPS
        ],
    }

"""SQL fragments the dashboards share, built with psycopg.sql from the catalogue.

Labels and display units come from ``seeds/`` (``metrics.yaml``, ``departments.yaml``) and
``schemas/districts.py``, so a panel shows "供热面积 · Heating area connected" in 万㎡ while
the tables keep codes and base units; how many decimals a metric shows and whether it is a
level (a rate reported from time to time, never in ``metric_daily``) come from the families'
declarations (``schemas/<family>.py``); milestone names from ``schemas/milestones.py``.
Values enter the SQL as ``psycopg.sql.Literal``.

Dates: the rollups count Asia/Shanghai calendar days; the dashboard's time range is turned
into local days with :data:`FROM_DAY` and :data:`TO_DAY` (``$__timeFrom()`` and
``$__timeTo()`` are Grafana macros, expanded by the data source).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from psycopg import sql

from schemas.catalogue import EVENT_METRICS, LEVEL_METRICS, Catalogue
from schemas.districts import LABELS, District
from schemas.milestones import MILESTONES, ProjectMilestone
from schemas.seeds import load_catalogue
from schemas.topics import FAMILIES, FAMILY_OF

LOCAL_TZ = "Asia/Shanghai"
# The local calendar days at the two ends of the dashboard's time range.
FROM_DAY = "($__timeFrom()::timestamptz AT TIME ZONE 'Asia/Shanghai')::date"
TO_DAY = "($__timeTo()::timestamptz AT TIME ZONE 'Asia/Shanghai')::date"

EVENT_LABELS: dict[str, str] = {
    kind.name: kind.label for family in FAMILIES for kind in family.events
}

STATUS_LABELS: dict[str, tuple[str, str]] = {
    # status code (services/pledges/rules.py Status): label, colour
    "on_track": ("正常 · On track", "green"),
    "at_risk": ("有风险 · At risk", "orange"),
    "behind": ("滞后 · Behind", "red"),
    "overdue": ("已逾期 · Overdue", "dark-red"),
    "achieved": ("已完成 · Achieved", "blue"),
    "not_measurable": ("无法计量 · Not measurable", "text"),
}


def render(composed: sql.Composable) -> str:
    """The SQL text Grafana stores (no connection needed: only literals and identifiers)."""
    return composed.as_string(None)


def literal(value: object) -> str:
    """A value quoted as an SQL literal. Every value a panel's SQL names goes through here (or
    :func:`render`); f-strings only put the project's own SQL fragments together."""
    return render(sql.Literal(value))


def day_start(column: str) -> str:
    """A local calendar day as the timestamp Grafana plots (midnight, Asia/Shanghai)."""
    return f"({column}::timestamp AT TIME ZONE '{LOCAL_TZ}')"


def original_of(correction: str, alias: str) -> str:
    """``JOIN``s adding the ledger row ``alias`` that the correction ``correction`` corrects.

    By id through ``event_keys`` (the ledger's one index of ids, whose rows name each
    event's ingest time and Kafka position), then by that position: ``events`` keeps no
    index of its own on ``event_id`` (one more per ledger row written, and none survives
    TimescaleDB's compression of old chunks, where this way finds the row in one segment).
    """
    key = f"{alias}_key"
    return (
        f"JOIN event_keys {key} ON {key}.event_id = {correction}.corrects\n"
        f"JOIN events {alias} ON {alias}.ingested_at = {key}.ingested_at"
        f" AND {alias}.topic = {key}.topic AND {alias}.incarnation = {key}.incarnation"
        f" AND {alias}.partition = {key}.partition AND {alias}.kafka_offset = {key}.kafka_offset"
    )


def local_day(column: str) -> str:
    """The local (Asia/Shanghai) calendar day of a ``timestamptz``: the day rollups and pledges
    count an event on."""
    return f"({column} AT TIME ZONE '{LOCAL_TZ}')::date"


def local_date_text(column: str) -> str:
    """A ``timestamptz``'s local day as text (``2024-04-12``): Grafana would show a ``date``
    column as a UTC midnight turned into local time."""
    return f"to_char({column} AT TIME ZONE '{LOCAL_TZ}', 'YYYY-MM-DD')"


def amount(expression: str) -> str:
    """A number as a reader writes it: thousands separated, at most two decimals."""
    return (
        f"regexp_replace(to_char(round(({expression})::numeric, 2), "
        "'FM999,999,999,990.00'), '\\.?0+$', '')"
    )


@dataclass(frozen=True)
class Display:
    """How one metric is shown: bilingual label, display unit and scale (万㎡ = m² / 10⁴),
    decimals, and whether it is a level (its value is the latest report, not a sum)."""

    metric: str
    label_zh: str
    label_en: str
    unit: str
    scale: Decimal
    # Whole things (roads, schools, projects reaching a milestone) show no decimals.
    decimals: int = 2
    level: bool = False

    @property
    def title(self) -> str:
        return f"{self.label_zh} · {self.label_en}"

    @property
    def grafana_unit(self) -> str:
        # Grafana's custom unit "suffix:<text>" prints the text after the value.
        return "percent" if self.unit == "%" else f"suffix: {self.unit}"

    def scaled(self, expression: str) -> str:
        return expression if self.scale == 1 else f"({expression}) / {self.scale}"


@cache
def catalogue() -> Catalogue:
    return load_catalogue()


# Each declared metric's spec (schemas/fields.py): its decimal places, whether it is a level.
SPECS = {spec.name: spec for family in FAMILIES for spec in family.metrics}


def _decimals(metric: str, scale: Decimal) -> int:
    spec = SPECS.get(metric)
    return 0 if spec is not None and spec.decimal_places == 0 and scale == 1 else 2


def displays() -> dict[str, Display]:
    return {
        m.name: Display(
            m.name,
            m.label_zh,
            m.label_en,
            m.display_unit,
            m.display_scale,
            decimals=_decimals(m.name, m.display_scale),
            level=m.name in LEVEL_METRICS,
        )
        for m in catalogue().metrics
    }


def family_metrics(family: str) -> list[Display]:
    """The metrics the family's events produce, in the order the event types declare them."""
    names = dict.fromkeys(
        metric
        for event_type, metrics in EVENT_METRICS.items()
        if event_type.startswith(f"{family}.")
        for metric in metrics
    )
    table = displays()
    return [table[name] for name in names]


def family_event_types(family: str) -> list[str]:
    return [t for t in EVENT_METRICS if t.startswith(f"{family}.")]


def metric_event_types(metric: str) -> list[str]:
    """The event types whose events carry ``metric`` (corrections aside)."""
    return [t for t, metrics in EVENT_METRICS.items() if metric in metrics]


def milestone_event_types(family: str) -> list[str]:
    """The family's event types that record a project reaching a milestone."""
    return [
        kind.name for kind in FAMILY_OF[family].events if issubclass(kind.model, ProjectMilestone)
    ]


def milestone_label(column: str) -> str:
    """``CASE`` turning a milestone code into "开工 · started" (schemas/milestones.py)."""
    cases = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(
            sql.Literal(code), sql.Literal(f"{zh} · {code.replace('_', ' ')}")
        )
        for code, (zh, _) in MILESTONES.items()
    )
    return render(sql.SQL("CASE {} {} ELSE {} END").format(sql.SQL(column), cases, sql.SQL(column)))


def with_unit(number: str, unit: str) -> str:
    """A formatted number (text) and its unit, as Chinese writes them: "75.9 万㎡" but "93%"."""
    return f"{number} || CASE WHEN {unit} = '%' THEN '%' ELSE ' ' || {unit} END"


def gap_unit(unit: str) -> str:
    """The unit a gap is written in: a gap between two percentages is in percentage points."""
    return f"CASE WHEN {unit} = '%' THEN '个百分点' ELSE {unit} END"


def district_label(column: str) -> str:
    """``CASE`` turning a district code into "石佛街道 · Shifo Subdistrict"."""
    cases = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(d.value), sql.Literal(f"{zh} · {en}"))
        for d, (zh, en) in LABELS.items()
    )
    return render(sql.SQL("CASE {} {} ELSE {} END").format(sql.SQL(column), cases, sql.SQL(column)))


def districts_values() -> str:
    """``(VALUES (code, label, position), …)`` of the five subdistricts and the zone."""
    rows = sql.SQL(", ").join(
        sql.SQL("({}, {}, {})").format(
            sql.Literal(d.value), sql.Literal(f"{zh} · {en}"), sql.Literal(position)
        )
        for position, (d, (zh, en)) in enumerate(LABELS.items())
    )
    return render(sql.SQL("(VALUES {})").format(rows))


SUBDISTRICT_CODES: tuple[str, ...] = tuple(d.value for d in District)


def departments_values() -> str:
    """``(VALUES (code, label), …)`` of every department of the catalogue."""
    rows = sql.SQL(", ").join(
        sql.SQL("({}, {})").format(sql.Literal(d.code), sql.Literal(f"{d.name_zh} · {d.name_en}"))
        for d in catalogue().departments
    )
    return render(sql.SQL("(VALUES {})").format(rows))


def metric_display_cte() -> str:
    """``metric_display(metric, label, unit, scale) AS (VALUES …)`` for every metric."""
    rows = sql.SQL(", ").join(
        sql.SQL("({}, {}, {}, {}::numeric)").format(
            sql.Literal(d.metric), sql.Literal(d.title), sql.Literal(d.unit), sql.Literal(d.scale)
        )
        for d in displays().values()
    )
    return render(sql.SQL("metric_display(metric, label, unit, scale) AS (VALUES {})").format(rows))


def latest_pledges() -> str:
    """The latest version of every pledge (a changed pledge is a new row, never an update)."""
    return "(SELECT DISTINCT ON (id) * FROM pledges ORDER BY id, version DESC)"


def event_label(column: str) -> str:
    """``CASE`` turning an event type into its bilingual name (corrections: 更正 · Correction)."""
    cases = " ".join(
        f"WHEN {column} = {literal(event_type)} THEN {literal(label)}"
        for event_type, label in EVENT_LABELS.items()
    )
    return (
        f"CASE WHEN {column} LIKE {literal('%.correction')} THEN {literal('更正 · Correction')} "
        f"{cases} ELSE {column} END"
    )

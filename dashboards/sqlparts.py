"""SQL fragments the dashboards share, built with psycopg.sql from the catalogue.

Labels and display units come from ``seeds/`` (``metrics.yaml``, ``departments.yaml``) and
``schemas/districts.py``, so a panel shows "供热面积 · Heating area connected" in 万㎡ while
the tables keep codes and base units. Values enter the SQL as ``psycopg.sql.Literal``.

Dates: the rollups count Asia/Shanghai calendar days; the dashboard's time range is turned
into local days with :data:`FROM_DAY` and :data:`TO_DAY` (``$__timeFrom()`` and
``$__timeTo()`` are Grafana macros, expanded by the data source).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from psycopg import sql

from schemas.catalogue import EVENT_METRICS, Catalogue
from schemas.districts import LABELS, District
from schemas.seeds import load_catalogue
from schemas.topics import FAMILIES

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


def amount(expression: str) -> str:
    """A number as a reader writes it: thousands separated, at most two decimals."""
    return (
        f"regexp_replace(to_char(round(({expression})::numeric, 2), "
        "'FM999,999,999,990.00'), '\\.?0+$', '')"
    )


@dataclass(frozen=True)
class Display:
    """How one metric is shown: bilingual label, display unit and scale (万㎡ = m² / 10⁴)."""

    metric: str
    label_zh: str
    label_en: str
    unit: str
    scale: Decimal

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


def displays() -> dict[str, Display]:
    return {
        m.name: Display(m.name, m.label_zh, m.label_en, m.display_unit, m.display_scale)
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

"""An event family as one declaration: the one extension point of the platform.

Each ``schemas/<family>.py`` ends with ``FAMILY = Family(...)``: its event models and their
correction, its metrics with their bounds, its department (the family's name), its topic
``city.<family>.v1``, how clerks name its event types and columns in a ledger, and what its
dashboard is called. Everything that used to repeat these derives from the declarations,
which :mod:`schemas.topics` collects: the topic specs, the catalogue's event → metric table,
the ledger import's header aliases and type names, the dashboards' labels and per-family
boards, the principals and ACLs, the simulator's registry. A new family is a new module, its
seeds (``seeds/metrics.yaml`` labels and display units, ``seeds/departments.yaml``, its
pledges) and its simulator generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.fields import Metric

# How a ledger cell of a field is read (services.ledger_import.cells).
CellKind = Literal[
    "text",
    "district",
    "datetime",
    "decimal",
    "count",
    "float",
    "event_type",
    "department",
    "space_kind",
    "school_level",
    "milestone",
    "utility",
    "passthrough",
]
# The unit family a column's header may name (万㎡, 米 …), converted to the field's base unit.
UnitKind = Literal["area", "length", "count"]


@dataclass(frozen=True)
class LedgerField:
    """A payload field as district clerks head its column (the field's own name works too).
    Fields two families share (``area_m2``) gather every family's aliases."""

    name: str  # the event field; "location.lat" for a nested one
    kind: CellKind
    aliases: tuple[str, ...] = ()
    units: UnitKind | None = None


def ledger_field(
    name: str, kind: CellKind, aliases: str = "", units: UnitKind | None = None
) -> LedgerField:
    """``ledger_field("area_m2", "decimal", "面积 供热面积", "area")``: aliases space-separated."""
    return LedgerField(name, kind, tuple(aliases.split()), units)


@dataclass(frozen=True)
class EventKind:
    """One event type of the family."""

    model: type[Envelope]
    label_zh: str  # "供热入网": dashboards, reports
    label_en: str
    # The metrics its events add to (each must be in the family's ``metrics``; labels and
    # display units are in seeds/metrics.yaml, whose produced_by must agree).
    metrics: tuple[str, ...]
    # What a clerk writes in a ledger's 事件类型 column for it.
    ledger_names: tuple[str, ...] = ()
    # A valid event's payload fields (the envelope's are common to all): the documentation's
    # and the tests' good example of this type.
    example: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.model.event_type_name

    @property
    def label(self) -> str:
        return f"{self.label_zh} · {self.label_en}"


@dataclass(frozen=True)
class Family:
    """An event family; its department has the family's name and writes its topic alone."""

    name: str
    # The dashboard and the report: "供热" / "Heating" and a sentence on what it shows.
    title_zh: str
    title_en: str
    description: str
    events: tuple[EventKind, ...]
    correction: type[Correction]
    metrics: tuple[Metric, ...]
    # Where it stands among the families (dashboards, tables): lower first.
    position: int
    # The payload fields of its events, as clerks head their columns.
    ledger_fields: tuple[LedgerField, ...] = ()
    # What a clerk writes in a ledger's 部门 column for its department.
    department_names: tuple[str, ...] = ()
    # A valid correction's metric and delta (its other fields are common to all).
    correction_example: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        metric_names = {m.name for m in self.metrics}
        for kind in self.events:
            if kind.model.family != self.name:
                raise ValueError(f"{kind.name} is not of the {self.name} family")
            unknown = set(kind.metrics) - metric_names
            if unknown:
                raise ValueError(f"{kind.name} adds to metrics {unknown} the family lacks")
            if not kind.example:
                raise ValueError(f"{kind.name} needs an example (its payload fields)")
        if set(self.correction_example) != {"metric", "delta"}:
            raise ValueError(f"{self.name} needs a correction_example: its metric and delta")
        if self.correction.family != self.name:
            raise ValueError(f"{self.correction.event_type_name} corrects another family")

    @property
    def department(self) -> str:
        return self.name

    @property
    def topic(self) -> str:
        return f"city.{self.name}.v1"

    @property
    def models(self) -> tuple[type[Envelope], ...]:
        return (*(kind.model for kind in self.events), self.correction)

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(kind.name for kind in self.events)

    @property
    def correction_type(self) -> str:
        return self.correction.event_type_name

    @property
    def dashboard_uid(self) -> str:
        return f"citystream-{self.name}"

"""Every topic declared once, derived from the event families (``schemas/family.py``): its
name, its family, the event models it carries, the department that may write it and the
metrics its events feed; and the platform's own topics (dead letters, checkpoints, receipts).

Producers and agents import these specs; nobody repeats a topic string. Each family's
topic carries that family's event types and its ``<family>.correction``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from schemas.envelope import Envelope
from schemas.family import Family
from schemas.fields import Metric

PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class TopicSpec:
    name: str
    family: str
    models: tuple[type[Envelope], ...]
    # Departments allowed to write each event type of this topic.
    departments: frozenset[str]
    # The metrics this family's events feed (and its corrections may correct).
    metrics: tuple[Metric, ...]
    by_type: dict[str, type[Envelope]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_type", {m.event_type_name: m for m in self.models})

    @classmethod
    def of(cls, family: Family) -> TopicSpec:
        return cls(
            name=family.topic,
            family=family.name,
            models=family.models,
            departments=frozenset({family.department}),
            metrics=family.metrics,
        )


def _discover() -> tuple[Family, ...]:
    """Every module of this package that declares ``FAMILY = Family(...)``, in their
    declared positions: adding a family is adding its module, nothing here."""
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        if "\nFAMILY = Family(" not in path.read_text(encoding="utf-8"):
            continue
        module = importlib.import_module(f"schemas.{path.stem}")
        family = module.FAMILY
        if not isinstance(family, Family) or family.name != path.stem:
            raise TypeError(f"schemas/{path.name}: FAMILY must be the Family named {path.stem!r}")
        found.append(family)
    return tuple(sorted(found, key=lambda f: (f.position, f.name)))


FAMILIES: tuple[Family, ...] = _discover()

ALL: tuple[TopicSpec, ...] = tuple(TopicSpec.of(family) for family in FAMILIES)
BY_FAMILY: dict[str, TopicSpec] = {spec.family: spec for spec in ALL}
FAMILY_OF: dict[str, Family] = {family.name: family for family in FAMILIES}
# The departments that send events: one per family, named after it.
DEPARTMENTS: tuple[str, ...] = tuple(family.department for family in FAMILIES)
# The first five families by name, for the code and tests that speak of one of them.
HOUSING, EDUCATION, HEATING, PARKING, DRAINAGE = (
    BY_FAMILY[name] for name in ("housing", "education", "heating", "parking", "drainage")
)

DEADLETTER_TOPIC = "city.deadletter.v1"
# Signed ledger checkpoints (services/audit/checkpoint.py): only the auditors' principal may
# write it, retention unlimited, one partition so that checkpoints keep their order.
CHECKPOINT_TOPIC = "city.audit-checkpoints.v1"

# What the worker decided about each record, per department (schemas/receipts.py): one topic
# per department so that each can be ACL'd to that department alone.
RECEIPTS_TOPIC = "city.receipts.{department}.v1"


def receipts_topic(department: str) -> str:
    """``city.receipts.heating.v1``: the receipts of the heating department's records."""
    return RECEIPTS_TOPIC.format(department=department)


BY_EVENT_TYPE: dict[str, TopicSpec] = {t: spec for spec in ALL for t in spec.by_type}
METRICS: dict[str, tuple[str, str]] = {m.name: (m.family, m.unit) for s in ALL for m in s.metrics}
"""Metric name → (family, unit), e.g. ``heating.connected_area_m2`` → ("heating", "m2")."""

"""Every topic declared once: its name, its family, the event models it carries, the
departments that may write it and the metrics its events feed.

Producers and agents import these specs; nobody repeats a topic string. Each family's
topic carries that family's event types and its ``<family>.correction``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas import drainage, education, heating, housing, parking
from schemas.envelope import Envelope
from schemas.fields import Metric


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


HOUSING = TopicSpec(
    name="city.housing.v1",
    family="housing",
    models=(
        housing.HousingConstructionStarted,
        housing.HousingUnitsCompleted,
        housing.HousingHouseholdsReturned,
        housing.HousingCorrection,
    ),
    departments=frozenset({"housing"}),
    metrics=housing.METRIC_SPECS,
)

EDUCATION = TopicSpec(
    name="city.education.v1",
    family="education",
    models=(
        education.EducationSchoolOpened,
        education.EducationPlacesAdded,
        education.EducationCorrection,
    ),
    departments=frozenset({"education"}),
    metrics=education.METRIC_SPECS,
)

HEATING = TopicSpec(
    name="city.heating.v1",
    family="heating",
    models=(heating.HeatingAreaConnected, heating.HeatingPipeLaid, heating.HeatingCorrection),
    departments=frozenset({"heating"}),
    metrics=heating.METRIC_SPECS,
)

PARKING = TopicSpec(
    name="city.parking.v1",
    family="parking",
    models=(parking.ParkingSpacesOpened, parking.ParkingLotOpened, parking.ParkingCorrection),
    departments=frozenset({"parking"}),
    metrics=parking.METRIC_SPECS,
)

DRAINAGE = TopicSpec(
    name="city.drainage.v1",
    family="drainage",
    models=(drainage.DrainagePointRepaired, drainage.DrainageCorrection),
    departments=frozenset({"drainage"}),
    metrics=drainage.METRIC_SPECS,
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


ALL: tuple[TopicSpec, ...] = (HOUSING, EDUCATION, HEATING, PARKING, DRAINAGE)
BY_FAMILY: dict[str, TopicSpec] = {spec.family: spec for spec in ALL}
BY_EVENT_TYPE: dict[str, TopicSpec] = {t: spec for spec in ALL for t in spec.by_type}
METRICS: dict[str, tuple[str, str]] = {m.name: (m.family, m.unit) for s in ALL for m in s.metrics}
"""Metric name → (family, unit), e.g. ``heating.connected_area_m2`` → ("heating", "m2")."""

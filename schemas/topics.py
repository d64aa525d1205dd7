"""Every topic declared once: its name, its family, the event models it carries.

Producers and agents import these specs; nobody repeats a topic string.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.envelope import Envelope
from schemas.heating import HeatingAreaConnected


@dataclass(frozen=True)
class TopicSpec:
    name: str
    family: str
    models: tuple[type[Envelope], ...]
    # Departments allowed to write each event type of this topic.
    departments: frozenset[str]
    by_type: dict[str, type[Envelope]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_type", {m.event_type_name: m for m in self.models})


HEATING = TopicSpec(
    name="city.heating.v1",
    family="heating",
    models=(HeatingAreaConnected,),
    departments=frozenset({"heating"}),
)

DEADLETTER_TOPIC = "city.deadletter.v1"

ALL: tuple[TopicSpec, ...] = (HEATING,)
BY_FAMILY: dict[str, TopicSpec] = {spec.family: spec for spec in ALL}
BY_EVENT_TYPE: dict[str, TopicSpec] = {t: spec for spec in ALL for t in spec.by_type}

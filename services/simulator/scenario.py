"""What a simulated year is made of, as data: the years, how often reports are late,
re-sent, invalid or corrected, and the vocabulary each family's scenario table is written in
(``services/simulator/families/<family>.py`` ends with ``SIMULATOR = FamilySimulator(...)``).

Nothing here draws a random number or reads a file: :mod:`services.simulator.windows` turns
these descriptions into dates and amounts, the families' generators into events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from schemas.errors import CityStreamError
from services.simulator.context import Context, Draft

# The years with a scenario → the day their pledges' position is designed for (month, day),
# or None. Events up to that day are reported (and corrected) by it.
STATUS_DAYS: dict[int, tuple[int, int] | None] = {2022: None, 2024: (8, 31)}

LATE_SHARE = 0.10
LATE_DAYS = (1, 30)
DUPLICATE_SHARE = 0.01
INVALID_SHARE = 0.005
CORRECTIONS = 3


class SimulationError(CityStreamError, ValueError):
    """The simulation cannot be planned as asked (unknown year, --until outside it, a family
    without its generator)."""


Day = tuple[int, int]  # (month, day) in the simulated year


@dataclass(frozen=True)
class Achieved:
    """The figure the zone reported for the simulated year (``seeds/achievements/``)."""

    metric: str


@dataclass(frozen=True)
class Target:
    """A pledge's target (``seeds/pledges/``)."""

    pledge: str


# A decimal written as text ("8.6"), or a figure of the catalogue.
Amount = str | Achieved | Target


@dataclass(frozen=True)
class Spread:
    """``total`` over windows (first day, last day, share); the last takes what is left.

    With ``jitter`` each share varies by up to 4%, so that a window holding a single project
    does not show a round figure such as 99,400.00 m².
    """

    total: Amount
    windows: tuple[tuple[Day, Day, str], ...]
    unit: str  # every amount is a multiple of it: "0.01" (m²), "0.001" (km), "1"
    jitter: bool = True


@dataclass(frozen=True)
class Paced:
    """``pace`` × what the pledge's schedule expects in each window up to the status day
    (``before``), then the rest of its target over the windows after it, by share."""

    pledge: str
    pace: str
    before: tuple[tuple[Day, Day], ...]
    after: tuple[tuple[Day, Day, str], ...]
    unit: str = "1"


S = TypeVar("S")


@dataclass(frozen=True)
class Step(Generic[S]):
    """A part of a family's year: one of its generators and what to generate."""

    # Where the step is drawn among every family's steps of the year. The subdistrict
    # rotation and the project names come from random streams all families share, so this
    # order is part of the scenario: the same order gives the same events. A new family's
    # steps come after the last ones, so that the others' projects stay as they were.
    order: int
    make: Callable[[Context, S], list[Draft]]
    spec: S

    def run(self, ctx: Context) -> list[Draft]:
        return self.make(ctx, self.spec)


@dataclass(frozen=True)
class Correctable:
    """An event type a department sometimes over-reports, then corrects."""

    # Where the type stands when a year's corrected types are drawn (shared, like Step.order).
    order: int
    event_type: str
    field: str  # the over-reported field
    why_zh: str
    why_en: str
    # The metric the field adds to: its name, or how to tell it from the event's fields.
    metric: str | Callable[[Mapping[str, Any]], str]

    def metric_of(self, fields: Mapping[str, Any]) -> str:
        return self.metric if isinstance(self.metric, str) else self.metric(fields)


@dataclass(frozen=True)
class FamilySimulator:
    """What the simulator knows of one event family of ``schemas/``."""

    family: str
    # Year → its steps; a year without steps has no events of the family.
    years: Mapping[int, tuple[Step[Any], ...]]
    officials: tuple[str, ...]  # who approves the family's corrections
    correctable: tuple[Correctable, ...] = ()
    # Event type → the field an invalid record makes negative (types with a quantity).
    quantity_fields: Mapping[str, str] = field(default_factory=dict)

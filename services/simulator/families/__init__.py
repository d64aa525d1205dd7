"""One module per event family, named as the family: ``families/<family>.py`` holds the
family's generators and its scenario, ending with ``SIMULATOR = FamilySimulator(...)``.

They are found from :data:`schemas.topics.FAMILIES`, not from a list kept here: a family
declared in ``schemas/`` without its module here (or a module here without its family)
stops the plan with a :class:`SimulationError` naming it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from schemas.topics import FAMILIES
from services.simulator.scenario import Correctable, FamilySimulator, SimulationError, Step

PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Simulators:
    """Every family's simulator, in the families' order."""

    families: tuple[FamilySimulator, ...]

    def steps(self, year: int) -> list[Step[Any]]:
        """The year's steps of every family, in the order they are drawn."""
        steps = sorted(
            ((step, sim.family) for sim in self.families for step in sim.years.get(year, ())),
            key=lambda pair: pair[0].order,
        )
        _check_unique([(step.order, family) for step, family in steps], f"{year} step")
        return [step for step, _ in steps]

    @property
    def correctable(self) -> list[Correctable]:
        """Every correctable event type, in the order they are drawn."""
        found = sorted((c for sim in self.families for c in sim.correctable), key=lambda c: c.order)
        _check_unique([(c.order, c.event_type) for c in found], "correctable")
        return found

    def officials(self, family: str) -> tuple[str, ...]:
        return next(sim.officials for sim in self.families if sim.family == family)

    @property
    def quantity_fields(self) -> dict[str, str]:
        return {t: f for sim in self.families for t, f in sim.quantity_fields.items()}


def _check_unique(orders: Sequence[tuple[int, str]], what: str) -> None:
    for (order, first), (again, second) in pairwise(orders):
        if order == again:
            raise SimulationError(
                f"{first} and {second} both take {what} order {order}; "
                "give the newer one a number after the last"
            )


def discover(families: Sequence[str]) -> Simulators:
    """``families/<family>.py``'s ``SIMULATOR`` for each family named."""
    found = []
    for family in families:
        module_name = f"{__name__}.{family}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            raise SimulationError(
                f"event family {family!r} (schemas/{family}.py) has no simulator generator: "
                f"add services/simulator/families/{family}.py ending with "
                "SIMULATOR = FamilySimulator(...), as families/heating.py does"
            ) from exc
        simulator = getattr(module, "SIMULATOR", None)
        if not isinstance(simulator, FamilySimulator) or simulator.family != family:
            raise SimulationError(
                f"services/simulator/families/{family}.py must end with "
                f"SIMULATOR = FamilySimulator(family={family!r}, ...)"
            )
        found.append(simulator)
    strays = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in {*families, "__init__"})
    if strays:
        raise SimulationError(
            f"services/simulator/families/{strays[0]}.py simulates no event family of schemas/ "
            f"(known: {', '.join(sorted(families))})"
        )
    return Simulators(tuple(found))


@cache
def simulators() -> Simulators:
    """The simulators of every family declared in ``schemas/``."""
    return discover([family.name for family in FAMILIES])

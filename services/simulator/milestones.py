"""Projects reaching milestones (``schemas/milestones.py``): roads started, a hall opened, a
clinic beginning family-bed service — one event per project and milestone, no quantity.

Two specs, for any :class:`~schemas.milestones.ProjectMilestone` model:

* :class:`Projects` — projects the scenario lists, each with the milestones it reaches in
  the year and the window of days each falls in. A project a pledge names is reported under
  the pledge item's code (``project``), with its full name in ``project_name``; the others
  are named from their subdistrict's places (:mod:`~services.simulator.names`).
* :class:`Counted` — so many projects of the subdistricts reaching one milestone, spread
  over windows by share: how a reported figure (20 roads completed in 2022) is played.

Pure: the only randomness is the step's own stream, the subdistrict rotation and the names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from schemas.districts import District
from schemas.milestones import ProjectMilestone
from services.simulator.context import Context, Draft, moment
from services.simulator.names import Names
from services.simulator.scenario import Amount, Day, SimulationError
from services.simulator.windows import amount, apportion, days

# A milestone reached on a working day between two days (both included).
Reached = tuple[str, Day, Day]


@dataclass(frozen=True)
class Project:
    """One project and the milestones it reaches in the year, in the order it reaches them."""

    reached: tuple[Reached, ...]
    # A pledge item's code: the event's ``project``. None: the project goes by its name.
    code: str | None = None
    # Its full name (``project_name`` beside a code); None: drawn from its subdistrict.
    name: str | None = None
    # None: the next subdistrict of the spec's rotation.
    district: District | None = None


@dataclass(frozen=True)
class Projects:
    """Projects of one milestone model, each reaching its milestones in its windows."""

    model: type[ProjectMilestone]
    projects: tuple[Project, ...]
    # The subdistrict rotation (and random stream) of projects without a district.
    rotation: str
    # How a project without a name is named after its subdistrict.
    name: Callable[[Names, District], str] | None = None
    # Further fields of every event (a school's level).
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Counted:
    """``total`` projects reaching ``milestone``, over windows (first day, last day, share),
    in the subdistricts in turn; one event each."""

    model: type[ProjectMilestone]
    milestone: str
    total: Amount
    windows: tuple[tuple[Day, Day, str], ...]
    rotation: str
    name: Callable[[Names, District], str]


def projects(ctx: Context, spec: Projects) -> list[Draft]:
    rng = ctx.rng(f"{spec.model.event_type_name}:{spec.rotation}")
    drafts = []
    for project in spec.projects:
        # Drawn in this order (subdistrict, name, days): another order gives other events.
        district = project.district or ctx.district(spec.rotation)
        name = project.name
        if name is None:
            if spec.name is None:
                raise SimulationError(f"{spec.rotation}: a project without a name needs a namer")
            name = spec.name(ctx.names, district)
        fields: dict[str, Any] = dict(spec.fields)
        if project.code is not None:
            fields["project_name"] = name
        previous = None
        for milestone, first, last in project.reached:
            when = moment(rng, *days(ctx, first, last))
            if previous is not None and when <= previous:
                raise SimulationError(f"{name}: {milestone} is not after the milestone before it")
            previous = when
            drafts.append(
                Draft(
                    spec.model,
                    district,
                    when,
                    project.code or name,
                    {**fields, "milestone": milestone},
                )
            )
    return drafts


def counted(ctx: Context, spec: Counted) -> list[Draft]:
    total = amount(ctx, spec.total)
    if total != total.to_integral_value():
        raise SimulationError(f"{spec.rotation}: {total} projects is not a whole number")
    shares = [Decimal(share) for _, _, share in spec.windows]
    listed = tuple(
        Project(((spec.milestone, first, last),))
        for (first, last, _), n in zip(spec.windows, apportion(int(total), shares), strict=True)
        for _ in range(n)
    )
    return projects(ctx, Projects(spec.model, listed, spec.rotation, spec.name))

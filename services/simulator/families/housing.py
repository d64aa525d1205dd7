"""Housing (``schemas/housing.py``): resettlement estates started and completed, one
estate per event, and villages moving back, one village per event.

Completions follow construction milestones, most in the second half; starts wait for the
end of the winter earthworks ban.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from schemas import housing
from schemas.envelope import Envelope
from services.simulator.context import Context, Draft, moment
from services.simulator.scenario import (
    Achieved,
    Amount,
    Correctable,
    Day,
    FamilySimulator,
    Paced,
    Spread,
    Step,
)
from services.simulator.windows import ESTATE, M2, ONE, amount, days, projects, split, windows


@dataclass(frozen=True)
class Villages:
    """Residents moving back, one village per period (first day, last day)."""

    persons: Amount
    periods: tuple[tuple[Day, Day], ...]


def _estates(
    ctx: Context, spec: Spread | Paced, model: type[Envelope], m2_per_unit: tuple[int, int]
) -> list[Draft]:
    rng = ctx.rng(model.event_type_name)

    def fields(area: Decimal) -> dict[str, Any]:
        units = max(1, int((area / Decimal(rng.randint(*m2_per_unit))).to_integral_value()))
        return {"area_m2": area, "units": units}

    return projects(
        ctx,
        windows(ctx, spec),
        model=model,
        size=ESTATE,
        quantum=M2,
        rng=rng,
        rotation="housing",
        name=ctx.names.resettlement_estate,
        fields=fields,
    )


def units_completed(ctx: Context, spec: Spread | Paced) -> list[Draft]:
    return _estates(ctx, spec, housing.HousingUnitsCompleted, (78, 112))


def construction_started(ctx: Context, spec: Spread | Paced) -> list[Draft]:
    return _estates(ctx, spec, housing.HousingConstructionStarted, (85, 105))


def households_returned(ctx: Context, spec: Villages) -> list[Draft]:
    rng = ctx.rng("housing.households_returned")
    persons = amount(ctx, spec.persons)
    parts = split(persons, Decimal(1500), Decimal(6000), ONE, rng, count=len(spec.periods))
    drafts = []
    for (first, last), size in zip(spec.periods, parts, strict=True):
        district = ctx.district("housing.return")
        _, estate = ctx.names.village_estate(district)
        people = int(size)
        households = max(1, round(people / rng.uniform(2.9, 3.5)))
        drafts.append(
            Draft(
                housing.HousingHouseholdsReturned,
                district,
                moment(rng, *days(ctx, first, last), weekdays=False),
                estate,
                {"households": households, "persons": people},
            )
        )
    return drafts


SIMULATOR = FamilySimulator(
    family="housing",
    years={
        2022: (
            # Little in winter (earthworks ban, Spring Festival), most in the second half.
            Step(
                order=1,
                make=units_completed,
                spec=Spread(
                    Achieved(housing.COMPLETED_AREA_M2),
                    (
                        ((1, 4), (3, 31), "0.08"),
                        ((4, 1), (6, 30), "0.22"),
                        ((7, 1), (9, 30), "0.40"),
                        ((10, 1), (12, 23), "0.30"),
                    ),
                    unit="0.01",
                ),
            ),
            Step(
                order=2,
                make=construction_started,
                spec=Spread(
                    Achieved(housing.STARTED_AREA_M2),
                    (((4, 1), (6, 30), "0.55"), ((7, 1), (9, 30), "0.45")),
                    unit="0.01",
                ),
            ),
            # Five villages, each moving back after its estate is delivered.
            Step(
                order=3,
                make=households_returned,
                spec=Villages(
                    Achieved(housing.RETURNED_PERSONS),
                    (
                        ((5, 10), (6, 30)),
                        ((8, 15), (9, 28)),
                        ((8, 15), (9, 28)),
                        ((10, 10), (11, 30)),
                        ((11, 15), (12, 25)),
                    ),
                ),
            ),
        ),
        2024: (
            # On pace with the construction milestones (102%).
            Step(
                order=1,
                make=units_completed,
                spec=Paced(
                    "2024-housing-completed-area",
                    "1.02",
                    before=(((1, 8), (3, 31)), ((4, 1), (6, 30)), ((7, 1), (8, 31))),
                    after=(((9, 1), (9, 28), "0.65"), ((10, 8), (12, 20), "0.35")),
                ),
            ),
            # Behind (75%): land handovers slipped; the starts catch up in the autumn.
            Step(
                order=2,
                make=construction_started,
                spec=Paced(
                    "2024-housing-started-area",
                    "0.75",
                    before=(((3, 1), (3, 31)), ((4, 1), (6, 30)), ((7, 1), (8, 31))),
                    after=(((9, 1), (9, 30), "0.5"), ((10, 1), (11, 30), "0.5")),
                ),
            ),
            # 力争十一前实现群众回迁安置: three villages (9,600 residents, no pledge behind
            # the figure) move back before National Day.
            Step(
                order=5,
                make=households_returned,
                spec=Villages("9600", (((7, 10), (9, 28)),) * 3),
            ),
        ),
    },
    officials=("安置办 李建国", "安置办 赵敏"),
    correctable=(
        Correctable(
            order=2,
            event_type="housing.units_completed",
            field="area_m2",
            why_zh="竣工备案复核：原报送含未交付的商业配套面积",
            why_en="completion filing check: the report included commercial space not delivered",
            metric=housing.COMPLETED_AREA_M2,
        ),
    ),
    quantity_fields={
        "housing.construction_started": "area_m2",
        "housing.units_completed": "area_m2",
        "housing.households_returned": "persons",
    },
)

"""Housing (``schemas/housing.py``): resettlement estates started and completed, one
estate per event, villages moving back, one village per event, the preliminary works of a
batch of resettlement housing, and the return rate (回迁率) the department counts.

Completions follow construction milestones, most in the second half; starts wait for the
end of the winter earthworks ban. The return rate is counted at the end of a quarter (2022)
or of each month (2024): households moved back over households entitled, 40,000 of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from schemas import housing
from schemas.districts import District
from schemas.envelope import Envelope
from services.simulator.context import Context, Draft, moment
from services.simulator.indicators import Overstated, Reading, Readings, readings
from services.simulator.milestones import Project, Projects
from services.simulator.milestones import projects as milestones
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


# Households entitled to move back (应回迁户数): the return rate's denominator.
ENTITLED = 40_000


def _monthly(*levels: tuple[tuple[int, int], str]) -> tuple[Reading, ...]:
    return tuple(Reading(day, level, ENTITLED) for day, level in levels)


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
            # The return rate at each quarter's end; 92% at the end of the year, the figure
            # the zone reported (2022-housing-return-rate).
            Step(
                order=16,
                make=readings,
                spec=Readings(
                    housing.HousingReturnRateReported,
                    _monthly(
                        ((3, 31), "85.20"),
                        ((6, 30), "87.05"),
                        ((9, 30), "89.90"),
                        ((12, 30), "92.00"),
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
            # The cooperation zone's first batch starts its preliminary works in June
            # (achieved on 31 August).
            Step(
                order=11,
                make=milestones,
                spec=Projects(
                    housing.HousingPreliminaryWorksStarted,
                    (
                        Project(
                            (("preliminary_started", (6, 3), (6, 21)),),
                            code="cooperation-zone-batch-1",
                            name="合作共建区首批安置房",
                            district=District.ZONE,
                        ),
                    ),
                    rotation="housing.preliminary",
                ),
            ),
            # The return rate, counted at each month's end: from 92% (where 2022 ended; 2023
            # added little) it creeps up by scattered households until the three villages
            # move back from July. At risk on 31 August: 96.8% where the trend from January
            # (92.1%) reaches 100% only in January 2025, after the 30 September deadline;
            # the villages' September moves take it to 100% by 27 September. The May count
            # was typed in 0.35 points too high and corrected in June; the June count was
            # sent only in August (it waited for the handover register).
            Step(
                order=12,
                make=readings,
                spec=Readings(
                    housing.HousingReturnRateReported,
                    (
                        *_monthly(
                            ((1, 31), "92.10"),
                            ((2, 29), "92.20"),
                            ((3, 29), "92.45"),
                            ((4, 30), "92.70"),
                        ),
                        Reading(
                            (5, 31),
                            "93.05",
                            reported=(6, 3),
                            overstated=Overstated(
                                "0.35",
                                corrected=(6, 14),
                                approver="安置办 赵敏",
                                why_zh="复核：已签约未入住的 140 户被计入已回迁",
                                why_en="check: 140 households that had signed but not yet "
                                "moved in were counted as moved back",
                            ),
                        ),
                        Reading((6, 28), "93.40", ENTITLED, reported=(8, 9)),
                        *_monthly(
                            ((7, 31), "95.10"),
                            ((8, 30), "96.80"),
                            ((9, 27), "100.00"),
                        ),
                    ),
                ),
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

"""Construction (``schemas/construction.py``): municipal roads approved, started and
completed (one road per event), public venues opened, and sections of water and gas main
laid (0.3–2.5 km each).

Road works start in the construction season (March–October: earthworks stop in the winter
heavy-pollution control period) and are completed from spring to the year's end; mains are
laid from mid-March to the end of October.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from schemas import construction
from schemas.districts import District
from services.simulator.context import Context, Draft
from services.simulator.milestones import Counted, Project, Projects, counted, projects
from services.simulator.names import Names
from services.simulator.scenario import (
    Achieved,
    Amount,
    Correctable,
    Day,
    FamilySimulator,
    Spread,
    Step,
)
from services.simulator.windows import projects as sized
from services.simulator.windows import windows

MAIN_SECTION_KM = (Decimal("0.3"), Decimal("2.5"))
# Both years' mains: laid from mid-March to the end of October.
MAINS: tuple[tuple[Day, Day, str], ...] = (
    ((3, 16), (6, 30), "0.45"),
    ((7, 1), (10, 31), "0.55"),
)


@dataclass(frozen=True)
class Mains:
    utility: Literal["water", "gas"]
    spread: Spread


def mains(ctx: Context, spec: Mains) -> list[Draft]:
    return sized(
        ctx,
        windows(ctx, spec.spread),
        model=construction.ConstructionMainLaid,
        size=MAIN_SECTION_KM,
        quantum=Decimal("0.001"),
        rng=ctx.rng(f"construction.main_laid:{spec.utility}"),
        rotation=f"construction.{spec.utility}",
        name=ctx.names.water_main if spec.utility == "water" else ctx.names.gas_main,
        fields=lambda km: {"utility": spec.utility, "length_km": km},
    )


def roads_completed(total: Amount, spread: tuple[tuple[Day, Day, str], ...]) -> Counted:
    return Counted(
        construction.ConstructionRoadMilestone,
        "completed",
        total,
        spread,
        rotation="construction.road.completed",
        name=Names.road_section,
    )


def _road(approved: tuple[Day, Day], started: tuple[Day, Day]) -> Project:
    return Project((("approved", *approved), ("started", *started)))


SIMULATOR = FamilySimulator(
    family="construction",
    years={
        2022: (
            # 20 roads completed: a few in spring, most after the summer rains.
            Step(
                order=9,
                make=counted,
                spec=roads_completed(
                    Achieved(construction.ROADS_COMPLETED),
                    (
                        ((4, 1), (6, 30), "0.3"),
                        ((7, 1), (9, 30), "0.3"),
                        ((10, 1), (12, 23), "0.4"),
                    ),
                ),
            ),
            Step(
                order=10,
                make=mains,
                spec=Mains("water", Spread(Achieved(construction.WATER_MAIN_KM), MAINS, "0.001")),
            ),
            Step(
                order=11,
                make=mains,
                spec=Mains("gas", Spread(Achieved(construction.GAS_MAIN_KM), MAINS, "0.001")),
            ),
        ),
        2024: (
            # The pledge's six roads, all approved by May. Behind on 31 August: only three
            # have started (红杉路 in April, two in May–August) where the season expects 4.5;
            # the other three wait for land clearance and start in September–October.
            Step(
                order=15,
                make=projects,
                spec=Projects(
                    construction.ConstructionRoadMilestone,
                    (
                        Project(
                            (("approved", (1, 8), (1, 26)), ("started", (4, 8), (4, 19))),
                            code="hongshan-road-lianhua-xinlong",
                            name="红杉路（莲花街—新龙路）",
                            district=District.FENGYANG,
                        ),
                        _road(((1, 15), (2, 7)), ((5, 6), (6, 28))),
                        _road(((2, 19), (3, 15)), ((7, 1), (8, 16))),
                        _road(((3, 4), (3, 29)), ((9, 2), (9, 27))),
                        _road(((3, 18), (4, 30)), ((9, 9), (10, 18))),
                        _road(((4, 8), (5, 31)), ((10, 8), (10, 30))),
                    ),
                    rotation="construction.road.pledged",
                    name=Names.road_section,
                ),
            ),
            # No pledge behind it: roads begun in earlier years, completed through the year.
            Step(
                order=16,
                make=counted,
                spec=roads_completed(
                    "9",
                    (
                        ((4, 1), (6, 30), "0.3"),
                        ((7, 1), (9, 30), "0.3"),
                        ((10, 1), (12, 20), "0.4"),
                    ),
                ),
            ),
            # The Science Hall opens in December: nothing is due before 31 December, so the
            # pledge is on track on 31 August.
            Step(
                order=17,
                make=projects,
                spec=Projects(
                    construction.ConstructionVenueMilestone,
                    (
                        Project(
                            (("opened", (12, 9), (12, 20)),),
                            code="science-hall",
                            name="科学会堂",
                            district=District.ZONE,
                        ),
                    ),
                    rotation="construction.venue",
                ),
            ),
            # No pledge behind them: a plausible 18.4 km of water and 9.2 km of gas mains.
            Step(order=18, make=mains, spec=Mains("water", Spread("18.4", MAINS, "0.001"))),
            Step(order=19, make=mains, spec=Mains("gas", Spread("9.2", MAINS, "0.001"))),
        ),
    },
    officials=("建设局 马俊", "建设局 黄丽娟"),
    correctable=(
        Correctable(
            order=6,
            event_type="construction.main_laid",
            field="length_km",
            why_zh="竣工测量：原报送按设计长度而非实测长度",
            why_en="as-built survey: the report gave the design length, not the measured one",
            metric=lambda fields: (
                construction.WATER_MAIN_KM
                if fields["utility"] == "water"
                else construction.GAS_MAIN_KM
            ),
        ),
    ),
    quantity_fields={"construction.main_laid": "length_km"},
)

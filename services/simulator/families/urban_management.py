"""Urban management (``schemas/urban_management.py``): lighting areas started and completed
(one area per event), parks opened (one per event) and sites greened (3,000–40,000 m²
each).

Planting follows the seasons (spring and autumn, little in the summer heat, none in
winter); parks open in spring and autumn; lighting works run through the year.
"""

from __future__ import annotations

from decimal import Decimal

from schemas import urban_management
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
from services.simulator.windows import M2, windows
from services.simulator.windows import projects as sized

GREEN_SITE_M2 = (Decimal(3_000), Decimal(40_000))
PLANTING: tuple[tuple[Day, Day, str], ...] = (
    ((3, 1), (5, 15), "0.45"),
    ((5, 16), (8, 31), "0.15"),
    ((9, 1), (11, 30), "0.40"),
)


def area_greened(ctx: Context, spec: Spread) -> list[Draft]:
    return sized(
        ctx,
        windows(ctx, spec),
        model=urban_management.UrbanManagementAreaGreened,
        size=GREEN_SITE_M2,
        quantum=M2,
        rng=ctx.rng("urban_management.area_greened"),
        rotation="urban_management.greening",
        name=ctx.names.green_site,
        fields=lambda area: {"area_m2": area},
    )


def parks(total: Amount, spread: tuple[tuple[Day, Day, str], ...]) -> Counted:
    return Counted(
        urban_management.UrbanManagementParkOpened,
        "opened",
        total,
        spread,
        rotation="urban_management.parks",
        name=Names.park,
    )


SIMULATOR = FamilySimulator(
    family="urban_management",
    years={
        2022: (
            # Three parks: one before May Day, one for National Day, one at the year's end.
            Step(
                order=13,
                make=counted,
                spec=parks(
                    Achieved(urban_management.PARKS_OPENED),
                    (
                        ((4, 6), (4, 29), "0.34"),
                        ((9, 1), (9, 29), "0.33"),
                        ((12, 1), (12, 28), "0.33"),
                    ),
                ),
            ),
            Step(
                order=14,
                make=area_greened,
                spec=Spread(Achieved(urban_management.GREENED_AREA_M2), PLANTING, "0.01"),
            ),
        ),
        2024: (
            # The pledge's three areas: main roads done in spring, Tianjian Lake for the
            # summer evenings, the back alleys (many small works) in November. On track on
            # 31 August: 2 of 3 done where the linear schedule expects 2.0.
            Step(
                order=21,
                make=projects,
                spec=Projects(
                    urban_management.UrbanManagementLightingMilestone,
                    (
                        Project(
                            (("started", (3, 4), (3, 22)), ("completed", (5, 20), (6, 14))),
                            code="main-roads",
                            name="主干道亮化工程",
                            district=District.ZONE,
                        ),
                        Project(
                            (("started", (4, 8), (4, 26)), ("completed", (7, 8), (7, 26))),
                            code="tianjian-lake",
                            name="天健湖周边亮化工程",
                            district=District.ZONE,
                        ),
                        Project(
                            (("started", (6, 17), (7, 5)), ("completed", (11, 4), (11, 22))),
                            code="busy-back-alleys",
                            name="背街小巷亮化工程",
                            district=District.ZONE,
                        ),
                    ),
                    rotation="urban_management.lighting",
                ),
            ),
            # No pledge behind them: four parks and 310,000 m² greened.
            Step(
                order=22,
                make=counted,
                spec=parks(
                    "4",
                    (((4, 8), (5, 31), "0.5"), ((9, 2), (10, 31), "0.5")),
                ),
            ),
            Step(order=23, make=area_greened, spec=Spread("310000", PLANTING, "0.01")),
        ),
    },
    officials=("城管局 何平", "城管局 宋雅"),
    correctable=(
        Correctable(
            order=5,
            event_type="urban_management.area_greened",
            field="area_m2",
            why_zh="验收测绘：原报送含硬质铺装面积",
            why_en="acceptance survey: the report included paved area",
            metric=urban_management.GREENED_AREA_M2,
        ),
    ),
    quantity_fields={"urban_management.area_greened": "area_m2"},
)

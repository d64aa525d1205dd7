"""Heating (``schemas/heating.py``): estates connected to district heating (one estate per
event) and sections of heating main laid (0.4–2.2 km each).

Connections concentrate before the heating season starts on 15 November.
"""

from __future__ import annotations

from decimal import Decimal

from schemas import heating
from services.simulator.context import Context, Draft
from services.simulator.scenario import (
    Achieved,
    Correctable,
    FamilySimulator,
    Paced,
    Spread,
    Step,
)
from services.simulator.windows import ESTATE, M2, projects, windows

PIPE_SECTION_KM = (Decimal("0.4"), Decimal("2.2"))


def area_connected(ctx: Context, spec: Spread | Paced) -> list[Draft]:
    return projects(
        ctx,
        windows(ctx, spec),
        model=heating.HeatingAreaConnected,
        size=ESTATE,
        quantum=M2,
        rng=ctx.rng("heating.area_connected"),
        rotation="heating",
        name=ctx.names.estate,
        fields=lambda area: {"area_m2": area},
    )


def pipe_laid(ctx: Context, spec: Spread) -> list[Draft]:
    return projects(
        ctx,
        windows(ctx, spec),
        model=heating.HeatingPipeLaid,
        size=PIPE_SECTION_KM,
        quantum=Decimal("0.001"),
        rng=ctx.rng("heating.pipe_laid"),
        rotation="heating.pipe",
        name=ctx.names.pipe_section,
        fields=lambda km: {"length_km": km},
    )


# Both years' mains: laid from mid-March to the end of October.
MAINS = (((3, 16), (6, 30), "0.45"), ((7, 1), (10, 31), "0.55"))

SIMULATOR = FamilySimulator(
    family="heating",
    years={
        2022: (
            # Connected before the heating season starts on 15 November; a few late ones.
            Step(
                order=5,
                make=area_connected,
                spec=Spread(
                    Achieved(heating.CONNECTED_AREA_M2),
                    (
                        ((4, 1), (6, 30), "0.07"),
                        ((7, 1), (8, 31), "0.15"),
                        ((9, 1), (10, 31), "0.45"),
                        ((11, 1), (11, 15), "0.28"),
                        ((11, 16), (12, 20), "0.05"),
                    ),
                    unit="0.01",
                ),
            ),
            Step(
                order=6,
                make=pipe_laid,
                spec=Spread(Achieved(heating.PIPE_KM), MAINS, unit="0.001"),
            ),
        ),
        2024: (
            # Behind (52% of the seasonal curve): connections pile up before the season starts;
            # 98% by 15 November.
            Step(
                order=3,
                make=area_connected,
                spec=Paced(
                    "2024-heating-integration-area",
                    "0.52",
                    before=(((3, 16), (6, 30)), ((7, 1), (8, 31))),
                    after=(
                        ((9, 1), (10, 31), "0.60"),
                        ((11, 1), (11, 15), "0.37"),
                        ((11, 16), (12, 20), "0.03"),
                    ),
                ),
            ),
            # No pledge behind it: a plausible 8.6 km.
            Step(order=4, make=pipe_laid, spec=Spread("8.6", MAINS, unit="0.001")),
        ),
    },
    officials=("供热办 王磊", "供热办 孙丽"),
    correctable=(
        Correctable(
            order=1,
            event_type="heating.area_connected",
            field="area_m2",
            why_zh="现场复核：地下车库面积误计入供热面积",
            why_en="on-site check: the basement garage was counted as heated area",
            metric=heating.CONNECTED_AREA_M2,
        ),
    ),
    quantity_fields={"heating.area_connected": "area_m2", "heating.pipe_laid": "length_km"},
)

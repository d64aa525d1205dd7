"""Urban management family (``city.urban_management.v1``): lighting works (点亮工程), parks
and greening — the landscaping and lighting office of the Urban Management Bureau.

Metrics: ``urban_management.lighting_started``, ``urban_management.areas_lit`` (1 per
lighting area), ``urban_management.parks_opened`` (1 per park),
``urban_management.greened_area_m2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.family import EventKind, Family, ledger_field
from schemas.fields import Metric, metric_map, quantity
from schemas.milestones import ProjectMilestone, milestone_description, milestone_metric

LIGHTING_STARTED = "urban_management.lighting_started"
AREAS_LIT = "urban_management.areas_lit"
PARKS_OPENED = "urban_management.parks_opened"
GREENED_AREA_M2 = "urban_management.greened_area_m2"

# One event is one site (a park, a road verge, an estate's green). The zone greened
# 350,000 m² in all of 2022; 500,000 m² in one site is a whole year's work or a 万 mistake.
MAX_GREENED_M2 = 500_000

METRIC_SPECS: tuple[Metric, ...] = (
    milestone_metric(LIGHTING_STARTED, "urban_management", "areas"),
    milestone_metric(AREAS_LIT, "urban_management", "areas"),
    milestone_metric(PARKS_OPENED, "urban_management", "parks"),
    Metric(GREENED_AREA_M2, "urban_management", "m2", Decimal(MAX_GREENED_M2), 2),
)


class UrbanManagementLightingMilestone(ProjectMilestone):
    """A lighting area (main roads, a lake's surroundings, back alleys) whose works started
    (开工) or were completed and accepted (完工验收); counts 1 area in that milestone's
    metric."""

    event_type_name: ClassVar[str] = "urban_management.lighting_milestone"
    family: ClassVar[str] = "urban_management"
    counts: ClassVar[Mapping[str, str]] = {"started": LIGHTING_STARTED, "completed": AREAS_LIT}

    event_type: Literal["urban_management.lighting_milestone"] = (
        "urban_management.lighting_milestone"
    )
    milestone: Literal["started", "completed"] = Field(
        description=milestone_description(("started", "completed"))
    )


class UrbanManagementParkOpened(ProjectMilestone):
    """A park or pocket park (公园, 游园) opened to the public (开园); counts 1 park."""

    event_type_name: ClassVar[str] = "urban_management.park_opened"
    family: ClassVar[str] = "urban_management"
    counts: ClassVar[Mapping[str, str]] = {"opened": PARKS_OPENED}

    event_type: Literal["urban_management.park_opened"] = "urban_management.park_opened"
    milestone: Literal["opened"] = Field(
        default="opened", description=milestone_description(("opened",))
    )


class UrbanManagementAreaGreened(Envelope):
    """Area newly greened (m²); one site per event.

    Bound: 0 < area_m2 ≤ 500,000 m², 2 decimal places (the zone greened 350,000 m² in all
    of 2022).
    """

    event_type_name: ClassVar[str] = "urban_management.area_greened"
    family: ClassVar[str] = "urban_management"

    event_type: Literal["urban_management.area_greened"] = "urban_management.area_greened"
    area_m2: Decimal = quantity(
        maximum=MAX_GREENED_M2, places=2, description="area greened, m² (≤ 500,000)"
    )

    def measures(self) -> dict[str, Decimal]:
        return {GREENED_AREA_M2: self.area_m2}


class UrbanManagementCorrection(Correction):
    """A signed change to an urban management metric of one earlier event of the family."""

    event_type_name: ClassVar[str] = "urban_management.correction"
    family: ClassVar[str] = "urban_management"
    metrics: ClassVar[Mapping[str, Metric]] = metric_map(METRIC_SPECS)

    event_type: Literal["urban_management.correction"] = "urban_management.correction"


FAMILY = Family(
    name="urban_management",
    title_zh="亮化与园林",
    title_en="Lighting and landscaping",
    description=(
        "点亮工程片区、公园游园开园、新增绿化面积 · Lighting areas started and completed, "
        "parks opened, area greened."
    ),
    position=8,
    events=(
        EventKind(
            UrbanManagementLightingMilestone,
            "亮化片区节点",
            "Lighting area milestone",
            (LIGHTING_STARTED, AREAS_LIT),
            ledger_names=("亮化", "点亮工程", "亮化工程"),
            example={
                "project": "tianjian-lake",
                "project_name": "天健湖周边亮化",
                "milestone": "completed",
            },
        ),
        EventKind(
            UrbanManagementParkOpened,
            "公园开园",
            "Park opened",
            (PARKS_OPENED,),
            ledger_names=("公园开园", "游园开放", "新建公园"),
            example={"project": "科学谷游园", "project_name": "科学谷口袋公园"},
        ),
        EventKind(
            UrbanManagementAreaGreened,
            "新增绿化",
            "Area greened",
            (GREENED_AREA_M2,),
            ledger_names=("绿化", "新增绿化", "绿化面积"),
            example={"area_m2": "18500.00"},
        ),
    ),
    correction=UrbanManagementCorrection,
    correction_example={"metric": "urban_management.greened_area_m2", "delta": "-500.00"},
    metrics=METRIC_SPECS,
    ledger_fields=(
        ledger_field("milestone", "milestone", "节点 项目节点 进度节点 形象进度 milestone"),
        ledger_field("project_name", "text", "项目全称 项目名称全称"),
        ledger_field("area_m2", "decimal", "绿化面积 新增绿化面积", "area"),
    ),
    department_names=("城管", "城市管理局", "园林", "亮化"),
)

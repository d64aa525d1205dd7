"""Construction family (``city.construction.v1``): municipal road projects and public venues
reaching their milestones, and water and gas mains laid.

Metrics: ``construction.roads_approved``, ``construction.roads_started``,
``construction.roads_completed`` (1 per road), ``construction.venues_started``,
``construction.venues_opened`` (1 per venue), ``construction.water_main_km``,
``construction.gas_main_km``.
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

ROADS_APPROVED = "construction.roads_approved"
ROADS_STARTED = "construction.roads_started"
ROADS_COMPLETED = "construction.roads_completed"
VENUES_STARTED = "construction.venues_started"
VENUES_OPENED = "construction.venues_opened"
WATER_MAIN_KM = "construction.water_main_km"
GAS_MAIN_KM = "construction.gas_main_km"

# One event is one section of main. The zone laid 25 km of water mains and 13 km of gas
# mains in all of 2022; 30 km in one section is a metres-vs-kilometres mistake.
MAX_MAIN_KM = 30

METRIC_SPECS: tuple[Metric, ...] = (
    milestone_metric(ROADS_APPROVED, "construction", "roads"),
    milestone_metric(ROADS_STARTED, "construction", "roads"),
    milestone_metric(ROADS_COMPLETED, "construction", "roads"),
    milestone_metric(VENUES_STARTED, "construction", "buildings"),
    milestone_metric(VENUES_OPENED, "construction", "buildings"),
    Metric(WATER_MAIN_KM, "construction", "km", Decimal(MAX_MAIN_KM), 3),
    Metric(GAS_MAIN_KM, "construction", "km", Decimal(MAX_MAIN_KM), 3),
)

_ROAD_MILESTONES = ("approved", "started", "completed")
_VENUE_MILESTONES = ("started", "opened")


class ConstructionRoadMilestone(ProjectMilestone):
    """A municipal road project (one road, or one section of it between two crossings)
    approved (立项), started (开工) or completed (完工); counts 1 road in that milestone's
    metric."""

    event_type_name: ClassVar[str] = "construction.road_milestone"
    family: ClassVar[str] = "construction"
    counts: ClassVar[Mapping[str, str]] = {
        "approved": ROADS_APPROVED,
        "started": ROADS_STARTED,
        "completed": ROADS_COMPLETED,
    }

    event_type: Literal["construction.road_milestone"] = "construction.road_milestone"
    milestone: Literal["approved", "started", "completed"] = Field(
        description=milestone_description(_ROAD_MILESTONES)
    )


class ConstructionVenueMilestone(ProjectMilestone):
    """A public venue (科学会堂, a stadium, a library) started (开工) or completed and opened
    (建成投用); counts 1 building in that milestone's metric."""

    event_type_name: ClassVar[str] = "construction.venue_milestone"
    family: ClassVar[str] = "construction"
    counts: ClassVar[Mapping[str, str]] = {"started": VENUES_STARTED, "opened": VENUES_OPENED}

    event_type: Literal["construction.venue_milestone"] = "construction.venue_milestone"
    milestone: Literal["started", "opened"] = Field(
        description=milestone_description(_VENUE_MILESTONES)
    )


class ConstructionMainLaid(Envelope):
    """A section of water or gas main laid (km).

    Bound: 0 < length_km ≤ 30 km, 3 decimal places (the zone laid 25 km of water and 13 km
    of gas mains in all of 2022).
    """

    event_type_name: ClassVar[str] = "construction.main_laid"
    family: ClassVar[str] = "construction"

    event_type: Literal["construction.main_laid"] = "construction.main_laid"
    utility: Literal["water", "gas"] = Field(description="water (供水) or gas (燃气)")
    length_km: Decimal = quantity(
        maximum=MAX_MAIN_KM, places=3, description="length of main laid, km (≤ 30)"
    )

    def measures(self) -> dict[str, Decimal]:
        return {WATER_MAIN_KM if self.utility == "water" else GAS_MAIN_KM: self.length_km}


class ConstructionCorrection(Correction):
    """A signed change to a construction metric of one earlier construction event."""

    event_type_name: ClassVar[str] = "construction.correction"
    family: ClassVar[str] = "construction"
    metrics: ClassVar[Mapping[str, Metric]] = metric_map(METRIC_SPECS)

    event_type: Literal["construction.correction"] = "construction.correction"


FAMILY = Family(
    name="construction",
    title_zh="市政建设",
    title_en="Municipal construction",
    description=(
        "市政道路立项、开工、完工，公共场馆开工与投用，供水燃气管网 · Municipal roads "
        "approved, started and completed, public venues started and opened, water and gas "
        "mains laid."
    ),
    position=6,
    events=(
        EventKind(
            ConstructionRoadMilestone,
            "道路项目节点",
            "Road project milestone",
            (ROADS_APPROVED, ROADS_STARTED, ROADS_COMPLETED),
            ledger_names=("道路项目", "市政道路", "道路节点"),
            example={
                "project": "hongshan-road-lianhua-xinlong",
                "project_name": "红杉路（莲花街—新龙路）",
                "milestone": "started",
            },
        ),
        EventKind(
            ConstructionVenueMilestone,
            "场馆项目节点",
            "Venue milestone",
            (VENUES_STARTED, VENUES_OPENED),
            ledger_names=("公共场馆", "场馆项目", "场馆节点"),
            example={"project": "science-hall", "project_name": "科学会堂", "milestone": "opened"},
        ),
        EventKind(
            ConstructionMainLaid,
            "管网铺设",
            "Water or gas main laid",
            (WATER_MAIN_KM, GAS_MAIN_KM),
            ledger_names=("供水管网", "燃气管网", "管网铺设"),
            example={"utility": "water", "length_km": "1.850"},
        ),
    ),
    correction=ConstructionCorrection,
    correction_example={"metric": "construction.roads_started", "delta": "-1"},
    metrics=METRIC_SPECS,
    ledger_fields=(
        ledger_field("milestone", "milestone", "节点 项目节点 进度节点 形象进度 milestone"),
        ledger_field("project_name", "text", "项目全称 项目名称全称"),
        ledger_field("utility", "utility", "管网类型 管线类型 管网类别"),
        ledger_field(
            "length_km", "decimal", "长度 管网长度 管道长度 铺设长度 管线长度 length", "length"
        ),
    ),
    department_names=("建设", "建设局"),
)

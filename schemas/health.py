"""Health family (``city.health.v1``): medical institutions beginning family-bed service
(家庭病床) and hospital buildings started and opened.

Metrics: ``health.family_bed_institutions`` (1 per institution), ``health.buildings_started``,
``health.buildings_opened`` (1 per building).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from schemas.corrections import Correction
from schemas.family import EventKind, Family, ledger_field
from schemas.fields import Metric, metric_map
from schemas.milestones import ProjectMilestone, milestone_description, milestone_metric

FAMILY_BED_INSTITUTIONS = "health.family_bed_institutions"
BUILDINGS_STARTED = "health.buildings_started"
BUILDINGS_OPENED = "health.buildings_opened"

METRIC_SPECS: tuple[Metric, ...] = (
    milestone_metric(FAMILY_BED_INSTITUTIONS, "health", "institutions"),
    milestone_metric(BUILDINGS_STARTED, "health", "buildings"),
    milestone_metric(BUILDINGS_OPENED, "health", "buildings"),
)


class HealthFamilyBedsStarted(ProjectMilestone):
    """A medical institution (its name or code in ``project``) begins family-bed service
    (开展家庭病床服务); counts 1 institution. An institution is reported once."""

    event_type_name: ClassVar[str] = "health.family_beds_started"
    family: ClassVar[str] = "health"
    counts: ClassVar[Mapping[str, str]] = {"service_started": FAMILY_BED_INSTITUTIONS}

    event_type: Literal["health.family_beds_started"] = "health.family_beds_started"
    milestone: Literal["service_started"] = Field(
        default="service_started", description=milestone_description(("service_started",))
    )


class HealthBuildingMilestone(ProjectMilestone):
    """A hospital or clinic building started (开工) or opened to patients (开诊, 投用);
    counts 1 building in that milestone's metric."""

    event_type_name: ClassVar[str] = "health.building_milestone"
    family: ClassVar[str] = "health"
    counts: ClassVar[Mapping[str, str]] = {
        "started": BUILDINGS_STARTED,
        "opened": BUILDINGS_OPENED,
    }

    event_type: Literal["health.building_milestone"] = "health.building_milestone"
    milestone: Literal["started", "opened"] = Field(
        description=milestone_description(("started", "opened"))
    )


class HealthCorrection(Correction):
    """A signed change to a health metric of one earlier health event."""

    event_type_name: ClassVar[str] = "health.correction"
    family: ClassVar[str] = "health"
    metrics: ClassVar[Mapping[str, Metric]] = metric_map(METRIC_SPECS)

    event_type: Literal["health.correction"] = "health.correction"


FAMILY = Family(
    name="health",
    title_zh="卫生健康",
    title_en="Health",
    description=(
        "开展家庭病床服务的医疗机构、医院楼宇开工与开诊 · Medical institutions offering "
        "family beds, hospital buildings started and opened."
    ),
    position=9,
    events=(
        EventKind(
            HealthFamilyBedsStarted,
            "家庭病床服务",
            "Family-bed service started",
            (FAMILY_BED_INSTITUTIONS,),
            ledger_names=("家庭病床", "开展家庭病床", "家庭病床服务"),
            example={"project": "石佛社区卫生服务中心"},
        ),
        EventKind(
            HealthBuildingMilestone,
            "医疗楼宇节点",
            "Hospital building milestone",
            (BUILDINGS_STARTED, BUILDINGS_OPENED),
            ledger_names=("医院楼宇", "门诊大楼", "医疗项目"),
            example={
                "project": "central-hospital-gaoxin-outpatient",
                "project_name": "郑州市中心医院高新医院新门诊大楼",
                "milestone": "opened",
            },
        ),
    ),
    correction=HealthCorrection,
    correction_example={"metric": "health.family_bed_institutions", "delta": "-1"},
    metrics=METRIC_SPECS,
    ledger_fields=(
        ledger_field("milestone", "milestone", "节点 项目节点 进度节点 形象进度 milestone"),
        ledger_field("project_name", "text", "项目全称 项目名称全称 机构全称"),
    ),
    department_names=("卫健", "卫生健康", "社会事业局"),
)

"""Medical insurance family (``city.medical_insurance.v1``): comprehensive medical-insurance
service stations (综合性医保服务站) opened by the zone's Medical Insurance Centre.

Metric: ``medical_insurance.stations_opened`` (1 per station).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from schemas.corrections import Correction
from schemas.family import EventKind, Family, ledger_field
from schemas.fields import Metric, metric_map
from schemas.milestones import ProjectMilestone, milestone_description, milestone_metric

STATIONS_OPENED = "medical_insurance.stations_opened"

METRIC_SPECS: tuple[Metric, ...] = (
    milestone_metric(STATIONS_OPENED, "medical_insurance", "stations"),
)


class MedicalInsuranceStationOpened(ProjectMilestone):
    """A medical-insurance service station opened (挂牌运行); counts 1 station."""

    event_type_name: ClassVar[str] = "medical_insurance.station_opened"
    family: ClassVar[str] = "medical_insurance"
    counts: ClassVar[Mapping[str, str]] = {"opened": STATIONS_OPENED}

    event_type: Literal["medical_insurance.station_opened"] = "medical_insurance.station_opened"
    milestone: Literal["opened"] = Field(
        default="opened", description=milestone_description(("opened",))
    )


class MedicalInsuranceCorrection(Correction):
    """A signed change to a medical insurance metric of one earlier event of the family."""

    event_type_name: ClassVar[str] = "medical_insurance.correction"
    family: ClassVar[str] = "medical_insurance"
    metrics: ClassVar[Mapping[str, Metric]] = metric_map(METRIC_SPECS)

    event_type: Literal["medical_insurance.correction"] = "medical_insurance.correction"


FAMILY = Family(
    name="medical_insurance",
    title_zh="医疗保障",
    title_en="Medical insurance",
    description="综合性医保服务站投用 · Medical-insurance service stations opened.",
    position=10,
    events=(
        EventKind(
            MedicalInsuranceStationOpened,
            "医保服务站投用",
            "Service station opened",
            (STATIONS_OPENED,),
            ledger_names=("医保服务站", "医保站挂牌"),
            example={"project": "枫杨街道医保服务站"},
        ),
    ),
    correction=MedicalInsuranceCorrection,
    correction_example={"metric": "medical_insurance.stations_opened", "delta": "-1"},
    metrics=METRIC_SPECS,
    ledger_fields=(ledger_field("project_name", "text", "项目全称 项目名称全称 站点全称"),),
    department_names=("医保", "医保中心", "高新区医保中心"),
)

"""Urban renewal family (``city.renewal.v1``): renewal projects (城市更新, 产城更新) reaching
their milestones.

Metrics: ``renewal.projects_planned`` (implementation plan approved),
``renewal.projects_started``, ``renewal.projects_topped_out`` (1 per project each).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from schemas.corrections import Correction
from schemas.family import EventKind, Family, ledger_field
from schemas.fields import Metric, metric_map
from schemas.milestones import ProjectMilestone, milestone_description, milestone_metric

PROJECTS_PLANNED = "renewal.projects_planned"
PROJECTS_STARTED = "renewal.projects_started"
PROJECTS_TOPPED_OUT = "renewal.projects_topped_out"

METRIC_SPECS: tuple[Metric, ...] = (
    milestone_metric(PROJECTS_PLANNED, "renewal", "projects"),
    milestone_metric(PROJECTS_STARTED, "renewal", "projects"),
    milestone_metric(PROJECTS_TOPPED_OUT, "renewal", "projects"),
)

_MILESTONES = ("plan_approved", "started", "topped_out")


class RenewalProjectMilestone(ProjectMilestone):
    """An urban renewal project whose implementation plan is approved (谋划完成, 方案批复),
    whose construction started (启动建设) or whose main structure is topped out (主体封顶);
    counts 1 project in that milestone's metric."""

    event_type_name: ClassVar[str] = "renewal.project_milestone"
    family: ClassVar[str] = "renewal"
    counts: ClassVar[Mapping[str, str]] = {
        "plan_approved": PROJECTS_PLANNED,
        "started": PROJECTS_STARTED,
        "topped_out": PROJECTS_TOPPED_OUT,
    }

    event_type: Literal["renewal.project_milestone"] = "renewal.project_milestone"
    milestone: Literal["plan_approved", "started", "topped_out"] = Field(
        description=milestone_description(_MILESTONES)
    )


class RenewalCorrection(Correction):
    """A signed change to a renewal metric of one earlier renewal event."""

    event_type_name: ClassVar[str] = "renewal.correction"
    family: ClassVar[str] = "renewal"
    metrics: ClassVar[Mapping[str, Metric]] = metric_map(METRIC_SPECS)

    event_type: Literal["renewal.correction"] = "renewal.correction"


FAMILY = Family(
    name="renewal",
    title_zh="城市更新",
    title_en="Urban renewal",
    description=(
        "城市更新项目谋划、启动建设与封顶 · Urban renewal projects planned, started and topped out."
    ),
    position=7,
    events=(
        EventKind(
            RenewalProjectMilestone,
            "更新项目节点",
            "Renewal project milestone",
            (PROJECTS_PLANNED, PROJECTS_STARTED, PROJECTS_TOPPED_OUT),
            ledger_names=("城市更新", "更新项目", "更新项目节点"),
            example={
                "project": "renewal-phase-1",
                "project_name": "城市更新首期项目",
                "milestone": "started",
            },
        ),
    ),
    correction=RenewalCorrection,
    correction_example={"metric": "renewal.projects_started", "delta": "-1"},
    metrics=METRIC_SPECS,
    ledger_fields=(
        ledger_field("milestone", "milestone", "节点 项目节点 进度节点 形象进度 milestone"),
        ledger_field("project_name", "text", "项目全称 项目名称全称"),
    ),
    department_names=("城市更新", "更新办", "城市更新办"),
)

"""Education family (``city.education.v1``): schools opened, school places (学位) added,
school construction (新建续建) reported, and the kindergarten inclusive rate (普惠率) measured.

Metrics: ``education.schools_opened`` (1 per school), ``education.school_places``,
``education.school_construction_projects`` (1 per school site started or continued),
``education.schools_completed``, and the level ``education.kindergarten_inclusive_rate_pct``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.family import EventKind, Family, ledger_field
from schemas.fields import Count, Metric, Name, count, metric_map
from schemas.indicators import IndicatorReport, level_metric
from schemas.milestones import ProjectMilestone, milestone_description, milestone_metric

SCHOOLS_OPENED = "education.schools_opened"
SCHOOL_PLACES = "education.school_places"
CONSTRUCTION_PROJECTS = "education.school_construction_projects"
SCHOOLS_COMPLETED = "education.schools_completed"
INCLUSIVE_RATE_PCT = "education.kindergarten_inclusive_rate_pct"

SchoolLevel = Literal["kindergarten", "primary", "junior_secondary", "senior_secondary"]
"""幼儿园, 小学, 初中, 高中."""

# One event is one school. 2022 opened 10 schools with 18,420 places, about 1,840 each; the
# largest nine-year schools hold a few thousand pupils. A year's total sent as one event
# (18,420) is over the bound.
MAX_PLACES = 6_000

METRIC_SPECS: tuple[Metric, ...] = (
    Metric(SCHOOLS_OPENED, "education", "schools", Decimal(1), 0),
    Metric(SCHOOL_PLACES, "education", "places", Decimal(MAX_PLACES), 0),
    milestone_metric(CONSTRUCTION_PROJECTS, "education", "schools"),
    milestone_metric(SCHOOLS_COMPLETED, "education", "schools"),
    level_metric(INCLUSIVE_RATE_PCT, "education"),
)

_LEVEL = "kindergarten (幼儿园), primary (小学), junior_secondary (初中), senior_secondary (高中)"


class EducationSchoolOpened(Envelope):
    """A school opened (开学/投用); counts 1 school.

    Its places are reported with ``education.places_added`` (one event per school or
    expansion), so that opening a school and adding places are never counted twice.
    """

    event_type_name: ClassVar[str] = "education.school_opened"
    family: ClassVar[str] = "education"

    event_type: Literal["education.school_opened"] = "education.school_opened"
    school_name: Name = Field(description="name of the school, e.g. 外国语实验小学")
    level: SchoolLevel = Field(description=_LEVEL)

    def measures(self) -> dict[str, Decimal]:
        return {SCHOOLS_OPENED: Decimal(1)}


class EducationPlacesAdded(Envelope):
    """School places (学位) added at one school, new or expanded.

    Bound: 0 < places ≤ 6,000 (one school; 2022: 18,420 places across 10 new schools).
    """

    event_type_name: ClassVar[str] = "education.places_added"
    family: ClassVar[str] = "education"

    event_type: Literal["education.places_added"] = "education.places_added"
    places: Count = count(maximum=MAX_PLACES, description="school places added (≤ 6,000)")
    level: SchoolLevel = Field(description=_LEVEL)
    school_name: Name | None = Field(default=None, description="the school, if not in project")

    def measures(self) -> dict[str, Decimal]:
        return {SCHOOL_PLACES: Decimal(self.places)}


class EducationSchoolConstruction(ProjectMilestone):
    """Construction of a school site reported: a new start (新建开工), continued work on a
    site started in an earlier year (续建), or completion (竣工); started and continued count
    the site in ``education.school_construction_projects`` (新建续建), completed in
    ``education.schools_completed``. The opening is ``education.school_opened``."""

    event_type_name: ClassVar[str] = "education.school_construction"
    family: ClassVar[str] = "education"
    counts: ClassVar[Mapping[str, str]] = {
        "started": CONSTRUCTION_PROJECTS,
        "continued": CONSTRUCTION_PROJECTS,
        "completed": SCHOOLS_COMPLETED,
    }

    event_type: Literal["education.school_construction"] = "education.school_construction"
    milestone: Literal["started", "continued", "completed"] = Field(
        description=milestone_description(("started", "continued", "completed"))
    )
    level: SchoolLevel = Field(description=_LEVEL)


class EducationInclusiveRateReported(IndicatorReport):
    """The kindergarten inclusive rate (学前教育普惠率) as counted on ``occurred_at``: children
    in public and inclusive private kindergartens (numerator) over all kindergarten
    children (denominator), in percent; a level, not a sum (:mod:`schemas.indicators`)."""

    event_type_name: ClassVar[str] = "education.inclusive_rate_reported"
    family: ClassVar[str] = "education"
    metric: ClassVar[str] = INCLUSIVE_RATE_PCT

    event_type: Literal["education.inclusive_rate_reported"] = "education.inclusive_rate_reported"
    numerator: Count | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="children in public and inclusive (普惠性) kindergartens (在园幼儿)",
    )
    denominator: Count | None = Field(
        default=None, gt=0, le=1_000_000, description="all children in kindergartens (在园幼儿总数)"
    )


class EducationCorrection(Correction):
    """A signed change to an education metric of one earlier education event."""

    event_type_name: ClassVar[str] = "education.correction"
    family: ClassVar[str] = "education"
    metrics: ClassVar[Mapping[str, Metric]] = metric_map(METRIC_SPECS)

    event_type: Literal["education.correction"] = "education.correction"


FAMILY = Family(
    name="education",
    title_zh="教育",
    title_en="Education",
    description=(
        "新投用学校与新增学位，按街道 · Schools opened and school places added, per subdistrict."
    ),
    position=2,
    events=(
        EventKind(
            EducationSchoolOpened,
            "学校投用",
            "School opened",
            (SCHOOLS_OPENED,),
            ledger_names=("学校开学", "开学", "新建学校"),
            example={
                "project": "外国语实验小学",
                "school_name": "郑州高新区外国语实验小学",
                "level": "primary",
            },
        ),
        EventKind(
            EducationPlacesAdded,
            "新增学位",
            "School places added",
            (SCHOOL_PLACES,),
            ledger_names=("新增学位",),
            example={"places": 2160, "level": "primary", "school_name": "郑州高新区外国语实验小学"},
        ),
        EventKind(
            EducationSchoolConstruction,
            "学校建设",
            "School construction",
            (CONSTRUCTION_PROJECTS, SCHOOLS_COMPLETED),
            ledger_names=("学校建设", "新建续建", "学校工程"),
            example={
                "project": "yuxiang-road-primary",
                "project_name": "郁香路小学",
                "milestone": "continued",
                "level": "primary",
            },
        ),
        EventKind(
            EducationInclusiveRateReported,
            "普惠率",
            "Kindergarten inclusive rate",
            (INCLUSIVE_RATE_PCT,),
            ledger_names=("普惠率", "学前教育普惠率"),
            example={"numerator": 11230, "denominator": 12180},
        ),
    ),
    correction=EducationCorrection,
    correction_example={"metric": "education.school_places", "delta": "-45"},
    metrics=METRIC_SPECS,
    ledger_fields=(
        ledger_field("places", "count", "学位数 新增学位 新增学位数 学位", "count"),
        ledger_field("level", "school_level", "学段 办学层次"),
        ledger_field("school_name", "text", "学校名称 学校"),
        ledger_field("milestone", "milestone", "节点 项目节点 进度节点 形象进度 milestone"),
        ledger_field("project_name", "text", "项目全称 项目名称全称"),
        ledger_field("numerator", "count", "分子 普惠在园幼儿数 普惠性幼儿园在园幼儿数"),
        ledger_field("denominator", "count", "分母 在园幼儿总数 在园幼儿数"),
        ledger_field("level_pct", "decimal", "比例 百分比 普惠率"),
    ),
    department_names=("教育", "教育局"),
)

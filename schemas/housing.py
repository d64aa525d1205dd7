"""Housing family (``city.housing.v1``): resettlement housing (安置房) started, completed and
delivered, and households moving back (回迁).

Metrics: ``housing.started_area_m2``, ``housing.started_units``, ``housing.completed_area_m2``,
``housing.completed_units``, ``housing.returned_households``, ``housing.returned_persons``,
``housing.preliminary_works_started`` (1 per batch), and the level ``housing.return_rate_pct``
(the share of entitled households moved back, measured from time to time).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.family import EventKind, Family, ledger_field
from schemas.fields import Count, Metric, count, metric_map, quantity, rule_error
from schemas.indicators import IndicatorReport, level_metric
from schemas.milestones import ProjectMilestone, milestone_description, milestone_metric

STARTED_AREA_M2 = "housing.started_area_m2"
STARTED_UNITS = "housing.started_units"
COMPLETED_AREA_M2 = "housing.completed_area_m2"
COMPLETED_UNITS = "housing.completed_units"
RETURNED_HOUSEHOLDS = "housing.returned_households"
RETURNED_PERSONS = "housing.returned_persons"
PRELIMINARY_WORKS_STARTED = "housing.preliminary_works_started"
RETURN_RATE_PCT = "housing.return_rate_pct"

# One event is one building or one estate (phase). The zone completed 2,562,900 m² in all
# of 2022 across its resettlement projects, and signed 9,120 units / 799,400 m²; an event
# above 1,000,000 m² or 20,000 units is a 万-vs-unit mistake or a year's total.
MAX_AREA_M2 = 1_000_000
MAX_UNITS = 20_000
# One event is one village or estate moving back: 2022 saw 5 villages and 16,000 residents
# return, about 3,200 persons per village.
MAX_HOUSEHOLDS = 20_000
MAX_PERSONS = 100_000
# Floor area per unit: 2022's signed units averaged 88 m². Outside 10–1,000 m² per unit the
# area or the unit count is in the wrong unit (e.g. 79.94 meaning 79.94万㎡).
MIN_M2_PER_UNIT = 10
MAX_M2_PER_UNIT = 1_000
# A household has at least one person and rarely more than twenty.
MAX_PERSONS_PER_HOUSEHOLD = 20

METRIC_SPECS: tuple[Metric, ...] = (
    Metric(STARTED_AREA_M2, "housing", "m2", Decimal(MAX_AREA_M2), 2),
    Metric(STARTED_UNITS, "housing", "units", Decimal(MAX_UNITS), 0),
    Metric(COMPLETED_AREA_M2, "housing", "m2", Decimal(MAX_AREA_M2), 2),
    Metric(COMPLETED_UNITS, "housing", "units", Decimal(MAX_UNITS), 0),
    Metric(RETURNED_HOUSEHOLDS, "housing", "households", Decimal(MAX_HOUSEHOLDS), 0),
    Metric(RETURNED_PERSONS, "housing", "persons", Decimal(MAX_PERSONS), 0),
    milestone_metric(PRELIMINARY_WORKS_STARTED, "housing", "projects"),
    level_metric(RETURN_RATE_PCT, "housing"),
)

_AREA = "floor area, m² (≤ 1,000,000; one building or estate)"
_UNITS = "dwelling units, 套 (≤ 20,000)"


def _check_area_per_unit(area_m2: Decimal, units: int) -> None:
    per_unit = area_m2 / units
    if not MIN_M2_PER_UNIT <= per_unit <= MAX_M2_PER_UNIT:
        raise rule_error(
            "out_of_range",
            rule=f"{MIN_M2_PER_UNIT} <= area_m2 / units <= {MAX_M2_PER_UNIT}",
            zh=f"每套面积 {per_unit:.2f} m² 不合理（应在 {MIN_M2_PER_UNIT}–{MAX_M2_PER_UNIT} m²）；"
            "面积是否以万㎡填写？",
            en=f"gives {per_unit:.2f} m² per unit, outside {MIN_M2_PER_UNIT}–{MAX_M2_PER_UNIT} m²; "
            "was the area given in 万㎡?",
            field="area_m2",
            value=str(area_m2),
        )


class HousingConstructionStarted(Envelope):
    """Construction of resettlement housing started (新开工); one building or estate per event.

    Bounds: 0 < area_m2 ≤ 1,000,000 m²; optional 0 < units ≤ 20,000, and then
    10 ≤ area_m2 / units ≤ 1,000 m² per unit.
    """

    event_type_name: ClassVar[str] = "housing.construction_started"
    family: ClassVar[str] = "housing"

    event_type: Literal["housing.construction_started"] = "housing.construction_started"
    area_m2: Decimal = quantity(maximum=MAX_AREA_M2, places=2, description=_AREA)
    units: Count | None = count(maximum=MAX_UNITS, description=_UNITS + "; optional", default=None)

    @model_validator(mode="after")
    def _plausible(self) -> HousingConstructionStarted:
        if self.units is not None:
            _check_area_per_unit(self.area_m2, self.units)
        return self

    def measures(self) -> dict[str, Decimal]:
        out = {STARTED_AREA_M2: self.area_m2}
        if self.units is not None:
            out[STARTED_UNITS] = Decimal(self.units)
        return out


class HousingUnitsCompleted(Envelope):
    """Resettlement housing completed and delivered (竣工交付); one building or estate per event.

    Bounds: 0 < area_m2 ≤ 1,000,000 m², 0 < units ≤ 20,000, and
    10 ≤ area_m2 / units ≤ 1,000 m² per unit.
    """

    event_type_name: ClassVar[str] = "housing.units_completed"
    family: ClassVar[str] = "housing"

    event_type: Literal["housing.units_completed"] = "housing.units_completed"
    area_m2: Decimal = quantity(maximum=MAX_AREA_M2, places=2, description=_AREA)
    units: Count = count(maximum=MAX_UNITS, description=_UNITS)

    @model_validator(mode="after")
    def _plausible(self) -> HousingUnitsCompleted:
        _check_area_per_unit(self.area_m2, self.units)
        return self

    def measures(self) -> dict[str, Decimal]:
        return {COMPLETED_AREA_M2: self.area_m2, COMPLETED_UNITS: Decimal(self.units)}


class HousingHouseholdsReturned(Envelope):
    """Households and persons moved back into resettlement housing (回迁); one village or estate
    per event. At least one of households and persons is given.

    Bounds: 0 < households ≤ 20,000; 0 < persons ≤ 100,000 (2022: 5 villages, 16,000
    residents); with both, households ≤ persons ≤ 20 × households.
    """

    event_type_name: ClassVar[str] = "housing.households_returned"
    family: ClassVar[str] = "housing"

    event_type: Literal["housing.households_returned"] = "housing.households_returned"
    households: Count | None = count(
        maximum=MAX_HOUSEHOLDS, description="households moved back (≤ 20,000)", default=None
    )
    persons: Count | None = count(
        maximum=MAX_PERSONS, description="persons moved back (≤ 100,000)", default=None
    )

    @model_validator(mode="after")
    def _plausible(self) -> HousingHouseholdsReturned:
        if self.households is None and self.persons is None:
            raise rule_error(
                "missing_field",
                rule="households or persons required",
                zh="households（户数）和 persons（人数）至少填写一项",
                en="give households, persons or both",
                field="households",
            )
        if self.households is not None and self.persons is not None:
            most = self.households * MAX_PERSONS_PER_HOUSEHOLD
            if not self.households <= self.persons <= most:
                raise rule_error(
                    "out_of_range",
                    rule=f"households <= persons <= {MAX_PERSONS_PER_HOUSEHOLD} * households",
                    zh=f"{self.households} 户对应的人数应在 {self.households}–{most} 之间",
                    en=f"{self.households} households means {self.households}–{most} persons",
                    field="persons",
                    value=self.persons,
                )
        return self

    def measures(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        if self.households is not None:
            out[RETURNED_HOUSEHOLDS] = Decimal(self.households)
        if self.persons is not None:
            out[RETURNED_PERSONS] = Decimal(self.persons)
        return out


class HousingPreliminaryWorksStarted(ProjectMilestone):
    """Preliminary works (前期工作: planning, land, approvals) started on a batch of
    resettlement housing, before any construction; counts 1 batch."""

    event_type_name: ClassVar[str] = "housing.preliminary_works_started"
    family: ClassVar[str] = "housing"
    counts: ClassVar[Mapping[str, str]] = {"preliminary_started": PRELIMINARY_WORKS_STARTED}

    event_type: Literal["housing.preliminary_works_started"] = "housing.preliminary_works_started"
    milestone: Literal["preliminary_started"] = Field(
        default="preliminary_started", description=milestone_description(("preliminary_started",))
    )


class HousingReturnRateReported(IndicatorReport):
    """The share of households entitled to resettlement that have moved back (累计回迁率),
    as counted on ``occurred_at``: households moved back (numerator) over households
    entitled (denominator), cumulative since the resettlement began, in percent; a level,
    not a sum (:mod:`schemas.indicators`)."""

    event_type_name: ClassVar[str] = "housing.return_rate_reported"
    family: ClassVar[str] = "housing"
    metric: ClassVar[str] = RETURN_RATE_PCT

    event_type: Literal["housing.return_rate_reported"] = "housing.return_rate_reported"
    numerator: Count | None = Field(
        default=None, ge=0, le=1_000_000, description="households moved back so far (已回迁户数)"
    )
    denominator: Count | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="households entitled to resettlement (应回迁户数)",
    )


class HousingCorrection(Correction):
    """A signed change to a housing metric of one earlier housing event."""

    event_type_name: ClassVar[str] = "housing.correction"
    family: ClassVar[str] = "housing"
    metrics: ClassVar[Mapping[str, Metric]] = metric_map(METRIC_SPECS)

    event_type: Literal["housing.correction"] = "housing.correction"


FAMILY = Family(
    name="housing",
    title_zh="安置房",
    title_en="Resettlement housing",
    description=(
        "安置房新开工、竣工交付与回迁，按街道 · Resettlement housing started, "
        "completed and delivered, and households moved back, per subdistrict."
    ),
    position=1,
    events=(
        EventKind(
            HousingConstructionStarted,
            "安置房新开工",
            "Construction started",
            (STARTED_AREA_M2, STARTED_UNITS),
            ledger_names=("新开工", "开工"),
            example={"area_m2": "358000.00", "units": 3200},
        ),
        EventKind(
            HousingUnitsCompleted,
            "竣工交付",
            "Completed and delivered",
            (COMPLETED_AREA_M2, COMPLETED_UNITS),
            ledger_names=("竣工交付", "竣工", "交付"),
            example={"area_m2": 79940.5, "units": 912},
        ),
        EventKind(
            HousingHouseholdsReturned,
            "回迁",
            "Households moved back",
            (RETURNED_HOUSEHOLDS, RETURNED_PERSONS),
            ledger_names=("回迁",),
            example={"households": 850, "persons": 3200},
        ),
        EventKind(
            HousingPreliminaryWorksStarted,
            "启动前期工作",
            "Preliminary works started",
            (PRELIMINARY_WORKS_STARTED,),
            ledger_names=("前期工作", "启动前期工作"),
            example={
                "project": "cooperation-zone-batch-1",
                "project_name": "合作共建区首批安置房",
            },
        ),
        EventKind(
            HousingReturnRateReported,
            "回迁率",
            "Return rate",
            (RETURN_RATE_PCT,),
            ledger_names=("回迁率", "累计回迁率"),
            example={"numerator": 9420, "denominator": 10000},
        ),
    ),
    correction=HousingCorrection,
    correction_example={"metric": "housing.completed_units", "delta": "-12"},
    metrics=METRIC_SPECS,
    ledger_fields=(
        ledger_field("area_m2", "decimal", "面积 建筑面积 开工面积 竣工面积 交付面积 area", "area"),
        ledger_field("units", "count", "套数 房屋套数 安置房套数", "count"),
        ledger_field("households", "count", "户数 回迁户数 安置户数", "count"),
        ledger_field("persons", "count", "人数 回迁人数 安置人数", "count"),
        ledger_field("project_name", "text", "项目全称 项目名称全称"),
        ledger_field("numerator", "count", "分子 已回迁户数 累计回迁户数"),
        ledger_field("denominator", "count", "分母 应回迁户数 应安置户数"),
        ledger_field("level_pct", "decimal", "比例 百分比 回迁率 累计回迁率"),
    ),
    department_names=("安置房", "住建", "住房"),
)

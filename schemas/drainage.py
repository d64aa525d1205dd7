"""Drainage family (``city.drainage.v1``): waterlogging points (易涝点) repaired.

Metric: ``drainage.points_repaired`` (1 per point). The pledge is a list of named points,
each repaired or not, so every event names its point.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.family import EventKind, Family, ledger_field
from schemas.fields import Metric, Name, metric_map

POINTS_REPAIRED = "drainage.points_repaired"

METRIC_SPECS: tuple[Metric, ...] = (Metric(POINTS_REPAIRED, "drainage", "points", Decimal(1), 0),)

# The zone's 99 km² lie around 34.8° N, 113.55° E. The box is tens of kilometres wider on
# every side, so imprecise GPS and GCJ-02 offsets pass, while swapped lat/lon, 0/0 and
# points in another city fail.
LAT_MIN, LAT_MAX = 34.6, 35.0
LON_MIN, LON_MAX = 113.3, 113.8


class Location(BaseModel):
    """WGS-84 (or GCJ-02) degrees, within a box around the zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=LAT_MIN, le=LAT_MAX, allow_inf_nan=False, description="latitude, °N")
    lon: float = Field(ge=LON_MIN, le=LON_MAX, allow_inf_nan=False, description="longitude, °E")


class DrainagePointRepaired(Envelope):
    """A waterlogging point repaired (积水点改造完成); counts 1 point."""

    event_type_name: ClassVar[str] = "drainage.point_repaired"
    family: ClassVar[str] = "drainage"

    event_type: Literal["drainage.point_repaired"] = "drainage.point_repaired"
    point_name: Name = Field(description="name of the waterlogging point, e.g. 科学大道与长椿路口")
    location: Location | None = Field(default=None, description="where the point is, if known")

    def measures(self) -> dict[str, Decimal]:
        return {POINTS_REPAIRED: Decimal(1)}


class DrainageCorrection(Correction):
    """A signed change to a drainage metric of one earlier drainage event."""

    event_type_name: ClassVar[str] = "drainage.correction"
    family: ClassVar[str] = "drainage"
    metrics: ClassVar[Mapping[str, Metric]] = metric_map(METRIC_SPECS)

    event_type: Literal["drainage.correction"] = "drainage.correction"


FAMILY = Family(
    name="drainage",
    title_zh="排水防涝",
    title_en="Drainage",
    description="积水点改造，按街道 · Waterlogging points repaired, per subdistrict.",
    position=5,
    events=(
        EventKind(
            DrainagePointRepaired,
            "积水点改造",
            "Waterlogging point repaired",
            (POINTS_REPAIRED,),
            ledger_names=("易涝点整治", "积水点整治"),
            example={
                "project": "科学大道积水点改造",
                "point_name": "科学大道与长椿路口",
                "location": {"lat": 34.8157, "lon": 113.5521},
            },
        ),
    ),
    correction=DrainageCorrection,
    correction_example={"metric": "drainage.points_repaired", "delta": "-1"},
    metrics=METRIC_SPECS,
    ledger_fields=(
        ledger_field("point_name", "text", "点位名称 点位 积水点 积水点名称 易涝点 易涝点名称"),
        ledger_field("location", "passthrough"),
        ledger_field("location.lat", "float", "纬度 lat latitude"),
        ledger_field("location.lon", "float", "经度 lon lng longitude"),
    ),
    department_names=("排水", "排水防汛"),
)

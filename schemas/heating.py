"""Heating family (``city.heating.v1``): area connected to the district heating network,
and heating pipe laid.

Metrics: ``heating.connected_area_m2``, ``heating.pipe_km``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar, Literal

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.family import EventKind, Family, ledger_field
from schemas.fields import Metric, metric_map, quantity

CONNECTED_AREA_M2 = "heating.connected_area_m2"
PIPE_KM = "heating.pipe_km"

# One event is one building or estate (or the estates behind one heat-exchange station).
# 5,000,000 m² would be a whole new district: the zone connected 1,420,000 m² in all of
# 2022. Kept from the first contract, which events already in the ledger were judged by.
MAX_AREA_M2 = 5_000_000
# One event is one section of network. The zone laid 11 km of heating mains in all of 2022;
# 50 km in one section is a metres-vs-kilometres mistake.
MAX_PIPE_KM = 50

METRIC_SPECS: tuple[Metric, ...] = (
    Metric(CONNECTED_AREA_M2, "heating", "m2", Decimal(MAX_AREA_M2), 2),
    Metric(PIPE_KM, "heating", "km", Decimal(MAX_PIPE_KM), 3),
)


class HeatingAreaConnected(Envelope):
    """Floor area (m²) newly connected to district heating; one building or estate per event.

    Bound: 0 < area_m2 ≤ 5,000,000 m², 2 decimal places (a whole new district; the zone
    connected 1,420,000 m² in all of 2022).
    """

    event_type_name: ClassVar[str] = "heating.area_connected"
    family: ClassVar[str] = "heating"

    event_type: Literal["heating.area_connected"] = "heating.area_connected"
    area_m2: Decimal = quantity(
        maximum=MAX_AREA_M2, places=2, description="heated floor area connected, m² (≤ 5,000,000)"
    )

    def measures(self) -> dict[str, Decimal]:
        return {CONNECTED_AREA_M2: self.area_m2}


class HeatingPipeLaid(Envelope):
    """Heating network laid (trench length, km); one section of network per event.

    Bound: 0 < length_km ≤ 50 km, 3 decimal places (metre precision); the zone laid 11 km
    of heating mains in all of 2022.
    """

    event_type_name: ClassVar[str] = "heating.pipe_laid"
    family: ClassVar[str] = "heating"

    event_type: Literal["heating.pipe_laid"] = "heating.pipe_laid"
    length_km: Decimal = quantity(
        maximum=MAX_PIPE_KM, places=3, description="length of heating pipe laid, km (≤ 50)"
    )

    def measures(self) -> dict[str, Decimal]:
        return {PIPE_KM: self.length_km}


class HeatingCorrection(Correction):
    """A signed change to a heating metric of one earlier heating event."""

    event_type_name: ClassVar[str] = "heating.correction"
    family: ClassVar[str] = "heating"
    metrics: ClassVar[Mapping[str, Metric]] = metric_map(METRIC_SPECS)

    event_type: Literal["heating.correction"] = "heating.correction"


FAMILY = Family(
    name="heating",
    title_zh="供热",
    title_en="Heating",
    description=(
        "新增供热面积与供热管网，按街道 · Heating area connected and heating network "
        "laid, per subdistrict."
    ),
    position=3,
    events=(
        EventKind(
            HeatingAreaConnected,
            "供热入网",
            "Heating area connected",
            (CONNECTED_AREA_M2,),
            ledger_names=("供热面积", "新增供热面积", "供热入网"),
            example={"area_m2": "12000.50"},
        ),
        EventKind(
            HeatingPipeLaid,
            "供热管网",
            "Heating pipe laid",
            (PIPE_KM,),
            ledger_names=("供热管网", "铺设管网"),
            example={"length_km": "2.375"},
        ),
    ),
    correction=HeatingCorrection,
    correction_example={"metric": "heating.connected_area_m2", "delta": "-120.50"},
    metrics=METRIC_SPECS,
    ledger_fields=(
        ledger_field(
            "area_m2", "decimal", "面积 供热面积 新增供热面积 入网面积 并网面积 接入面积", "area"
        ),
        ledger_field(
            "length_km", "decimal", "长度 管网长度 管道长度 铺设长度 管线长度 length", "length"
        ),
    ),
    department_names=("供热", "供热办"),
)

"""Heating family (``city.heating.v1``): area connected to the district heating network."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field

from schemas.envelope import Envelope

CONNECTED_AREA_M2 = "heating.connected_area_m2"


class HeatingAreaConnected(Envelope):
    """Floor area (m²) newly connected to heating; one building or estate per event."""

    event_type_name: ClassVar[str] = "heating.area_connected"
    family: ClassVar[str] = "heating"

    event_type: Literal["heating.area_connected"] = "heating.area_connected"
    # One event is one building or estate: 5,000,000 m² would be a whole new district.
    area_m2: Decimal = Field(gt=0, le=5_000_000, max_digits=12, decimal_places=2)

    def measures(self) -> dict[str, Decimal]:
        return {CONNECTED_AREA_M2: self.area_m2}

"""Parking family (``city.parking.v1``): parking spaces (temporary or permanent) and car
parks opened.

Metrics: ``parking.temporary_spaces``, ``parking.permanent_spaces``,
``parking.lots_opened`` (1 per car park).

A car park's own spaces are counted by its ``parking.lot_opened`` event: opening a car
park with 300 temporary spaces is one fact, so it is one event adding 1 lot and 300
temporary spaces. ``parking.spaces_opened`` is for spaces outside a new car park
(on-street spaces, spaces added to an existing car park). Never send both for the same
spaces.
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

TEMPORARY_SPACES = "parking.temporary_spaces"
PERMANENT_SPACES = "parking.permanent_spaces"
LOTS_OPENED = "parking.lots_opened"

SpaceKind = Literal["temporary", "permanent"]
SPACES_METRIC: dict[str, str] = {"temporary": TEMPORARY_SPACES, "permanent": PERMANENT_SPACES}

# One event is one site. 2022 opened 12,620 temporary spaces in 14 car parks, about 900
# each; the largest underground garages hold a few thousand.
MAX_SPACES = 5_000

METRIC_SPECS: tuple[Metric, ...] = (
    Metric(TEMPORARY_SPACES, "parking", "spaces", Decimal(MAX_SPACES), 0),
    Metric(PERMANENT_SPACES, "parking", "spaces", Decimal(MAX_SPACES), 0),
    Metric(LOTS_OPENED, "parking", "lots", Decimal(1), 0),
)

_KIND = "temporary (临时) or permanent (永久)"
_SPACES = "parking spaces (≤ 5,000; one site)"


class ParkingSpacesOpened(Envelope):
    """Parking spaces opened outside a new car park (on-street, added to an existing lot).

    Bound: 0 < spaces ≤ 5,000 (one site; 2022: 12,620 temporary spaces in 14 car parks).
    """

    event_type_name: ClassVar[str] = "parking.spaces_opened"
    family: ClassVar[str] = "parking"

    event_type: Literal["parking.spaces_opened"] = "parking.spaces_opened"
    kind: SpaceKind = Field(description=_KIND)
    spaces: Count = count(maximum=MAX_SPACES, description=_SPACES)

    def measures(self) -> dict[str, Decimal]:
        return {SPACES_METRIC[self.kind]: Decimal(self.spaces)}


class ParkingLotOpened(Envelope):
    """A car park opened: counts 1 lot, and its spaces under their kind.

    Bound: 0 < spaces ≤ 5,000.
    """

    event_type_name: ClassVar[str] = "parking.lot_opened"
    family: ClassVar[str] = "parking"

    event_type: Literal["parking.lot_opened"] = "parking.lot_opened"
    lot_name: Name = Field(description="name of the car park")
    kind: SpaceKind = Field(description=_KIND)
    spaces: Count = count(maximum=MAX_SPACES, description=_SPACES)

    def measures(self) -> dict[str, Decimal]:
        return {LOTS_OPENED: Decimal(1), SPACES_METRIC[self.kind]: Decimal(self.spaces)}


class ParkingCorrection(Correction):
    """A signed change to a parking metric of one earlier parking event."""

    event_type_name: ClassVar[str] = "parking.correction"
    family: ClassVar[str] = "parking"
    metrics: ClassVar[Mapping[str, Metric]] = metric_map(METRIC_SPECS)

    event_type: Literal["parking.correction"] = "parking.correction"


FAMILY = Family(
    name="parking",
    title_zh="停车",
    title_en="Parking",
    description=(
        "临时与固定停车位、新建停车场，按街道 · Temporary and permanent parking "
        "spaces and car parks opened, per subdistrict."
    ),
    position=4,
    events=(
        EventKind(
            ParkingSpacesOpened,
            "停车位开放",
            "Parking spaces opened",
            (TEMPORARY_SPACES, PERMANENT_SPACES),
            ledger_names=("新增车位",),
            example={"kind": "temporary", "spaces": 180},
        ),
        EventKind(
            ParkingLotOpened,
            "停车场投用",
            "Car park opened",
            (LOTS_OPENED, TEMPORARY_SPACES, PERMANENT_SPACES),
            ledger_names=("新建停车场", "停车场开放"),
            example={"lot_name": "科学大道临时停车场", "kind": "temporary", "spaces": 420},
        ),
    ),
    correction=ParkingCorrection,
    correction_example={"metric": "parking.temporary_spaces", "delta": "20"},
    metrics=METRIC_SPECS,
    ledger_fields=(
        ledger_field("spaces", "count", "车位数 车位 新增车位 泊位数 泊位", "count"),
        ledger_field("kind", "space_kind", "车位类型 车位性质 泊位类型"),
        ledger_field("lot_name", "text", "停车场名称 停车场"),
    ),
    department_names=("停车", "停车办"),
)

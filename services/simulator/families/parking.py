"""Parking (``schemas/parking.py``): car parks opened (50–600 spaces, one per event) and
temporary spaces on idle plots (20–200 per plot), with a spring and summer peak.

A car park's spaces come with its ``parking.lot_opened``: a temporary car park's spaces are
part of the year's temporary spaces, a permanent garage's are permanent spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from schemas import parking
from services.simulator.context import Context, Draft, moment
from services.simulator.scenario import Achieved, Amount, Correctable, FamilySimulator, Step
from services.simulator.windows import ONE, amount, apportion, projects, share_windows

# Car parks and temporary spaces by month (%): a spring and summer peak.
MONTHS = (3, 3, 8, 12, 13, 13, 12, 11, 9, 7, 5, 4)


@dataclass(frozen=True)
class CarParks:
    """The year's car parks and temporary spaces."""

    lots: Amount
    # Of them permanent garages: at most a quarter of the car parks.
    permanent: int
    temporary_spaces: Amount
    # Whether ``temporary_spaces`` includes the temporary car parks' own spaces (a reported
    # figure does) or counts only the spaces on idle plots.
    spaces_include_lots: bool


def car_parks(ctx: Context, spec: CarParks) -> list[Draft]:
    rng = ctx.rng("parking")
    months = [ctx.month(m) for m in range(1, 13)]
    shares = [Decimal(p) / 100 for p in MONTHS]
    lots = int(amount(ctx, spec.lots))
    permanent = min(spec.permanent, lots // 4)
    drafts = []
    lot_spaces = 0
    for temporary, n in ((True, lots - permanent), (False, permanent)):
        for (start, end), k in zip(months, apportion(n, shares), strict=True):
            for _ in range(k):
                district = ctx.district("parking.lot")
                size = rng.randint(50, 400) if temporary else rng.randint(150, 600)
                lot_spaces += size if temporary else 0
                name = ctx.names.car_park(district, temporary=temporary)
                drafts.append(
                    Draft(
                        parking.ParkingLotOpened,
                        district,
                        moment(rng, start, end),
                        name,
                        {
                            "lot_name": name,
                            "kind": "temporary" if temporary else "permanent",
                            "spaces": size,
                        },
                    )
                )
    on_plots = int(amount(ctx, spec.temporary_spaces))
    if spec.spaces_include_lots:
        on_plots -= lot_spaces
    by_month = [
        (start, end, str(share)) for (start, end), share in zip(months, shares, strict=True)
    ]
    return drafts + projects(
        ctx,
        share_windows(Decimal(on_plots), by_month, ONE),
        model=parking.ParkingSpacesOpened,
        size=(Decimal(20), Decimal(200)),
        quantum=ONE,
        rng=rng,
        rotation="parking.spaces",
        name=ctx.names.idle_plot,
        fields=lambda spaces: {"kind": "temporary", "spaces": int(spaces)},
    )


SIMULATOR = FamilySimulator(
    family="parking",
    years={
        # 14 car parks: 11 temporary ones on idle plots, whose spaces are part of the 12,620
        # temporary spaces, and 3 permanent garages (permanent spaces 2022 did not report).
        2022: (
            Step(
                order=7,
                make=car_parks,
                spec=CarParks(
                    Achieved(parking.LOTS_OPENED),
                    permanent=3,
                    temporary_spaces=Achieved(parking.TEMPORARY_SPACES),
                    spaces_include_lots=True,
                ),
            ),
        ),
        # No pledge behind it: 8 car parks (2 permanent) and 5,200 further temporary spaces.
        2024: (
            Step(
                order=6,
                make=car_parks,
                spec=CarParks("8", permanent=2, temporary_spaces="5200", spaces_include_lots=False),
            ),
        ),
    },
    officials=("停车办 张伟", "停车办 周静"),
    correctable=(
        Correctable(
            order=3,
            event_type="parking.lot_opened",
            field="spaces",
            why_zh="现场清点车位数少于报送数（消防通道不得划线）",
            why_en="on-site count found fewer spaces (fire lanes may not be marked)",
            metric=lambda fields: parking.SPACES_METRIC[fields["kind"]],
        ),
    ),
    quantity_fields={"parking.spaces_opened": "spaces", "parking.lot_opened": "spaces"},
)

"""Drainage (``schemas/drainage.py``): waterlogging points repaired, one point per event,
most before the flood season starts on 1 June.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import drainage
from schemas.districts import District
from services.simulator.context import Context, Draft, moment
from services.simulator.scenario import Day, FamilySimulator, Step
from services.simulator.windows import days


@dataclass(frozen=True)
class Points:
    """Points repaired per window (first day, last day, points)."""

    windows: tuple[tuple[Day, Day, int], ...]
    # A pledge's named location: every point along ``road`` booked under ``project``.
    project: str | None = None
    road: tuple[District, str] | None = None


def points_repaired(ctx: Context, spec: Points) -> list[Draft]:
    rng = ctx.rng(f"drainage:{spec.project or ''}")
    drafts = []
    for first, last, n in spec.windows:
        for _ in range(n):
            district = spec.road[0] if spec.road else ctx.district("drainage")
            name = ctx.names.crossing(district, spec.road[1] if spec.road else None)
            lat, lon = ctx.names.location(district)
            drafts.append(
                Draft(
                    drainage.DrainagePointRepaired,
                    district,
                    moment(rng, *days(ctx, first, last)),
                    spec.project or f"{name}积水点改造",
                    {"point_name": name, "location": {"lat": lat, "lon": lon}},
                )
            )
    return drafts


SIMULATOR = FamilySimulator(
    family="drainage",
    years={
        # No 2022 figure: 36 points, before the flood season and after the summer storms.
        2022: (
            Step(
                order=8,
                make=points_repaired,
                spec=Points((((3, 1), (5, 31), 26), ((6, 1), (8, 31), 4), ((9, 1), (11, 30), 6))),
            ),
        ),
        # The pledge's two named locations are done before the flood season (both on track),
        # and 9 more points.
        2024: (
            Step(
                order=7,
                make=points_repaired,
                spec=Points(
                    (((3, 4), (5, 24), 4),),
                    project="kexue-avenue",
                    road=(District.SHIFO, "科学大道"),
                ),
            ),
            Step(
                order=8,
                make=points_repaired,
                spec=Points(
                    (((4, 1), (5, 28), 3),),
                    project="west-3rd-ring-north-extension",
                    road=(District.FENGYANG, "西三环北延段"),
                ),
            ),
            Step(
                order=9,
                make=points_repaired,
                spec=Points((((3, 1), (5, 31), 6), ((6, 1), (10, 31), 3))),
            ),
        ),
    },
    officials=("排水办 吴刚", "排水办 郑芳"),
)

"""Health (``schemas/health.py``): medical institutions beginning family-bed service (one
institution per event) and hospital buildings opened.

Institutions join one by one through the year, as each trains its home-visit teams; a
building opens when its acceptance and licensing are done, here late in the year.
"""

from __future__ import annotations

from schemas import health
from schemas.districts import District
from services.simulator.milestones import Counted, Project, Projects, counted, projects
from services.simulator.names import Names
from services.simulator.scenario import FamilySimulator, Step, Target

SIMULATOR = FamilySimulator(
    family="health",
    years={
        2024: (
            # At risk on 31 August: 3 institutions (March, May, July) where the linear
            # schedule expects 3.3; at that pace the fifth joins in February 2025. Two more
            # join in October and December.
            Step(
                order=24,
                make=counted,
                spec=Counted(
                    health.HealthFamilyBedsStarted,
                    "service_started",
                    Target("2024-health-family-bed-institutions"),
                    (
                        ((3, 4), (3, 29), "0.2"),
                        ((5, 6), (5, 31), "0.2"),
                        ((7, 1), (7, 26), "0.2"),
                        ((10, 8), (10, 31), "0.2"),
                        ((12, 2), (12, 20), "0.2"),
                    ),
                    rotation="health.family_beds",
                    name=Names.clinic,
                ),
            ),
            # The new outpatient building receives its first patients in December: nothing
            # is due before 31 December, so the pledge is on track on 31 August.
            Step(
                order=25,
                make=projects,
                spec=Projects(
                    health.HealthBuildingMilestone,
                    (
                        Project(
                            (("opened", (12, 2), (12, 20)),),
                            code="central-hospital-gaoxin-outpatient",
                            name="郑州市中心医院高新医院新门诊大楼",
                            district=District.ZONE,
                        ),
                    ),
                    rotation="health.buildings",
                ),
            ),
        ),
    },
    officials=("卫健委 冯涛", "卫健委 许丹"),
)

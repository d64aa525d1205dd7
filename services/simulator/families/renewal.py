"""Urban renewal (``schemas/renewal.py``): renewal projects whose implementation plan is
approved, whose construction starts, or whose main structure is topped out (one project per
event).

Plans are approved through the year, as each area's surveys and hearings end; construction
starts and topping-out follow in the construction season.
"""

from __future__ import annotations

from schemas import renewal
from schemas.districts import District
from services.simulator.milestones import Counted, Project, Projects, counted, projects
from services.simulator.names import Names
from services.simulator.scenario import Achieved, FamilySimulator, Step

SIMULATOR = FamilySimulator(
    family="renewal",
    years={
        # The industry-city renewal area's first project topped out in the autumn.
        2022: (
            Step(
                order=12,
                make=counted,
                spec=Counted(
                    renewal.RenewalProjectMilestone,
                    "topped_out",
                    Achieved(renewal.PROJECTS_TOPPED_OUT),
                    (((10, 10), (11, 30), "1"),),
                    rotation="renewal.topped_out",
                    name=Names.renewal_project,
                ),
            ),
        ),
        # Five plans approved by 23 August (achieved on 31 August): the first-phase project
        # in February, then one project in each of the four priority areas, reported under
        # the area's code. The first-phase project starts in November: nothing is due before
        # 31 December, so that pledge is on track on 31 August.
        2024: (
            Step(
                order=20,
                make=projects,
                spec=Projects(
                    renewal.RenewalProjectMilestone,
                    (
                        Project(
                            (
                                ("plan_approved", (2, 19), (3, 8)),
                                ("started", (11, 4), (11, 29)),
                            ),
                            code="renewal-phase-1",
                            name="城市更新首期项目",
                            district=District.ZONE,
                        ),
                        Project(
                            (("plan_approved", (4, 8), (4, 30)),),
                            code="zhongyuan-pharmaceutical-factory",
                            name="中原制药厂片区城市更新项目",
                            district=District.ZONE,
                        ),
                        Project(
                            (("plan_approved", (5, 13), (6, 7)),),
                            code="xiliuhu-b7",
                            name="西流湖B7片区城市更新项目",
                            district=District.ZONE,
                        ),
                        Project(
                            (("plan_approved", (6, 24), (7, 19)),),
                            code="zhangwuzhai",
                            name="张五砦片区城市更新项目",
                            district=District.ZONE,
                        ),
                        Project(
                            (("plan_approved", (8, 5), (8, 23)),),
                            code="dianchang-road",
                            name="电厂路片区城市更新项目",
                            district=District.ZONE,
                        ),
                    ),
                    rotation="renewal.projects",
                ),
            ),
        ),
    },
    officials=("城市更新办 高远", "城市更新办 林静"),
)

"""A named project reaching a milestone on a date: the one shape the project-based families
share (roads, venues, renewal projects, lighting areas, parks, school sites, hospital
buildings, family-bed services, cooperation-zone housing).

What a department records for such work is not a quantity but an event in a project's life:
"红杉路 started on 12 April", "科学会堂 opened on 28 September". Each family subclasses
:class:`ProjectMilestone` with the milestones its projects go through and the metric each one
counts (one project, once); ``occurred_at`` is the day the milestone was reached, ``project``
names the project (a pledge's item code, such as ``science-hall``, when the pledge names it).

The milestone codes are one vocabulary (:data:`MILESTONES`) so that a clerk's 开工 means
``started`` in every family's ledger (services/ledger_import/cells.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import Field

from schemas.envelope import Envelope
from schemas.fields import Metric, Name

# code → (中文 label, other names clerks write for it). Every family draws from these.
MILESTONES: dict[str, tuple[str, tuple[str, ...]]] = {
    "approved": ("立项批复", ("立项", "批复", "项目批复", "可研批复")),
    "plan_approved": ("实施方案批复", ("方案批复", "方案获批", "谋划完成")),
    "preliminary_started": ("启动前期工作", ("启动前期", "前期启动", "前期工作")),
    "started": ("开工", ("开工建设", "启动建设", "新开工", "动工")),
    "continued": ("续建", ("续建施工", "持续施工")),
    "topped_out": ("主体封顶", ("封顶", "结构封顶")),
    "completed": ("完工", ("竣工", "建成", "完工验收", "竣工验收", "验收")),
    "opened": ("投用", ("建成投用", "开放", "投入使用", "开诊", "开园", "开馆")),
    "service_started": ("开展服务", ("开展家庭病床服务", "开始服务", "服务启动")),
}

# One project reaches a milestone once; a correction retracts a wrong report whole.
ONE = Decimal(1)


def milestone_metric(name: str, family: str, unit: str) -> Metric:
    """The spec of a metric that counts projects reaching a milestone: 1 per event."""
    return Metric(name, family, unit, ONE, 0)


def milestone_names() -> dict[str, str]:
    """Every Chinese name of a milestone → its code (a ledger cell's vocabulary)."""
    names: dict[str, str] = {}
    for code, (label, aliases) in MILESTONES.items():
        for name in (label, *aliases):
            names[name] = code
    return names


class ProjectMilestone(Envelope):
    """One project reaching one milestone; adds 1 to the milestone's metric.

    A subclass sets ``milestone: Literal[...]`` (the codes of :data:`MILESTONES` its
    projects go through, with a default when there is only one) and ``counts``, each of
    those codes → the metric it adds to.
    """

    counts: ClassVar[Mapping[str, str]]

    project: Name = Field(
        description="the project: a pledge's item code (e.g. science-hall) or its name; "
        "NFKC-normalised, invisible characters removed, spaces collapsed"
    )
    project_name: Name | None = Field(
        default=None, description="the project's full name as the department writes it"
    )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        counts = cls.__dict__.get("counts")
        if counts is not None:
            unknown = set(counts) - set(MILESTONES)
            if unknown:
                raise TypeError(f"{cls.__name__}: unknown milestones {sorted(unknown)}")

    def measures(self) -> dict[str, Decimal]:
        milestone: str = getattr(self, "milestone")  # noqa: B009 - set by each subclass
        return {self.counts[milestone]: ONE}


def milestone_description(codes: tuple[str, ...]) -> str:
    """``started (开工), completed (完工)``: a milestone field's description."""
    return ", ".join(f"{code} ({MILESTONES[code][0]})" for code in codes)

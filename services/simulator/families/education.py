"""Education (``schemas/education.py``): new schools, each an opening and its places (one
school of 500–2,700 places per event) at a term's start, most with the 1 September intake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from schemas import education
from schemas.districts import District
from schemas.envelope import CST
from services.simulator.context import Context, Draft, moment
from services.simulator.scenario import (
    Achieved,
    Amount,
    Correctable,
    Day,
    FamilySimulator,
    Step,
    Target,
)
from services.simulator.windows import amount, days, split


@dataclass(frozen=True)
class Schools:
    """New schools of the subdistricts, ``places`` in all, opening at a term's start."""

    places: Amount
    schools: Amount
    # (first day, last day, schools) per term; None: the schools the others leave.
    terms: tuple[tuple[Day, Day, int | None], ...]


@dataclass(frozen=True)
class NamedSchool:
    """One school a pledge names, opening with all its places."""

    code: str
    name: str
    level: str
    district: District
    day: Day
    places: Amount
    hour: int = 8


def _opening(
    district: District, when: datetime, project: str, name: str, level: str, places: int
) -> list[Draft]:
    return [
        Draft(
            education.EducationSchoolOpened,
            district,
            when,
            project,
            {"school_name": name, "level": level},
        ),
        Draft(
            education.EducationPlacesAdded,
            district,
            when,
            project,
            {"places": places, "level": level, "school_name": name},
        ),
    ]


def schools(ctx: Context, spec: Schools) -> list[Draft]:
    rng = ctx.rng("education")
    count = int(amount(ctx, spec.schools))
    named = sum(n for _, _, n in spec.terms if n is not None)
    terms = [(first, last, count - named if n is None else n) for first, last, n in spec.terms]
    sizes = split(
        amount(ctx, spec.places), Decimal(500), Decimal(2700), Decimal(5), rng, count=count
    )
    drafts = []
    for first, last, n in terms:
        for _ in range(n):
            district = ctx.district("education")
            level, kind = rng.choice(
                (("primary", "小学"), ("primary", "小学"), ("junior_secondary", "初级中学"))
            )
            name = ctx.names.school(district, kind)
            when = moment(rng, *days(ctx, first, last), weekdays=False)
            drafts += _opening(district, when, name, name, level, int(sizes.pop()))
    return drafts


def named_school(ctx: Context, spec: NamedSchool) -> list[Draft]:
    when = datetime.combine(ctx.day(*spec.day), time(spec.hour, 0), CST)
    places = int(amount(ctx, spec.places))
    # The project is the pledge item's code: the item is done when an event names it.
    return _opening(spec.district, when, spec.code, spec.name, spec.level, places)


SIMULATOR = FamilySimulator(
    family="education",
    years={
        # One school at the spring term, the others at the 1 September intake.
        2022: (
            Step(
                order=4,
                make=schools,
                spec=Schools(
                    Achieved(education.SCHOOL_PLACES),
                    Achieved(education.SCHOOLS_OPENED),
                    (((2, 10), (2, 18), 1), ((8, 22), (9, 1), None)),
                ),
            ),
        ),
        # The Foreign Language Experimental Primary School opens with all 2,160 places at the
        # 1 September intake: nothing before it, so places and the opening are behind on 31
        # August.
        2024: (
            Step(
                order=10,
                make=named_school,
                spec=NamedSchool(
                    "foreign-language-experimental-primary",
                    "外国语实验小学",
                    "primary",
                    District.SHUANGQIAO,
                    (9, 1),
                    Target("2024-education-school-places"),
                ),
            ),
        ),
    },
    officials=("教育局 陈晓燕", "教育局 刘洋"),
    correctable=(
        Correctable(
            order=4,
            event_type="education.places_added",
            field="places",
            why_zh="按核定班额重新计算学位",
            why_en="places recomputed with the approved class size",
            metric=education.SCHOOL_PLACES,
        ),
    ),
    quantity_fields={"education.places_added": "places"},
)

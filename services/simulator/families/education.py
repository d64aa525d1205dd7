"""Education (``schemas/education.py``): new schools, each an opening and its places (one
school of 500–2,700 places per event) at a term's start, most with the 1 September intake;
school sites under construction, reported once a year for each (continued sites in the
first weeks of the year, new ones when they start); and the kindergarten inclusive rate
(普惠率) counted at each month's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from schemas import education
from schemas.districts import District
from schemas.envelope import CST
from services.simulator.context import Context, Draft, moment
from services.simulator.indicators import Reading, Readings, readings
from services.simulator.milestones import Project, Projects, projects
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


# Children in kindergartens (在园幼儿), the inclusive rate's denominator: the autumn intake
# and two new public kindergartens raise it in September.
CHILDREN_SPRING = 12_180
CHILDREN_AUTUMN = 12_640


def _school(code: str, name: str, district: District, *reached: tuple[str, Day, Day]) -> Project:
    return Project(reached, code=code, name=name, district=district)


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
            # The four primary schools of the pledge: three sites continued from 2023,
            # reported in January–March, the fourth started in March (achieved on 31 August).
            # The Foreign Language Experimental Primary School is completed in July, before
            # it opens.
            Step(
                order=13,
                make=projects,
                spec=Projects(
                    education.EducationSchoolConstruction,
                    (
                        _school(
                            "foreign-language-experimental-primary",
                            "外国语实验小学",
                            District.SHUANGQIAO,
                            ("continued", (1, 8), (1, 19)),
                            ("completed", (7, 15), (7, 26)),
                        ),
                        _school(
                            "yuxiang-road-primary",
                            "郁香路小学",
                            District.ZONE,
                            ("continued", (1, 22), (2, 2)),
                        ),
                        _school(
                            "lianhua-street-no3-primary",
                            "莲花街第三小学",
                            District.SHIFO,
                            ("continued", (2, 19), (3, 8)),
                        ),
                        _school(
                            "kexue-avenue-no1-primary",
                            "科学大道第一小学",
                            District.SHIFO,
                            ("started", (3, 11), (3, 29)),
                        ),
                    ),
                    rotation="education.construction",
                    fields={"level": "primary"},
                ),
            ),
            # On track on 31 August: 90.8% in January, 92.5% in August, a trend that
            # reaches 93% in November, before the year-end target; the autumn intake into two
            # new public kindergartens lifts it over 93% in September.
            Step(
                order=14,
                make=readings,
                spec=Readings(
                    education.EducationInclusiveRateReported,
                    tuple(
                        Reading(day, level, CHILDREN_SPRING if day[0] < 9 else CHILDREN_AUTUMN)
                        for day, level in (
                            ((1, 31), "90.80"),
                            ((2, 29), "90.95"),
                            ((3, 29), "91.20"),
                            ((4, 30), "91.45"),
                            ((5, 31), "91.70"),
                            ((6, 28), "91.95"),
                            ((7, 31), "92.20"),
                            ((8, 30), "92.50"),
                            ((9, 30), "93.10"),
                            ((10, 31), "93.20"),
                            ((11, 29), "93.30"),
                            ((12, 27), "93.40"),
                        )
                    ),
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

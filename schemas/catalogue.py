"""The pledge catalogue's models: metrics, districts, departments, pledges (with their
schedules) and reported achievements, as :mod:`schemas.seeds` reads them from ``seeds/``.
What a pledge expects by a date (:meth:`Pledge.expected_by`) is computed here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.districts import District
from schemas.errors import CityStreamError
from schemas.topics import FAMILIES

# The contract between event models and the catalogue, from the event families
# (schemas/family.py): which metrics each event type adds to. Event models must produce
# exactly these names; metrics.yaml must declare them.
EVENT_METRICS: dict[str, tuple[str, ...]] = {
    kind.name: kind.metrics for family in FAMILIES for kind in family.events
}
EVENT_FAMILIES: tuple[str, ...] = tuple(family.name for family in FAMILIES)
# Each family also has a ``<family>.correction``: a signed delta to any of the family's
# metrics. It adds to no metric of its own, so it is in no EVENT_METRICS entry.
CORRECTION_TYPES: frozenset[str] = frozenset(family.correction_type for family in FAMILIES)
EVENT_TYPES: frozenset[str] = frozenset(EVENT_METRICS) | CORRECTION_TYPES
# Metrics whose events report a level, not an amount (schemas/indicators.py).
LEVEL_METRICS: frozenset[str] = frozenset(
    metric.name for family in FAMILIES for metric in family.metrics if metric.level
)

# Unit codes. A closed list, so that a typo ("m²", "sqm") is an error, not a new unit: the
# units of the metrics no family measures yet, and those each family declares.
UNITS: frozenset[str] = frozenset(
    metric.unit for family in FAMILIES for metric in family.metrics
) | frozenset(
    {
        "m2",
        "km",
        "km2",
        "units",
        "households",
        "persons",
        "person_times",
        "places",
        "schools",
        "spaces",
        "lots",
        "points",
        "institutions",
        "roads",
        "projects",
        "villages",
        "buildings",
        "areas",
        "stations",
        "shelters",
        "parks",
        "communities",
        "percent",
        "yuan",
    }
)

_NAME = r"[a-z][a-z0-9_]*"
MetricName = Annotated[str, Field(pattern=rf"^{_NAME}\.{_NAME}$")]
EventTypeName = Annotated[str, Field(pattern=rf"^{_NAME}\.{_NAME}$")]
Code = Annotated[str, Field(pattern=rf"^{_NAME}$")]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
YearId = Annotated[str, Field(pattern=r"^[0-9]{4}-[a-z0-9]+(?:-[a-z0-9]+)*$")]
Text = Annotated[str, Field(min_length=1)]

_FIGURE = re.compile(r"(\d+(?:\.\d+)?)\s*(万|亿)?")
_SCALE = {None: Decimal(1), "万": Decimal(10_000), "亿": Decimal(100_000_000)}


class CatalogueError(CityStreamError, ValueError):
    """A catalogue file is missing, malformed, or inconsistent with another."""

    def __init__(self, file: Path | str, item: str, problem: str) -> None:
        self.file = str(file)
        self.item = item
        self.problem = problem
        super().__init__(f"{self.file}: {item}: {problem}")


def parse_figure(figure: str) -> Decimal:
    """The first number in a source figure, in base units: '75.9万平方米' → 759000."""
    match = _FIGURE.search(figure)
    if match is None:
        raise ValueError(f"figure {figure!r} contains no number")
    return Decimal(match[1]) * _SCALE[match[2]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceQuote(_Model):
    """A verbatim passage of a source document; ``figure`` is the part holding the number."""

    file: str = Field(pattern=r"^[0-9]{3}_[0-9a-f]{16}\.txt$")
    quote: str = Field(min_length=2)
    figure: str | None = None

    @model_validator(mode="after")
    def _figure_in_quote(self) -> SourceQuote:
        if self.figure is not None:
            if self.figure not in self.quote:
                raise ValueError(f"figure {self.figure!r} is not part of the quote")
            parse_figure(self.figure)
        return self


class Metric(_Model):
    name: MetricName
    unit: str
    display_unit: Text
    # Dashboards show value / display_scale in display_unit (759000 m² → 75.9 万㎡).
    display_scale: Decimal = Field(default=Decimal(1), gt=0)
    label_zh: Text
    label_en: Text
    # The event type named for this measure, or None; also_produced_by: other event types
    # that add to it (corrections of the family adjust every metric and are not listed).
    produced_by: EventTypeName | None
    also_produced_by: tuple[EventTypeName, ...] = ()
    # sum: events add up; level: a rate or stock measured at a date, never summed — its
    # value is the latest report (schemas/indicators.py).
    aggregation: Literal["sum", "level"] = "sum"
    note: str | None = None

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def event_types(self) -> tuple[str, ...]:
        """Every event type that adds to this metric, the one named for it first."""
        if self.produced_by is None:
            return ()
        return (self.produced_by, *self.also_produced_by)

    @model_validator(mode="after")
    def _check(self) -> Metric:
        if self.unit not in UNITS:
            raise ValueError(f"unknown unit {self.unit!r}; known: {', '.join(sorted(UNITS))}")
        if self.produced_by is None and not self.note:
            raise ValueError("a metric no event produces needs a note saying why")
        if self.produced_by is None and self.also_produced_by:
            raise ValueError("also_produced_by needs produced_by")
        if len(set(self.event_types)) != len(self.event_types):
            raise ValueError("an event type is listed twice in produced_by / also_produced_by")
        for event_type in self.event_types:
            if event_type.split(".", 1)[0] != self.family:
                raise ValueError(f"{event_type} is not of the {self.family} family")
        return self


class Subdistrict(_Model):
    code: District
    name_zh: Text
    name_en: Text
    note: str | None = None
    source: SourceQuote | None = None


class ZoneFact(_Model):
    name: Code
    value: Decimal
    unit: str
    figure: Text
    note: str | None = None


class Zone(_Model):
    code: District
    name_zh: Text
    name_en: Text
    full_name_zh: Text
    full_name_en: Text
    facts: tuple[ZoneFact, ...]
    source: SourceQuote

    @model_validator(mode="after")
    def _check(self) -> Zone:
        if self.code is not District.ZONE:
            raise ValueError(f"the zone's code must be {District.ZONE.value!r}")
        for fact in self.facts:
            if fact.unit not in UNITS:
                raise ValueError(f"fact {fact.name}: unknown unit {fact.unit!r}")
            if fact.figure not in self.source.quote:
                raise ValueError(f"fact {fact.name}: figure {fact.figure!r} is not in the quote")
            if parse_figure(fact.figure) != fact.value:
                raise ValueError(f"fact {fact.name}: figure {fact.figure!r} is not {fact.value}")
        return self

    def fact(self, name: str) -> Decimal:
        for f in self.facts:
            if f.name == name:
                return f.value
        raise KeyError(name)


class Department(_Model):
    code: Code
    name_zh: Text
    name_en: Text
    # sourced: the name appears in a source document (name_source); assumed: ours.
    name_basis: Literal["sourced", "assumed"]
    name_source: SourceQuote | None = None
    event_types: tuple[EventTypeName, ...] = ()
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Department:
        if (self.name_basis == "sourced") != (self.name_source is not None):
            raise ValueError("name_source is required for, and only for, name_basis: sourced")
        if len(set(self.event_types)) != len(self.event_types):
            raise ValueError("event_types lists an event type twice")
        return self


class LinearSchedule(_Model):
    """Even progress from start to deadline."""

    kind: Literal["linear"]


class SeasonWindow(_Model):
    """Both dates included: the window's share is due by the end of ``end``."""

    start: dt.date
    end: dt.date
    share: Decimal = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> SeasonWindow:
        if self.start > self.end:
            raise ValueError(f"season window {self.start}..{self.end} ends before it starts")
        return self


class SeasonalSchedule(_Model):
    """Work happens only inside the windows; each delivers its share of the target, evenly."""

    kind: Literal["seasonal"]
    season: Text
    windows: tuple[SeasonWindow, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> SeasonalSchedule:
        for before, after in zip(self.windows, self.windows[1:], strict=False):
            if after.start <= before.end:
                raise ValueError("season windows must be in order and must not overlap")
        total = sum((w.share for w in self.windows), Decimal(0))
        if total != 1:
            raise ValueError(f"season window shares add up to {total}, not 1")
        return self


class Milestone(_Model):
    date: dt.date
    cumulative: Decimal = Field(gt=0)


class MilestonesSchedule(_Model):
    """Cumulative amounts due by dates: interpolated (linear) or due on the date (step)."""

    kind: Literal["milestones"]
    interpolation: Literal["linear", "step"] = "linear"
    points: tuple[Milestone, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> MilestonesSchedule:
        for before, after in zip(self.points, self.points[1:], strict=False):
            if after.date <= before.date:
                raise ValueError(f"milestone dates must increase ({before.date}, {after.date})")
            if after.cumulative <= before.cumulative:
                raise ValueError(
                    f"milestone amounts must increase ({before.cumulative}, {after.cumulative})"
                )
        return self


Schedule = Annotated[
    LinearSchedule | SeasonalSchedule | MilestonesSchedule, Field(discriminator="kind")
]


def _fraction(day: dt.date, first: dt.date, last: dt.date) -> Decimal:
    """Share of the days first..last (both included) that have passed at the end of ``day``."""
    before = first - dt.timedelta(days=1)
    if day <= before:
        return Decimal(0)
    if day >= last:
        return Decimal(1)
    return Decimal((day - before).days) / Decimal((last - before).days)


class PledgeItem(_Model):
    """A named thing a pledge counts; ``code`` is what departments put in an event's project."""

    code: Slug
    name_zh: Text
    name_en: Text


class Pledge(_Model):
    id: YearId
    title_zh: Text
    title_en: Text
    metric: MetricName
    target: Decimal = Field(gt=0)
    unit: str
    # stated: the number is in the quote (source.figure); counted: the number of named items;
    # defined: chosen by the catalogue, explained in definition_note.
    target_basis: Literal["stated", "counted", "defined"]
    target_from_achievement: YearId | None = None
    # A level pledge's level when it starts (a rate does not start from nothing): the
    # schedule's curve runs from it to the target, so "expected" is the level the pledge
    # should hold by a date. baseline_from_achievement: the reported figure it is.
    baseline: Decimal | None = Field(default=None, ge=0)
    baseline_from_achievement: YearId | None = None
    start: dt.date
    deadline: dt.date
    owner: Code
    # A pledge for one subdistrict counts only that subdistrict's rollups and events; None
    # (the default): the whole zone, every district's rows and the zone-wide ones.
    district: District | None = None
    schedule: Schedule
    schedule_reason: Text
    # metric: the metric's total counts; items: each named item reported done counts once;
    # level: the latest reported level of a level metric (schemas/indicators.py).
    progress_from: Literal["metric", "items", "level"] = "metric"
    items: tuple[PledgeItem, ...] = ()
    definition_note: str | None = None
    measurable: bool = True
    measurable_reason: str | None = None
    source: SourceQuote

    @model_validator(mode="after")
    def _check(self) -> Pledge:
        if self.start >= self.deadline:
            raise ValueError(f"start {self.start} is not before deadline {self.deadline}")
        self._check_basis()
        self._check_items()
        if self.measurable == bool(self.measurable_reason):
            raise ValueError("measurable_reason is required for, and only for, measurable: false")
        self._check_schedule()
        return self

    @model_validator(mode="after")
    def _check_district(self) -> Pledge:
        if self.district is District.ZONE:
            raise ValueError("district: omit it for a zone-wide pledge; name a subdistrict")
        return self

    def _check_basis(self) -> None:
        figure = self.source.figure
        if self.target_basis == "stated":
            if figure is None:
                raise ValueError("a stated target needs source.figure, the number as written")
            if parse_figure(figure) != self.target:
                raise ValueError(f"source figure {figure!r} does not say {self.target}")
        else:
            if figure is not None:
                raise ValueError(f"source.figure is only for stated targets ({self.target_basis})")
            if not self.definition_note:
                raise ValueError(f"a {self.target_basis} target needs a definition_note")
        if self.target_basis == "counted" and self.progress_from != "items":
            raise ValueError("a counted target is progressed from its items")
        if self.target_from_achievement is not None and self.target_basis != "defined":
            raise ValueError("target_from_achievement is only for defined targets")
        if self.baseline is not None:
            if self.progress_from != "level":
                raise ValueError("baseline is only for level pledges (progress_from: level)")
            if self.baseline >= self.target:
                raise ValueError(f"baseline {self.baseline} is not below the target")
        if self.baseline_from_achievement is not None and self.baseline is None:
            raise ValueError("baseline_from_achievement needs the baseline it states")

    def _check_items(self) -> None:
        codes = [item.code for item in self.items]
        if len(set(codes)) != len(codes):
            raise ValueError("item codes must be unique")
        if self.progress_from == "items":
            if not self.items:
                raise ValueError("progress_from: items needs items")
            if self.target != len(self.items):
                raise ValueError(f"target {self.target} is not the number of items ({len(codes)})")

    def _check_schedule(self) -> None:
        schedule = self.schedule
        if isinstance(schedule, SeasonalSchedule):
            if schedule.windows[0].start < self.start or schedule.windows[-1].end > self.deadline:
                raise ValueError("season windows must lie between start and deadline")
        elif isinstance(schedule, MilestonesSchedule):
            first, last = schedule.points[0], schedule.points[-1]
            if first.date < self.start:
                raise ValueError(f"milestone {first.date} is before start {self.start}")
            if last.date > self.deadline:
                raise ValueError(f"last milestone {last.date} is after deadline {self.deadline}")
            if last.cumulative != self.target:
                raise ValueError(
                    f"last milestone reaches {last.cumulative}, not the target {self.target}"
                )

    def expected_by(self, day: dt.date) -> Decimal:
        """How much of the target the schedule expects done by the end of ``day``; for a
        level pledge with a baseline, the level: baseline + (target − baseline) × the share
        of the target the schedule expects by then."""
        if self.baseline is None or day < self.start:  # nothing before start, like any pledge
            return self._scheduled(day)
        share = self._scheduled(day) / self.target
        return self.baseline + (self.target - self.baseline) * share

    def _scheduled(self, day: dt.date) -> Decimal:
        schedule = self.schedule
        if isinstance(schedule, LinearSchedule):
            return self.target * _fraction(day, self.start, self.deadline)
        if isinstance(schedule, SeasonalSchedule):
            share = sum(
                (w.share * _fraction(day, w.start, w.end) for w in schedule.windows), Decimal(0)
            )
            return self.target * share
        if schedule.interpolation == "step":
            reached = [p.cumulative for p in schedule.points if p.date <= day]
            return reached[-1] if reached else Decimal(0)
        # Linear between milestones: from nothing before start, to each point's amount.
        first, done = self.start, Decimal(0)
        for point in schedule.points:
            if day < point.date:
                return done + (point.cumulative - done) * _fraction(day, first, point.date)
            first, done = point.date + dt.timedelta(days=1), point.cumulative
        return done


class Achievement(_Model):
    id: YearId
    title_zh: Text
    title_en: Text
    metric: MetricName
    value: Decimal = Field(gt=0)
    unit: str
    year: int = Field(ge=2000, le=2100)
    department: Code
    # stated: the number is in the quote (source.figure); counted / defined: see the note.
    value_basis: Literal["stated", "counted", "defined"] = "stated"
    definition_note: str | None = None
    note: str | None = None
    source: SourceQuote

    @model_validator(mode="after")
    def _check(self) -> Achievement:
        if not self.id.startswith(f"{self.year}-"):
            raise ValueError(f"id must start with the year {self.year}")
        figure = self.source.figure
        if self.value_basis == "stated":
            if figure is None:
                raise ValueError("a stated value needs source.figure, the number as written")
            if parse_figure(figure) != self.value:
                raise ValueError(f"source figure {figure!r} does not say {self.value}")
        else:
            if figure is not None:
                raise ValueError(f"source.figure is only for stated values ({self.value_basis})")
            if not self.definition_note:
                raise ValueError(f"a {self.value_basis} value needs a definition_note")
        return self


class SourceDefect(_Model):
    """An error in a source document, recorded so nobody builds on it."""

    id: Slug
    kind: Literal["duplicated_text", "wrong_figure", "garbled_text"]
    description: Text
    source: SourceQuote
    duplicates: SourceQuote | None = None
    resolution: Text


class Catalogue(_Model):
    zone: Zone
    subdistricts: tuple[Subdistrict, ...]
    metrics: tuple[Metric, ...]
    departments: tuple[Department, ...]
    pledges: tuple[Pledge, ...]
    achievements: tuple[Achievement, ...]
    source_defects: tuple[SourceDefect, ...] = ()

    def metric(self, name: str) -> Metric:
        return _by_key(self.metrics, "name", name)

    def department(self, code: str) -> Department:
        return _by_key(self.departments, "code", code)

    def pledge(self, pledge_id: str) -> Pledge:
        return _by_key(self.pledges, "id", pledge_id)

    def achievement(self, achievement_id: str) -> Achievement:
        return _by_key(self.achievements, "id", achievement_id)

    def pledges_for(self, year: int) -> tuple[Pledge, ...]:
        return tuple(p for p in self.pledges if p.id.startswith(f"{year}-"))

    def achievements_for(self, year: int) -> tuple[Achievement, ...]:
        return tuple(a for a in self.achievements if a.year == year)

    def quotes(self) -> Iterator[tuple[str, SourceQuote]]:
        """Every citation in the catalogue, with the id of the item that makes it."""
        yield "zone", self.zone.source
        for sub in self.subdistricts:
            if sub.source is not None:
                yield sub.code.value, sub.source
        for dep in self.departments:
            if dep.name_source is not None:
                yield dep.code, dep.name_source
        for pledge in self.pledges:
            yield pledge.id, pledge.source
        for ach in self.achievements:
            yield ach.id, ach.source
        for defect in self.source_defects:
            yield defect.id, defect.source
            if defect.duplicates is not None:
                yield defect.id, defect.duplicates


_T = TypeVar("_T", bound=BaseModel)


def _by_key(items: Iterable[_T], attr: str, key: str) -> _T:
    for item in items:
        if getattr(item, attr) == key:
            return item
    raise KeyError(key)

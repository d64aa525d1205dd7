"""The pledge catalogue: metrics, districts, departments, pledges and reported achievements.

Reads, under ``seeds/`` (or the ``root`` passed to :func:`load_catalogue`), with PyYAML's
``safe_load``:

- ``metrics.yaml``            every metric a pledge or achievement is measured in
- ``subdistricts.yaml``       the zone and its five subdistricts
- ``departments.yaml``        who owns which pledge and may write which event types
- ``pledges/<year>.yaml``     the year's pledges (and known defects of their source)
- ``achievements/<year>.yaml`` figures the zone reported for a past year

With ``sources=`` it also reads the cited source documents (``../shared/seeds/*.txt``) and
checks that every quotation occurs there verbatim, exactly once. It touches no database,
topic or environment variable.

Every problem is raised as :class:`CatalogueError` naming the file, the item and the problem.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.districts import LABELS, SUBDISTRICTS, District
from schemas.errors import CityStreamError
from schemas.topics import FAMILIES

REPO_ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = REPO_ROOT / "seeds"
# The source documents live beside the repository, not in it (see DESIGN.md).
SOURCES_DIR = REPO_ROOT.parent / "shared" / "seeds"

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

# Unit codes. A closed list, so that a typo ("m²", "sqm") is an error, not a new unit.
UNITS: frozenset[str] = frozenset(
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
    # sum: events add up; snapshot: a rate or stock stated at a date, never summed.
    aggregation: Literal["sum", "snapshot"] = "sum"
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
        if self.produced_by is not None and self.aggregation != "sum":
            raise ValueError("event-produced metrics are summed (aggregation: sum)")
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
    start: dt.date
    deadline: dt.date
    owner: Code
    # A pledge for one subdistrict counts only that subdistrict's rollups and events; None
    # (the default): the whole zone, every district's rows and the zone-wide ones.
    district: District | None = None
    schedule: Schedule
    schedule_reason: Text
    # metric: the metric's total counts; items: each named item reported done counts once.
    progress_from: Literal["metric", "items"] = "metric"
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
        """How much of the target the schedule expects done by the end of ``day``."""
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


# --------------------------------------------------------------------------- loading


def _read_yaml(path: Path, keys: set[str], required: set[str]) -> dict[str, Any]:
    if not path.is_file():
        raise CatalogueError(path, "-", "file is missing")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogueError(path, "-", f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise CatalogueError(path, "-", "top level must be a mapping")
    unknown = set(data) - keys
    if unknown:
        raise CatalogueError(path, "-", f"unknown top-level keys: {', '.join(sorted(unknown))}")
    missing = required - set(data)
    if missing:
        raise CatalogueError(path, "-", f"missing top-level keys: {', '.join(sorted(missing))}")
    return data


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _parse(path: Path, item: str, model: type[_T], raw: object) -> _T:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise CatalogueError(path, item, _describe(exc)) from exc


def _parse_list(path: Path, raw: object, model: type[_T], key: str) -> list[tuple[Path, _T]]:
    if not isinstance(raw, list):
        raise CatalogueError(path, "-", f"'{key}' must be a list")
    parsed = []
    for index, entry in enumerate(raw):
        label = f"#{index + 1}"
        if isinstance(entry, dict):
            for name in ("id", "name", "code"):
                if isinstance(entry.get(name), str):
                    label = entry[name]
                    break
        parsed.append((path, _parse(path, label, model, entry)))
    return parsed


def _year_files(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        raise CatalogueError(directory, "-", "directory is missing")
    found = []
    for path in sorted(directory.glob("*.yaml")):
        if not re.fullmatch(r"[0-9]{4}", path.stem):
            raise CatalogueError(path, "-", "file name must be a year, e.g. 2024.yaml")
        found.append((int(path.stem), path))
    return found


def _unique(entries: Iterable[tuple[Path, str]], what: str) -> None:
    seen: dict[str, Path] = {}
    for path, key in entries:
        if key in seen:
            raise CatalogueError(path, key, f"duplicate {what} (first defined in {seen[key]})")
        seen[key] = path


def load_catalogue(root: Path = SEEDS_DIR, *, sources: Path | None = None) -> Catalogue:
    """Read and cross-check the catalogue under ``root``.

    With ``sources`` (normally :data:`SOURCES_DIR`), also check every quotation verbatim
    against the source documents.
    """
    metrics_path = root / "metrics.yaml"
    raw = _read_yaml(metrics_path, {"metrics"}, {"metrics"})
    metrics = _parse_list(metrics_path, raw["metrics"], Metric, "metrics")

    districts_path = root / "subdistricts.yaml"
    raw = _read_yaml(districts_path, {"zone", "subdistricts"}, {"zone", "subdistricts"})
    zone = _parse(districts_path, "zone", Zone, raw["zone"])
    subdistricts = _parse_list(districts_path, raw["subdistricts"], Subdistrict, "subdistricts")

    departments_path = root / "departments.yaml"
    raw = _read_yaml(departments_path, {"departments"}, {"departments"})
    departments = _parse_list(departments_path, raw["departments"], Department, "departments")

    pledges: list[tuple[Path, Pledge]] = []
    defects: list[tuple[Path, SourceDefect]] = []
    for year, path in _year_files(root / "pledges"):
        raw = _read_yaml(path, {"year", "source_defects", "pledges"}, {"year", "pledges"})
        if raw["year"] != year:
            raise CatalogueError(path, "year", f"year {raw['year']!r} does not match file name")
        defects += _parse_list(
            path, raw.get("source_defects") or [], SourceDefect, "source_defects"
        )
        for origin, pledge in _parse_list(path, raw["pledges"], Pledge, "pledges"):
            if not pledge.id.startswith(f"{year}-"):
                raise CatalogueError(path, pledge.id, f"pledge ids in this file start '{year}-'")
            pledges.append((origin, pledge))

    achievements: list[tuple[Path, Achievement]] = []
    for year, path in _year_files(root / "achievements"):
        raw = _read_yaml(path, {"year", "achievements"}, {"year", "achievements"})
        if raw["year"] != year:
            raise CatalogueError(path, "year", f"year {raw['year']!r} does not match file name")
        for origin, ach in _parse_list(path, raw["achievements"], Achievement, "achievements"):
            if ach.year != year:
                raise CatalogueError(path, ach.id, f"year {ach.year} in the {year} file")
            achievements.append((origin, ach))

    _check_metrics(metrics)
    _check_districts(districts_path, zone, [s for _, s in subdistricts])
    _check_departments(departments)
    _unique(
        [(p, x.id) for p, x in pledges]
        + [(p, x.id) for p, x in achievements]
        + [(p, x.id) for p, x in defects],
        "id",
    )
    metric_by_name = {m.name: m for _, m in metrics}
    department_by_code = {d.code: d for _, d in departments}
    achievement_by_id = {a.id: a for _, a in achievements}
    for path, pledge in pledges:
        _check_reference(
            path,
            pledge.id,
            metric=pledge.metric,
            unit=pledge.unit,
            department=pledge.owner,
            metrics=metric_by_name,
            departments=department_by_code,
        )
        metric = metric_by_name[pledge.metric]
        if metric.aggregation == "snapshot" and pledge.measurable:
            raise CatalogueError(
                path,
                pledge.id,
                f"{metric.name} is a snapshot; events cannot sum to it "
                "(measurable: false, or choose a countable metric)",
            )
        if pledge.target_from_achievement is not None:
            base = achievement_by_id.get(pledge.target_from_achievement)
            if base is None:
                raise CatalogueError(
                    path, pledge.id, f"unknown achievement {pledge.target_from_achievement!r}"
                )
            if base.metric != pledge.metric or base.value != pledge.target:
                raise CatalogueError(
                    path, pledge.id, f"target is not {base.id}'s {base.value} {base.metric}"
                )
    for path, ach in achievements:
        _check_reference(
            path,
            ach.id,
            metric=ach.metric,
            unit=ach.unit,
            department=ach.department,
            metrics=metric_by_name,
            departments=department_by_code,
        )
    _check_defect_citations(pledges, [d for _, d in defects])

    catalogue = Catalogue(
        zone=zone,
        subdistricts=tuple(s for _, s in subdistricts),
        metrics=tuple(m for _, m in metrics),
        departments=tuple(d for _, d in departments),
        pledges=tuple(p for _, p in pledges),
        achievements=tuple(a for _, a in achievements),
        source_defects=tuple(d for _, d in defects),
    )
    if sources is not None:
        origins: dict[str, Path] = {"zone": districts_path}
        origins |= {s.code.value: p for p, s in subdistricts}
        origins |= {d.code: p for p, d in departments}
        origins |= {x.id: p for p, x in pledges}
        origins |= {x.id: p for p, x in achievements}
        origins |= {x.id: p for p, x in defects}
        verify_quotes(catalogue, sources, origins=origins)
    return catalogue


def _check_metrics(metrics: list[tuple[Path, Metric]]) -> None:
    _unique([(p, m.name) for p, m in metrics], "metric")
    by_name = {m.name: (p, m) for p, m in metrics}
    for path, metric in metrics:
        for event_type in metric.event_types:
            if event_type not in EVENT_METRICS:
                known = ", ".join(sorted(EVENT_METRICS))
                raise CatalogueError(
                    path, metric.name, f"unknown event type {event_type!r}; known: {known}"
                )
            if metric.name not in EVENT_METRICS[event_type]:
                raise CatalogueError(path, metric.name, f"{event_type} does not produce it")
    for event_type, names in EVENT_METRICS.items():
        for name in names:
            if name not in by_name:
                path = metrics[0][0] if metrics else Path("metrics.yaml")
                raise CatalogueError(path, name, f"missing; {event_type} produces it")
            path, metric = by_name[name]
            if event_type not in metric.event_types:
                raise CatalogueError(
                    path,
                    name,
                    f"{event_type} produces it: list it in produced_by or also_produced_by",
                )


def _check_districts(path: Path, zone: Zone, subdistricts: list[Subdistrict]) -> None:
    codes = [s.code for s in subdistricts]
    if District.ZONE in codes:
        raise CatalogueError(path, District.ZONE.value, "the zone is not a subdistrict")
    if sorted(codes) != sorted(SUBDISTRICTS):
        expected = ", ".join(d.value for d in SUBDISTRICTS)
        raise CatalogueError(path, "subdistricts", f"must list exactly once each of {expected}")
    entries: list[Subdistrict | Zone] = [*subdistricts, zone]
    for entry in entries:
        name_zh, name_en = LABELS[entry.code]
        if (entry.name_zh, entry.name_en) != (name_zh, name_en):
            raise CatalogueError(
                path,
                entry.code.value,
                f"names must match schemas/districts.py: {name_zh} / {name_en}",
            )
    try:
        count = zone.fact("subdistrict_count")
    except KeyError:
        raise CatalogueError(path, "zone", "missing fact subdistrict_count") from None
    if count != len(subdistricts):
        raise CatalogueError(path, "zone", f"{count} subdistricts stated, {len(codes)} listed")


def _check_departments(departments: list[tuple[Path, Department]]) -> None:
    _unique([(p, d.code) for p, d in departments], "department")
    writers: set[str] = set()
    for path, dep in departments:
        for event_type in dep.event_types:
            if event_type not in EVENT_TYPES:
                known = ", ".join(sorted(EVENT_TYPES))
                raise CatalogueError(
                    path, dep.code, f"unknown event type {event_type!r}; known: {known}"
                )
            writers.add(event_type)
    orphans = EVENT_TYPES - writers
    if orphans and departments:
        raise CatalogueError(
            departments[0][0], "departments", f"no department writes {', '.join(sorted(orphans))}"
        )


def _check_reference(
    path: Path,
    item: str,
    *,
    metric: str,
    unit: str,
    department: str,
    metrics: dict[str, Metric],
    departments: dict[str, Department],
) -> None:
    spec = metrics.get(metric)
    if spec is None:
        raise CatalogueError(path, item, f"unknown metric {metric!r} (not in metrics.yaml)")
    if unit != spec.unit:
        raise CatalogueError(path, item, f"unit {unit!r} is not {spec.name}'s {spec.unit!r}")
    dep = departments.get(department)
    if dep is None:
        raise CatalogueError(path, item, f"unknown department {department!r}")
    if spec.produced_by is not None and spec.produced_by not in dep.event_types:
        raise CatalogueError(
            path,
            item,
            f"department {dep.code} may not write {spec.produced_by}, which produces {spec.name}",
        )


def _check_defect_citations(
    pledges: list[tuple[Path, Pledge]], defects: list[SourceDefect]
) -> None:
    for path, pledge in pledges:
        for defect in defects:
            if defect.source.file != pledge.source.file:
                continue
            if (
                pledge.source.quote in defect.source.quote
                or defect.source.quote in pledge.source.quote
            ):
                raise CatalogueError(
                    path, pledge.id, f"cites the defective passage recorded as {defect.id}"
                )


def verify_quotes(
    catalogue: Catalogue, sources: Path, *, origins: dict[str, Path] | None = None
) -> None:
    """Every quotation occurs verbatim, exactly once, in its source; no pledge cites a defect."""
    origins = origins or {}
    texts: dict[str, str] = {}

    def text_of(item: str, quote: SourceQuote) -> str:
        if quote.file not in texts:
            path = sources / quote.file
            if not path.is_file():
                raise CatalogueError(origins.get(item, "-"), item, f"source {path} is missing")
            texts[quote.file] = path.read_text(encoding="utf-8")
        return texts[quote.file]

    def span(item: str, quote: SourceQuote) -> tuple[int, int]:
        text = text_of(item, quote)
        count = text.count(quote.quote)
        if count == 0:
            raise CatalogueError(
                origins.get(item, "-"),
                item,
                f"quote not found verbatim in {quote.file}: {quote.quote[:40]!r}…",
            )
        if count > 1:
            raise CatalogueError(
                origins.get(item, "-"),
                item,
                f"quote occurs {count} times in {quote.file}; quote a longer passage",
            )
        begin = text.index(quote.quote)
        return begin, begin + len(quote.quote)

    for item, quote in catalogue.quotes():
        span(item, quote)
    for defect in catalogue.source_defects:
        bad_begin, bad_end = span(defect.id, defect.source)
        for pledge in catalogue.pledges:
            if pledge.source.file != defect.source.file:
                continue
            begin, end = span(pledge.id, pledge.source)
            if begin < bad_end and bad_begin < end:
                raise CatalogueError(
                    origins.get(pledge.id, "-"),
                    pledge.id,
                    f"cites the defective passage recorded as {defect.id}",
                )

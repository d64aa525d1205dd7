"""Reading the pledge catalogue (:mod:`schemas.catalogue`) from ``seeds/``.

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

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from schemas.catalogue import (
    EVENT_METRICS,
    EVENT_TYPES,
    LEVEL_METRICS,
    Achievement,
    Catalogue,
    CatalogueError,
    Department,
    Metric,
    Pledge,
    SourceDefect,
    SourceQuote,
    Subdistrict,
    Zone,
)
from schemas.districts import LABELS, SUBDISTRICTS, District

_T = TypeVar("_T", bound=BaseModel)


REPO_ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = REPO_ROOT / "seeds"
# The source documents live beside the repository, not in it (see DESIGN.md).
SOURCES_DIR = REPO_ROOT.parent / "shared" / "seeds"


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
        if pledge.measurable and (metric.aggregation == "level") != (
            pledge.progress_from == "level"
        ):
            raise CatalogueError(
                path,
                pledge.id,
                f"{metric.name} is a {metric.aggregation} metric: a pledge measured by it "
                + (
                    "takes progress_from: level (its latest report)"
                    if metric.aggregation == "level"
                    else "cannot take progress_from: level"
                ),
            )
        if pledge.baseline_from_achievement is not None:
            base = achievement_by_id.get(pledge.baseline_from_achievement)
            if base is None or base.metric != pledge.metric or base.value != pledge.baseline:
                raise CatalogueError(
                    path,
                    pledge.id,
                    f"baseline {pledge.baseline} is not {pledge.baseline_from_achievement}'s "
                    f"{pledge.metric}",
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
    for path, metric in metrics:
        if metric.name in LEVEL_METRICS and metric.aggregation != "level":
            raise CatalogueError(path, metric.name, "its events report a level: aggregation: level")
        summed = metric.produced_by is not None and metric.name not in LEVEL_METRICS
        if summed and metric.aggregation != "sum":
            raise CatalogueError(path, metric.name, "its events add up: aggregation: sum")
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

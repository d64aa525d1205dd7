"""The pledge catalogue (seeds/*.yaml) loads, cites its sources verbatim and rejects bad data.

Reads seeds/ of this repository and the source documents in ../shared/seeds; negative
tests write modified copies of the catalogue into tmp_path. No sockets.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.catalogue import (
    EVENT_METRICS,
    EVENT_TYPES,
    Catalogue,
    CatalogueError,
    Pledge,
    parse_figure,
)
from schemas.districts import SUBDISTRICTS, District
from schemas.seeds import load_catalogue

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
SOURCES = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"
DEFECT_ID = "000-fitness-circle-repeats-housing"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(SEEDS)


@pytest.fixture(scope="module")
def sources() -> Path:
    if not SOURCES.is_dir():
        pytest.skip(f"source documents not found at {SOURCES}")
    return SOURCES


# ------------------------------------------------------------------------ it loads


def test_catalogue_loads(catalogue: Catalogue) -> None:
    assert len(catalogue.pledges_for(2024)) >= 15
    assert len(catalogue.achievements_for(2022)) >= 30
    assert {s.code for s in catalogue.subdistricts} == set(SUBDISTRICTS)
    assert catalogue.zone.code is District.ZONE
    assert catalogue.zone.fact("area_km2") == 99
    assert catalogue.zone.fact("subdistrict_count") == 5
    assert catalogue.zone.fact("population_approx") == 700_000


def test_catalogue_loads_with_quote_check(sources: Path) -> None:
    load_catalogue(SEEDS, sources=sources)


def test_fixed_event_departments_write_their_own_families(catalogue: Catalogue) -> None:
    for code in ("housing", "education", "heating", "parking", "drainage"):
        dep = catalogue.department(code)
        assert dep.event_types, code
        assert all(t.startswith(f"{code}.") for t in dep.event_types)


def test_event_produced_metrics_are_the_contract(catalogue: Catalogue) -> None:
    for metric in catalogue.metrics:
        producers = {event for event, names in EVENT_METRICS.items() if metric.name in names}
        assert set(metric.event_types) == producers, metric.name
    assert catalogue.metric("heating.connected_area_m2").produced_by == "heating.area_connected"
    assert catalogue.metric("parking.temporary_spaces").event_types == (
        "parking.spaces_opened",
        "parking.lot_opened",
    )


def test_catalogue_agrees_with_the_event_models(catalogue: Catalogue) -> None:
    from schemas import topics
    from schemas.topics import DEPARTMENTS

    assert set(topics.BY_EVENT_TYPE) == EVENT_TYPES
    for spec in topics.ALL:
        for event_type in spec.by_type:
            writers = {d.code for d in catalogue.departments if event_type in d.event_types}
            assert writers == set(spec.departments), event_type
        produced = {m.name for m in catalogue.metrics if m.produced_by and m.family == spec.family}
        assert produced == {m.name for m in spec.metrics}, spec.family
        for model_metric in spec.metrics:
            assert catalogue.metric(model_metric.name).unit == model_metric.unit
    assert {d.code for d in catalogue.departments if d.event_types} == set(DEPARTMENTS)


# ---------------------------------------------------------------- quotes are verbatim


def _all_quotes() -> list[tuple[str, str, str]]:
    cat = load_catalogue(SEEDS)
    return [(item, q.file, q.quote) for item, q in cat.quotes()]


@pytest.mark.parametrize(("item", "file", "quote"), _all_quotes(), ids=lambda v: str(v)[:48])
def test_quote_occurs_verbatim_in_its_source(
    sources: Path, item: str, file: str, quote: str
) -> None:
    text = (sources / file).read_text(encoding="utf-8")
    assert quote in text, f"{item}: quote not in {file}"
    assert text.count(quote) == 1, f"{item}: quote is ambiguous in {file}"


def test_every_pledge_and_achievement_is_cited(catalogue: Catalogue) -> None:
    cited = {item for item, _ in catalogue.quotes()}
    assert {p.id for p in catalogue.pledges} <= cited
    assert {a.id for a in catalogue.achievements} <= cited


def test_stated_figures_are_in_the_quote_and_equal_the_number(catalogue: Catalogue) -> None:
    for pledge in catalogue.pledges:
        if pledge.target_basis == "stated":
            assert pledge.source.figure is not None
            assert pledge.source.figure in pledge.source.quote
            assert parse_figure(pledge.source.figure) == pledge.target, pledge.id
    for ach in catalogue.achievements:
        if ach.value_basis == "stated":
            assert ach.source.figure is not None
            assert parse_figure(ach.source.figure) == ach.value, ach.id


@pytest.mark.parametrize(
    ("figure", "value"),
    [
        ("75.9万平方米", 759000),
        ("256.29万平方米", 2562900),
        ("9.2亿元", 920000000),
        ("学位2160个", 2160),
        ("近70万", 700000),
        ("普惠率93%", 93),
    ],
)
def test_parse_figure_converts_wan_and_yi(figure: str, value: int) -> None:
    assert parse_figure(figure) == value


# ------------------------------------------------------------------- key figures


@pytest.mark.parametrize(
    ("pledge_id", "metric", "target", "deadline"),
    [
        ("2024-housing-completed-area", "housing.completed_area_m2", 759000, "2024-12-31"),
        ("2024-housing-started-area", "housing.started_area_m2", 358000, "2024-12-31"),
        ("2024-education-school-places", "education.school_places", 2160, "2024-12-31"),
        (
            "2024-education-foreign-language-school-opened",
            "education.schools_opened",
            1,
            "2024-12-31",
        ),
        ("2024-roads-municipal-started", "construction.roads_started", 6, "2024-12-31"),
        ("2024-health-family-bed-institutions", "health.family_bed_institutions", 5, "2024-12-31"),
        ("2024-drainage-waterlogging-points", "drainage.points_repaired", 2, "2024-12-31"),
        ("2024-housing-return-before-national-day", "housing.return_rate_pct", 100, "2024-09-30"),
    ],
)
def test_pledge_key_figures(
    catalogue: Catalogue, pledge_id: str, metric: str, target: int, deadline: str
) -> None:
    pledge = catalogue.pledge(pledge_id)
    assert pledge.metric == metric
    assert pledge.target == target
    assert pledge.unit == catalogue.metric(metric).unit
    assert pledge.deadline == dt.date.fromisoformat(deadline)


@pytest.mark.parametrize(
    ("achievement_id", "metric", "value"),
    [
        ("2022-heating-connected-area", "heating.connected_area_m2", 1420000),
        ("2022-parking-temporary-spaces", "parking.temporary_spaces", 12620),
        ("2022-parking-lots-opened", "parking.lots_opened", 14),
        ("2022-education-school-places", "education.school_places", 18420),
        ("2022-education-schools-opened", "education.schools_opened", 10),
        ("2022-housing-delivered-area", "housing.completed_area_m2", 2562900),
        ("2022-housing-started-area", "housing.started_area_m2", 107700),
        ("2022-housing-persons-returned", "housing.returned_persons", 16000),
        ("2022-housing-signed-area", "housing.signed_area_m2", 799400),
        ("2022-heating-pipe", "heating.pipe_km", 11),
        ("2022-greening-area", "urban_management.greened_area_m2", 350000),
    ],
)
def test_achievement_key_figures(
    catalogue: Catalogue, achievement_id: str, metric: str, value: int
) -> None:
    ach = catalogue.achievement(achievement_id)
    assert (ach.metric, ach.year) == (metric, 2022)
    assert ach.value == value
    assert ach.unit == catalogue.metric(metric).unit


def test_event_metric_totals_per_year_are_unambiguous(catalogue: Catalogue) -> None:
    # The simulator sends events whose yearly totals equal these: one figure per metric.
    seen: set[str] = set()
    for ach in catalogue.achievements_for(2022):
        if catalogue.metric(ach.metric).produced_by:
            assert ach.metric not in seen, ach.metric
            seen.add(ach.metric)
    assert "heating.connected_area_m2" in seen


def test_rates_are_levels_measured_by_their_latest_report(catalogue: Catalogue) -> None:
    for pledge in catalogue.pledges:
        level = catalogue.metric(pledge.metric).aggregation == "level"
        assert level == (pledge.progress_from == "level"), pledge.id
    for pledge_id in (
        "2024-education-kindergarten-inclusive-rate",
        "2024-housing-return-before-national-day",
    ):
        pledge = catalogue.pledge(pledge_id)
        assert pledge.measurable and pledge.progress_from == "level"
        assert catalogue.metric(pledge.metric).produced_by


def test_every_2024_pledge_has_an_event_family(catalogue: Catalogue) -> None:
    for pledge in catalogue.pledges_for(2024):
        assert pledge.measurable, pledge.id
        assert catalogue.metric(pledge.metric).event_types, pledge.id


def test_pledges_without_a_number_have_a_definition(catalogue: Catalogue) -> None:
    for pledge_id in (
        "2024-drainage-waterlogging-points",
        "2024-lighting-main-roads-lake-alleys",
        "2024-heating-integration-area",
    ):
        pledge = catalogue.pledge(pledge_id)
        assert pledge.target_basis != "stated"
        assert pledge.definition_note
    points = catalogue.pledge("2024-drainage-waterlogging-points")
    assert points.progress_from == "items"
    assert [i.name_zh for i in points.items] == ["科学大道沿线积水点", "西三环北延段积水点"]


# --------------------------------------------------------------- the source defect


def test_fitness_circle_defect_is_recorded(catalogue: Catalogue) -> None:
    defect = next(d for d in catalogue.source_defects if d.id == DEFECT_ID)
    assert "15分钟健身圈" in defect.source.quote
    assert "新建75.9万平方米" in defect.source.quote
    assert defect.duplicates is not None
    assert "安置房" in defect.duplicates.quote


def test_no_pledge_cites_the_fitness_circle_sentence(catalogue: Catalogue) -> None:
    defect = next(d for d in catalogue.source_defects if d.id == DEFECT_ID)
    for pledge in catalogue.pledges:
        assert "健身圈" not in pledge.source.quote, pledge.id
        assert pledge.source.quote not in defect.source.quote, pledge.id
    for pledge_id in ("2024-housing-completed-area", "2024-housing-started-area"):
        assert "安置房建设三年行动计划" in catalogue.pledge(pledge_id).source.quote


def test_housing_quote_is_not_inside_the_defect_in_the_source(
    catalogue: Catalogue, sources: Path
) -> None:
    text = (sources / "000_682ca8d40d72fb06.txt").read_text(encoding="utf-8")
    defect = next(d for d in catalogue.source_defects if d.id == DEFECT_ID)
    bad = text.index(defect.source.quote)
    housing = text.index(catalogue.pledge("2024-housing-completed-area").source.quote)
    assert housing + len(catalogue.pledge("2024-housing-completed-area").source.quote) <= bad


# ----------------------------------------------------------------------- schedules


def test_schedules_reach_the_target_by_the_deadline(catalogue: Catalogue) -> None:
    for pledge in catalogue.pledges:
        assert pledge.expected_by(pledge.start - dt.timedelta(days=1)) == 0, pledge.id
        assert pledge.expected_by(pledge.deadline) == pledge.target, pledge.id
        values = [pledge.expected_by(pledge.start + dt.timedelta(days=d)) for d in range(0, 400, 7)]
        assert values == sorted(values), pledge.id


def test_seasonal_and_milestone_schedules(catalogue: Catalogue) -> None:
    heating = catalogue.pledge("2024-heating-integration-area")
    assert heating.schedule.kind == "seasonal"
    assert heating.expected_by(dt.date(2024, 3, 15)) == 0
    assert heating.expected_by(dt.date(2024, 11, 15)) == heating.target
    places = catalogue.pledge("2024-education-school-places")
    assert places.expected_by(dt.date(2024, 7, 31)) == 0
    assert places.expected_by(dt.date(2024, 9, 1)) == 2160
    housing = catalogue.pledge("2024-housing-completed-area")
    assert housing.schedule.kind == "milestones"
    assert housing.expected_by(dt.date(2024, 9, 30)) == 683100
    assert 303600 < housing.expected_by(dt.date(2024, 8, 15)) < 683100
    opening = catalogue.pledge("2024-health-outpatient-building-opened")
    assert opening.expected_by(dt.date(2024, 12, 30)) == 0


def test_linear_expectation_is_proportional() -> None:
    pledge = Pledge.model_validate(
        {
            "id": "2024-x",
            "title_zh": "测试",
            "title_en": "test",
            "metric": "parking.temporary_spaces",
            "target": 366,
            "unit": "spaces",
            "target_basis": "defined",
            "definition_note": "test",
            "start": "2024-01-01",
            "deadline": "2024-12-31",
            "owner": "parking",
            "schedule": {"kind": "linear"},
            "schedule_reason": "test",
            "source": {"file": "000_682ca8d40d72fb06.txt", "quote": "测试"},
        }
    )
    assert pledge.expected_by(dt.date(2024, 1, 1)) == 1
    assert pledge.expected_by(dt.date(2024, 1, 31)) == 31
    assert pledge.expected_by(dt.date(2025, 6, 1)) == Decimal(366)


# ------------------------------------------------------------------ negative tests

Mutator = Callable[[dict[str, Any]], None]


def _broken_copy(tmp_path: Path, relative: str, mutate: Mutator) -> Path:
    root = tmp_path / "seeds"
    shutil.copytree(SEEDS, root)
    path = root / relative
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    mutate(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return root


def _pledge(data: dict[str, Any], pledge_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in data["pledges"] if p["id"] == pledge_id)
    return found


def test_unknown_metric_is_rejected(tmp_path: Path) -> None:
    def mutate(data: dict[str, Any]) -> None:
        _pledge(data, "2024-education-school-places")["metric"] = "education.desks"

    root = _broken_copy(tmp_path, "pledges/2024.yaml", mutate)
    with pytest.raises(
        CatalogueError,
        match=r"2024\.yaml: 2024-education-school-places: .*"
        r"unknown metric 'education\.desks'",
    ):
        load_catalogue(root)


def test_duplicate_id_is_rejected(tmp_path: Path) -> None:
    def mutate(data: dict[str, Any]) -> None:
        copy = dict(data["achievements"][0])
        data["achievements"].append(copy)

    root = _broken_copy(tmp_path, "achievements/2022.yaml", mutate)
    with pytest.raises(CatalogueError, match=r"2022-housing-started-area: duplicate id"):
        load_catalogue(root)


def test_misquoted_source_is_rejected(tmp_path: Path, sources: Path) -> None:
    def mutate(data: dict[str, Any]) -> None:
        source = _pledge(data, "2024-education-school-places")["source"]
        # Full-width comma where the source has an ASCII one: not verbatim.
        source["quote"] = source["quote"].replace(",", "，")

    root = _broken_copy(tmp_path, "pledges/2024.yaml", mutate)
    load_catalogue(root)  # the quote check needs the sources
    with pytest.raises(CatalogueError, match=r"2024-education-school-places: quote not found"):
        load_catalogue(root, sources=sources)


def test_ambiguous_quote_is_rejected(tmp_path: Path, sources: Path) -> None:
    def mutate(data: dict[str, Any]) -> None:
        _pledge(data, "2024-renewal-first-phase-started")["source"]["quote"] = "城市更新"

    root = _broken_copy(tmp_path, "pledges/2024.yaml", mutate)
    with pytest.raises(CatalogueError, match=r"renewal-first-phase-started: .*occurs \d+ times"):
        load_catalogue(root, sources=sources)


def test_citing_the_defect_is_rejected(tmp_path: Path) -> None:
    def mutate(data: dict[str, Any]) -> None:
        defect_quote = data["source_defects"][0]["source"]["quote"]
        _pledge(data, "2024-housing-completed-area")["source"]["quote"] = defect_quote

    root = _broken_copy(tmp_path, "pledges/2024.yaml", mutate)
    with pytest.raises(CatalogueError, match=rf"2024-housing-completed-area: .*{DEFECT_ID}"):
        load_catalogue(root)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("unit", "m²", r"unit 'm²' is not"),
        ("owner", "mayor", r"unknown department 'mayor'"),
        ("owner", "parking", r"department parking may not write housing\.units_completed"),
        ("target", 760000, r"source figure '75\.9万平方米' does not say 760000"),
        ("deadline", dt.date(2023, 12, 31), r"start 2024-01-01 is not before deadline"),
    ],
)
def test_bad_pledge_fields_are_rejected(
    tmp_path: Path, field: str, value: object, problem: str
) -> None:
    def mutate(data: dict[str, Any]) -> None:
        _pledge(data, "2024-housing-completed-area")[field] = value

    root = _broken_copy(tmp_path, "pledges/2024.yaml", mutate)
    with pytest.raises(CatalogueError, match=rf"2024-housing-completed-area: .*{problem}"):
        load_catalogue(root)


@pytest.mark.parametrize(
    ("index", "cumulative", "problem"),
    [
        (1, 1000, r"milestone amounts must increase"),
        (3, 350000, r"last milestone reaches 350000, not the target 358000"),
    ],
)
def test_bad_milestones_are_rejected(
    tmp_path: Path, index: int, cumulative: int, problem: str
) -> None:
    def mutate(data: dict[str, Any]) -> None:
        points = _pledge(data, "2024-housing-started-area")["schedule"]["points"]
        points[index]["cumulative"] = cumulative

    root = _broken_copy(tmp_path, "pledges/2024.yaml", mutate)
    with pytest.raises(CatalogueError, match=rf"2024-housing-started-area: .*{problem}"):
        load_catalogue(root)


def test_milestone_after_the_deadline_is_rejected(tmp_path: Path) -> None:
    def mutate(data: dict[str, Any]) -> None:
        pledge = _pledge(data, "2024-housing-return-before-national-day")
        pledge["schedule"]["points"][0]["date"] = dt.date(2024, 10, 1)

    root = _broken_copy(tmp_path, "pledges/2024.yaml", mutate)
    with pytest.raises(CatalogueError, match=r"national-day: .*after deadline 2024-09-30"):
        load_catalogue(root)


def test_unknown_event_type_of_a_department_is_rejected(tmp_path: Path) -> None:
    def mutate(data: dict[str, Any]) -> None:
        data["departments"][0]["event_types"].append("housing.demolished")

    root = _broken_copy(tmp_path, "departments.yaml", mutate)
    with pytest.raises(CatalogueError, match=r"departments\.yaml: housing: unknown event type"):
        load_catalogue(root)


def test_renamed_event_metric_is_rejected(tmp_path: Path) -> None:
    def mutate(data: dict[str, Any]) -> None:
        for metric in data["metrics"]:
            if metric["name"] == "heating.connected_area_m2":
                metric["name"] = "heating.area_m2"

    root = _broken_copy(tmp_path, "metrics.yaml", mutate)
    with pytest.raises(
        CatalogueError, match=r"metrics\.yaml: heating\.area_m2: .*does not produce"
    ):
        load_catalogue(root)


def test_wrong_figure_is_rejected(tmp_path: Path) -> None:
    def mutate(data: dict[str, Any]) -> None:
        for ach in data["achievements"]:
            if ach["id"] == "2022-housing-delivered-area":
                ach["value"] = 256.29  # forgot the 万

    root = _broken_copy(tmp_path, "achievements/2022.yaml", mutate)
    with pytest.raises(
        CatalogueError, match=r"2022-housing-delivered-area: .*does not say 256\.29"
    ):
        load_catalogue(root)

"""The event models: what each one measures, where it is partitioned, how ids are derived,
how text and districts are normalised, and that topics, departments and metrics agree."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from schemas import (
    construction,
    drainage,
    education,
    health,
    heating,
    housing,
    medical_insurance,
    parking,
    renewal,
    urban_management,
)
from schemas.corrections import Correction
from schemas.districts import LABELS, NAMES, SUBDISTRICTS, District, district_code
from schemas.envelope import (
    LEDGER_NAMESPACE,
    Envelope,
    ledger_event_id,
    new_event_id,
)
from schemas.fields import decimal_places, normalise_text
from schemas.topics import (
    ALL,
    BY_EVENT_TYPE,
    BY_FAMILY,
    DEADLETTER_TOPIC,
    DEPARTMENTS,
    HEATING,
    METRICS,
)
from tests.unit.bad_inputs import GOOD, event

FAMILIES = (
    "housing",
    "education",
    "heating",
    "parking",
    "drainage",
    "construction",
    "renewal",
    "urban_management",
    "health",
    "medical_insurance",
)


def build(event_type: str, /, **changes: Any) -> Envelope:
    return (
        BY_EVENT_TYPE[event_type].by_type[event_type].model_validate(event(event_type, **changes))
    )


# --- measures -----------------------------------------------------------------------------

MEASURES: list[tuple[str, dict[str, Any], dict[str, Decimal]]] = [
    (
        "housing.construction_started",
        {},
        {housing.STARTED_AREA_M2: Decimal("358000.00"), housing.STARTED_UNITS: Decimal(3200)},
    ),
    (
        "housing.construction_started",
        {"units": None},
        {housing.STARTED_AREA_M2: Decimal("358000.00")},
    ),
    (
        "housing.units_completed",
        {},
        {housing.COMPLETED_AREA_M2: Decimal("79940.5"), housing.COMPLETED_UNITS: Decimal(912)},
    ),
    (
        "housing.households_returned",
        {},
        {housing.RETURNED_HOUSEHOLDS: Decimal(850), housing.RETURNED_PERSONS: Decimal(3200)},
    ),
    (
        "housing.households_returned",
        {"households": None},
        {housing.RETURNED_PERSONS: Decimal(3200)},
    ),
    ("education.school_opened", {}, {education.SCHOOLS_OPENED: Decimal(1)}),
    ("education.places_added", {}, {education.SCHOOL_PLACES: Decimal(2160)}),
    ("heating.area_connected", {}, {heating.CONNECTED_AREA_M2: Decimal("12000.50")}),
    ("heating.pipe_laid", {}, {heating.PIPE_KM: Decimal("2.375")}),
    ("parking.spaces_opened", {}, {parking.TEMPORARY_SPACES: Decimal(180)}),
    ("parking.spaces_opened", {"kind": "permanent"}, {parking.PERMANENT_SPACES: Decimal(180)}),
    (
        "parking.lot_opened",
        {},
        {parking.LOTS_OPENED: Decimal(1), parking.TEMPORARY_SPACES: Decimal(420)},
    ),
    (
        "parking.lot_opened",
        {"kind": "permanent"},
        {parking.LOTS_OPENED: Decimal(1), parking.PERMANENT_SPACES: Decimal(420)},
    ),
    ("drainage.point_repaired", {}, {drainage.POINTS_REPAIRED: Decimal(1)}),
    ("drainage.point_repaired", {"location": None}, {drainage.POINTS_REPAIRED: Decimal(1)}),
    ("housing.correction", {}, {housing.COMPLETED_UNITS: Decimal(-12)}),
    ("education.correction", {}, {education.SCHOOL_PLACES: Decimal(-45)}),
    ("heating.correction", {}, {heating.CONNECTED_AREA_M2: Decimal("-120.50")}),
    (
        "heating.correction",
        {"metric": heating.PIPE_KM, "delta": "0.125"},
        {heating.PIPE_KM: Decimal("0.125")},
    ),
    ("parking.correction", {}, {parking.TEMPORARY_SPACES: Decimal(20)}),
    ("drainage.correction", {}, {drainage.POINTS_REPAIRED: Decimal(-1)}),
    # Milestones count one project in the milestone's metric (schemas/milestones.py).
    (
        "housing.preliminary_works_started",
        {},
        {housing.PRELIMINARY_WORKS_STARTED: Decimal(1)},
    ),
    (
        "education.school_construction",
        {},
        {education.CONSTRUCTION_PROJECTS: Decimal(1)},
    ),
    (
        "education.school_construction",
        {"milestone": "started"},
        {education.CONSTRUCTION_PROJECTS: Decimal(1)},
    ),
    (
        "education.school_construction",
        {"milestone": "completed"},
        {education.SCHOOLS_COMPLETED: Decimal(1)},
    ),
    ("construction.road_milestone", {}, {construction.ROADS_STARTED: Decimal(1)}),
    (
        "construction.road_milestone",
        {"milestone": "approved"},
        {construction.ROADS_APPROVED: Decimal(1)},
    ),
    (
        "construction.road_milestone",
        {"milestone": "completed"},
        {construction.ROADS_COMPLETED: Decimal(1)},
    ),
    ("construction.venue_milestone", {}, {construction.VENUES_OPENED: Decimal(1)}),
    (
        "construction.venue_milestone",
        {"milestone": "started"},
        {construction.VENUES_STARTED: Decimal(1)},
    ),
    ("construction.main_laid", {}, {construction.WATER_MAIN_KM: Decimal("1.850")}),
    (
        "construction.main_laid",
        {"utility": "gas", "length_km": "0.4"},
        {construction.GAS_MAIN_KM: Decimal("0.4")},
    ),
    ("renewal.project_milestone", {}, {renewal.PROJECTS_STARTED: Decimal(1)}),
    (
        "renewal.project_milestone",
        {"milestone": "plan_approved"},
        {renewal.PROJECTS_PLANNED: Decimal(1)},
    ),
    (
        "renewal.project_milestone",
        {"milestone": "topped_out"},
        {renewal.PROJECTS_TOPPED_OUT: Decimal(1)},
    ),
    (
        "urban_management.lighting_milestone",
        {},
        {urban_management.AREAS_LIT: Decimal(1)},
    ),
    (
        "urban_management.lighting_milestone",
        {"milestone": "started"},
        {urban_management.LIGHTING_STARTED: Decimal(1)},
    ),
    ("urban_management.park_opened", {}, {urban_management.PARKS_OPENED: Decimal(1)}),
    (
        "urban_management.area_greened",
        {},
        {urban_management.GREENED_AREA_M2: Decimal("18500.00")},
    ),
    ("health.family_beds_started", {}, {health.FAMILY_BED_INSTITUTIONS: Decimal(1)}),
    ("health.building_milestone", {}, {health.BUILDINGS_OPENED: Decimal(1)}),
    (
        "health.building_milestone",
        {"milestone": "started"},
        {health.BUILDINGS_STARTED: Decimal(1)},
    ),
    (
        "medical_insurance.station_opened",
        {},
        {medical_insurance.STATIONS_OPENED: Decimal(1)},
    ),
    # Levels: the percentage, from numerator and denominator when given (schemas/indicators.py).
    (
        "education.inclusive_rate_reported",
        {},
        {education.INCLUSIVE_RATE_PCT: Decimal("92.20")},
    ),
    (
        "education.inclusive_rate_reported",
        {"numerator": None, "denominator": None, "level_pct": "93.5"},
        {education.INCLUSIVE_RATE_PCT: Decimal("93.5")},
    ),
    (
        "housing.return_rate_reported",
        {},
        {housing.RETURN_RATE_PCT: Decimal("94.20")},
    ),
    (
        "housing.return_rate_reported",
        {"level_pct": "94.2"},
        {housing.RETURN_RATE_PCT: Decimal("94.20")},
    ),
    ("construction.correction", {}, {construction.ROADS_STARTED: Decimal(-1)}),
    ("renewal.correction", {}, {renewal.PROJECTS_STARTED: Decimal(-1)}),
    (
        "urban_management.correction",
        {},
        {urban_management.GREENED_AREA_M2: Decimal("-500.00")},
    ),
    ("health.correction", {}, {health.FAMILY_BED_INSTITUTIONS: Decimal(-1)}),
    ("medical_insurance.correction", {}, {medical_insurance.STATIONS_OPENED: Decimal(-1)}),
]


@pytest.mark.parametrize(("event_type", "changes", "expected"), MEASURES)
def test_measures(event_type: str, changes: dict[str, Any], expected: dict[str, Decimal]) -> None:
    measured = build(event_type, **changes).measures()
    assert measured == expected
    assert all(type(q) is Decimal for q in measured.values())


def test_every_event_type_is_measured_above() -> None:
    assert {event_type for event_type, _, _ in MEASURES} == set(BY_EVENT_TYPE)


def test_metric_names_are_the_fixed_ones() -> None:
    """Other code and the pledge catalogue use these names verbatim."""
    assert METRICS == {
        "housing.started_area_m2": ("housing", "m2"),
        "housing.started_units": ("housing", "units"),
        "housing.completed_area_m2": ("housing", "m2"),
        "housing.completed_units": ("housing", "units"),
        "housing.returned_households": ("housing", "households"),
        "housing.returned_persons": ("housing", "persons"),
        "education.schools_opened": ("education", "schools"),
        "education.school_places": ("education", "places"),
        "heating.connected_area_m2": ("heating", "m2"),
        "heating.pipe_km": ("heating", "km"),
        "parking.temporary_spaces": ("parking", "spaces"),
        "parking.permanent_spaces": ("parking", "spaces"),
        "parking.lots_opened": ("parking", "lots"),
        "drainage.points_repaired": ("drainage", "points"),
        "housing.preliminary_works_started": ("housing", "projects"),
        "housing.return_rate_pct": ("housing", "percent"),
        "education.school_construction_projects": ("education", "schools"),
        "education.schools_completed": ("education", "schools"),
        "education.kindergarten_inclusive_rate_pct": ("education", "percent"),
        "construction.roads_approved": ("construction", "roads"),
        "construction.roads_started": ("construction", "roads"),
        "construction.roads_completed": ("construction", "roads"),
        "construction.venues_started": ("construction", "buildings"),
        "construction.venues_opened": ("construction", "buildings"),
        "construction.water_main_km": ("construction", "km"),
        "construction.gas_main_km": ("construction", "km"),
        "renewal.projects_planned": ("renewal", "projects"),
        "renewal.projects_started": ("renewal", "projects"),
        "renewal.projects_topped_out": ("renewal", "projects"),
        "urban_management.lighting_started": ("urban_management", "areas"),
        "urban_management.areas_lit": ("urban_management", "areas"),
        "urban_management.parks_opened": ("urban_management", "parks"),
        "urban_management.greened_area_m2": ("urban_management", "m2"),
        "health.family_bed_institutions": ("health", "institutions"),
        "health.buildings_started": ("health", "buildings"),
        "health.buildings_opened": ("health", "buildings"),
        "medical_insurance.stations_opened": ("medical_insurance", "stations"),
    }


def test_every_measured_metric_is_declared_in_its_family() -> None:
    for event_type, changes, _ in MEASURES:
        model = build(event_type, **changes)
        for metric in model.measures():
            assert METRICS[metric][0] == model.family == BY_EVENT_TYPE[event_type].family


# --- topics, departments, corrections ------------------------------------------------------


def test_one_topic_per_family_written_by_its_own_department() -> None:
    assert tuple(spec.family for spec in ALL) == FAMILIES == DEPARTMENTS
    for spec in ALL:
        assert spec.name == f"city.{spec.family}.v1"
        assert spec.departments == frozenset({spec.family})
        assert BY_FAMILY[spec.family] is spec
        for event_type, model in spec.by_type.items():
            assert event_type.startswith(f"{spec.family}.")
            assert model.family == spec.family
            assert model.model_fields["event_type"].default == event_type
    assert HEATING.name == "city.heating.v1"
    assert DEADLETTER_TOPIC == "city.deadletter.v1"


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_its_correction(family: str) -> None:
    model = BY_FAMILY[family].by_type[f"{family}.correction"]
    assert issubclass(model, Correction)
    assert set(model.metrics) == {m for m, (f, _) in METRICS.items() if f == family}


def test_correction_delta_bound_follows_the_metric() -> None:
    assert build("heating.correction", delta="-5000000").measures()
    with pytest.raises(ValueError, match="exceeds"):
        build("heating.correction", delta="-5000000.01")
    with pytest.raises(ValueError, match="decimal places"):
        build("heating.correction", metric=heating.PIPE_KM, delta="0.0001")


# --- partition keys and ids -----------------------------------------------------------------


def test_partition_key_is_district_and_project() -> None:
    assert build("heating.area_connected").partition_key() == "shifo/石佛安置区二期".encode()
    assert build("heating.area_connected", project=None).partition_key() == b"shifo/"
    # Normalised spellings of one project land on one partition.
    messy = build("heating.area_connected", district="石佛街道", project=" 石佛\u200b安置区二期 ")
    assert messy.partition_key() == build("heating.area_connected").partition_key()


def test_correction_sent_with_the_corrected_events_project_shares_its_partition() -> None:
    corrected = build("heating.area_connected")
    correction = build("heating.correction", corrects=str(corrected.event_id))
    assert correction.partition_key() == corrected.partition_key()


def test_ledger_event_id_is_deterministic() -> None:
    first = ledger_event_id("heating", "2024台账#17")
    assert first == ledger_event_id("heating", "2024台账#17")
    assert first == uuid.uuid5(LEDGER_NAMESPACE, "heating\x1f2024台账#17")
    assert first.version == 5
    assert first != ledger_event_id("housing", "2024台账#17")
    assert first != ledger_event_id("heating", "2024台账#18")
    # The separator keeps (department, ref) pairs apart that plain concatenation would merge.
    assert ledger_event_id("heat", "ing#1") != ledger_event_id("heating", "#1")


def test_new_event_ids_are_time_ordered_uuid7() -> None:
    ids = [new_event_id() for _ in range(100)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_models_are_immutable() -> None:
    model = build("heating.area_connected")
    with pytest.raises(ValueError, match="frozen"):
        model.area_m2 = Decimal(1)  # type: ignore[misc]


# --- normalisation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("estate 12", "estate 12"),
        ("  estate   12\t\n", "estate 12"),
        ("石佛\u200b安置区", "石佛安置区"),
        ("\ufeff石佛\u200c\u200d\u2060安置区", "石佛安置区"),
        ("ＡＢＣ１２３", "ABC123"),
        ("石佛\u3000安置区", "石佛 安置区"),
        ("石佛\u00a0\u00a0安置区", "石佛 安置区"),
        ("（二期）", "(二期)"),
        ("\u200b \u3000", ""),
    ],
)
def test_normalise_text(raw: str, expected: str) -> None:
    assert normalise_text(raw) == expected
    assert normalise_text(expected) == expected


def test_text_fields_are_normalised_on_every_model() -> None:
    school = build("education.school_opened", school_name="  外国语\u200b实验小学 ")
    assert isinstance(school, education.EducationSchoolOpened)
    assert school.school_name == "外国语实验小学"
    lot = build("parking.lot_opened", lot_name="科学大道\u3000临时停车场")
    assert isinstance(lot, parking.ParkingLotOpened)
    assert lot.lot_name == "科学大道 临时停车场"
    fix = build("heating.correction", reason=" 重复\u200b录入 ", approved_by="Ｚｈａｎｇ")
    assert isinstance(fix, Correction)
    assert (fix.reason, fix.approved_by) == ("重复录入", "Zhang")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shifo", District.SHIFO),
        ("石佛街道", District.SHIFO),
        ("石佛", District.SHIFO),
        ("Shifo Subdistrict", District.SHIFO),
        ("shifo subdistrict", District.SHIFO),
        ("Shifo", District.SHIFO),
        ("沟赵", District.GOUZHAO),
        ("Gouzhao Sub-district", District.GOUZHAO),
        ("枫杨街道", District.FENGYANG),
        ("ＷＵＴＯＮＧ", District.WUTONG),
        ("双桥\u200b街道", District.SHUANGQIAO),
        ("高新区（全区）", District.ZONE),
        ("高新区(全区)", District.ZONE),
        ("zone", District.ZONE),
        ("石桥街道", None),
        ("", None),
    ],
)
def test_district_names(text: str, expected: District | None) -> None:
    assert district_code(text) == expected


def test_every_label_is_a_name() -> None:
    for district in District:
        zh, en = LABELS[district]
        assert district_code(zh) == district_code(en) == district_code(district.value) == district
    assert set(NAMES.values()) == set(District)
    assert len(SUBDISTRICTS) == 5


def test_good_examples_use_every_event_type_once() -> None:
    for event_type, example in GOOD.items():
        assert example["event_type"] == event_type


@pytest.mark.parametrize(
    ("text", "places"),
    [
        ("1.50", 1),
        ("1E+3", 0),
        ("100", 0),
        ("0.125", 3),
        ("0.00", 0),
        ("-0.010", 2),
        # normalize() would round this to 1 at the default 28-digit precision.
        ("1.0000000000000000000000000001", 28),
    ],
)
def test_decimal_places_ignores_trailing_zeros_only(text: str, places: int) -> None:
    assert decimal_places(Decimal(text)) == places

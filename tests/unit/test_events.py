"""The event models: what each one measures, where it is partitioned, how ids are derived,
how text and districts are normalised, and that topics, departments and metrics agree."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from schemas import drainage, education, heating, housing, parking
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

FAMILIES = ("housing", "education", "heating", "parking", "drainage")


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

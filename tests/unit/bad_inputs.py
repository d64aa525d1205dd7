"""A corpus of what departments really send wrong, as data, plus good examples.

``CASES``: (name, topic family, raw record bytes, expected reason, expected field, stage).
Stage ``decode`` cases are rejected by :func:`schemas.validation.decode` with exactly that
reason and field (``tests/unit/test_validation.py``). Stage ``sink`` cases pass decode; only
the worker, against the ledger, can find them (the worker-level test uses ``before``: the
records sent ahead of ``raw`` on the same topic).

``ACCEPTED``: inputs that look dangerous or sloppy but are valid, with the value decode
must produce. SQL-injection strings are ordinary text: every statement is parameterised,
so they are stored exactly as sent; rejecting them would only teach people to misspell
their projects. Text that normalisation repairs (zero-width and other invisible characters,
blank-looking fillers, full-width forms, extra spaces) is accepted in normalised form; text
that normalisation empties is rejected (``empty_text``); bidi controls and the soft hyphen
stay refused (``invalid_field``).

All times are judged against ``NOW``; pass ``now=NOW`` to decode.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

import orjson

from schemas.topics import FAMILIES

CST = timezone(timedelta(hours=8))
NOW = datetime(2024, 10, 1, 12, 0, tzinfo=CST)
OCCURRED = "2024-09-01T09:30:00+08:00"
REPORTED = "2024-09-02T10:00:00+08:00"

_NS = uuid.UUID("8d3c1f52-3f1e-4a7b-9c55-7f3e2a1b0c9d")


def fixed_id(label: str) -> str:
    return str(uuid.uuid5(_NS, label))


def _envelope(event_type: str, department: str) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "event_id": fixed_id(event_type),
        "department": department,
        "district": "shifo",
        "occurred_at": OCCURRED,
        "reported_at": REPORTED,
        "project": "石佛安置区二期",
        "source_ref": "2024台账#17",
    }


def _correction(family: str, metric: str, delta: str) -> dict[str, Any]:
    return {
        **_envelope(f"{family}.correction", family),
        "corrects": fixed_id(f"corrected {family}"),
        "metric": metric,
        "delta": delta,
        "reason": "台账重复录入 / entered twice in the ledger",
        "approved_by": "张伟 (科长)",
    }


# A good example of every event type: each family declares its own (schemas/<family>.py).
GOOD: dict[str, dict[str, Any]] = {}
for _family in FAMILIES:
    for _kind in _family.events:
        GOOD[_kind.name] = {**_envelope(_kind.name, _family.name), **_kind.example}
    GOOD[_family.correction_type] = _correction(_family.name, **_family.correction_example)

DROP: Any = object()
"""As a value in :func:`event`: remove that field."""


def event(event_type: str, /, **changes: Any) -> dict[str, Any]:
    """A good example of ``event_type`` with some fields changed (or DROPped)."""
    data = {**GOOD[event_type], **changes}
    return {key: value for key, value in data.items() if value is not DROP}


def encode(event_type: str, /, **changes: Any) -> bytes:
    return orjson.dumps(event(event_type, **changes))


def _with(data: dict[str, Any], **extra: Any) -> bytes:
    return orjson.dumps({**data, **extra})


@dataclass(frozen=True)
class Case:
    name: str
    family: str
    raw: bytes | None
    reason: str
    field: str | None
    stage: Literal["decode", "sink"] = "decode"
    before: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Accepted:
    name: str
    family: str
    raw: bytes
    field: str
    expected: Any  # the attribute's value on the decoded event


AREA = "heating.area_connected"
_HEAT = GOOD[AREA]
_HEAT_TEXT = orjson.dumps(_HEAT).decode()
_PAD = 64 * 1024 - len(orjson.dumps({**_HEAT, "project": ""})) + 1


CASES: tuple[Case, ...] = (
    # --- the record itself ------------------------------------------------------------
    Case("empty_bytes", "heating", b"", "empty_record", None),
    Case("null_record_value", "heating", None, "empty_record", None),
    Case("one_megabyte", "heating", _with(_HEAT, project="x" * 1_000_000), "too_large", None),
    Case("one_byte_over_64_kib", "heating", _with(_HEAT, project="x" * _PAD), "too_large", None),
    Case("invalid_utf8_byte", "heating", b'{"project": "\xff"}', "invalid_utf8", None),
    Case("gbk_encoded_chinese", "heating", _HEAT_TEXT.encode("gbk"), "invalid_utf8", None),
    Case("utf16_encoded", "heating", _HEAT_TEXT.encode("utf-16"), "invalid_utf8", None),
    Case("truncated_json", "heating", _HEAT_TEXT[:-20].encode(), "invalid_json", None),
    Case(
        "trailing_comma",
        "heating",
        b'{"event_type": "heating.area_connected",}',
        "invalid_json",
        None,
    ),
    Case(
        "single_quotes",
        "heating",
        b"{'event_type': 'heating.area_connected'}",
        "invalid_json",
        None,
    ),
    Case(
        "nan_literal",
        "heating",
        _HEAT_TEXT.replace('"12000.50"', "NaN").encode(),
        "invalid_json",
        None,
    ),
    Case(
        "infinity_literal",
        "heating",
        _HEAT_TEXT.replace('"12000.50"', "Infinity").encode(),
        "invalid_json",
        None,
    ),
    Case(
        "number_beyond_double",
        "heating",
        _HEAT_TEXT.replace('"12000.50"', "1e309").encode(),
        "invalid_json",
        None,
    ),
    Case("utf8_bom", "heating", b"\xef\xbb\xbf" + _HEAT_TEXT.encode(), "invalid_json", None),
    Case("whitespace_only", "heating", b"  \n ", "invalid_json", None),
    Case(
        "two_objects_in_one_record",
        "heating",
        (_HEAT_TEXT + _HEAT_TEXT).encode(),
        "invalid_json",
        None,
    ),
    Case("json_array_of_events", "heating", orjson.dumps([_HEAT]), "not_an_object", None),
    Case("json_string", "heating", b'"heating.area_connected"', "not_an_object", None),
    Case("json_null", "heating", b"null", "not_an_object", None),
    Case("json_number", "heating", b"12000.5", "not_an_object", None),
    # --- event type and department ----------------------------------------------------
    Case(
        "missing_event_type",
        "heating",
        encode(AREA, event_type=DROP),
        "missing_field",
        "event_type",
    ),
    Case(
        "unknown_event_type",
        "heating",
        encode(AREA, event_type="heating.area_disconnected"),
        "unknown_event_type",
        "event_type",
    ),
    Case(
        "event_type_of_other_topic",
        "heating",
        encode("housing.units_completed"),
        "unknown_event_type",
        "event_type",
    ),
    Case(
        "event_type_not_a_string",
        "heating",
        encode(AREA, event_type=7),
        "unknown_event_type",
        "event_type",
    ),
    Case(
        "event_type_wrong_case",
        "heating",
        encode(AREA, event_type="Heating.Area_Connected"),
        "unknown_event_type",
        "event_type",
    ),
    Case(
        "wrong_department_for_type",
        "heating",
        encode(AREA, department="housing"),
        "department_not_allowed",
        "department",
    ),
    Case(
        "correction_from_other_department",
        "heating",
        encode("heating.correction", department="parking"),
        "department_not_allowed",
        "department",
    ),
    Case(
        "unknown_department",
        "heating",
        encode(AREA, department="finance"),
        "invalid_field",
        "department",
    ),
    Case(
        "missing_department",
        "heating",
        encode(AREA, department=DROP),
        "missing_field",
        "department",
    ),
    Case(
        "schema_version_2",
        "heating",
        encode(AREA, schema_version=2),
        "unsupported_version",
        "schema_version",
    ),
    # --- envelope fields ----------------------------------------------------------------
    Case("missing_event_id", "heating", encode(AREA, event_id=DROP), "missing_field", "event_id"),
    Case(
        "event_id_not_a_uuid",
        "heating",
        encode(AREA, event_id="HT-2024-0017"),
        "invalid_field",
        "event_id",
    ),
    Case(
        "event_id_nil_uuid",
        "heating",
        encode(AREA, event_id=str(uuid.UUID(int=0))),
        "invalid_field",
        "event_id",
    ),
    Case(
        "unknown_district",
        "heating",
        encode(AREA, district="石桥街道"),
        "unknown_district",
        "district",
    ),
    Case("district_as_number", "heating", encode(AREA, district=3), "invalid_field", "district"),
    Case(
        "naive_datetime",
        "heating",
        encode(AREA, occurred_at="2024-09-01T09:30:00"),
        "invalid_field",
        "occurred_at",
    ),
    Case(
        "epoch_millis_timestamp",
        "heating",
        encode(AREA, occurred_at=1725154200000),
        "invalid_field",
        "occurred_at",
    ),
    Case(
        "date_that_does_not_exist",
        "heating",
        encode(AREA, occurred_at="2024-02-30T09:00:00+08:00"),
        "invalid_field",
        "occurred_at",
    ),
    Case(
        "chinese_date_format",
        "heating",
        encode(AREA, occurred_at="2024年9月1日"),
        "invalid_field",
        "occurred_at",
    ),
    Case(
        "occurred_in_future",
        "heating",
        encode(
            AREA, occurred_at="2024-10-01T13:00:00+08:00", reported_at="2024-10-01T13:00:00+08:00"
        ),
        "in_future",
        "occurred_at",
    ),
    Case(
        "reported_in_future",
        "heating",
        encode(AREA, reported_at="2024-10-02T12:00:00+08:00"),
        "in_future",
        "reported_at",
    ),
    Case(
        "reported_before_occurred",
        "heating",
        encode(AREA, reported_at="2024-08-31T09:30:00+08:00"),
        "reported_before_occurred",
        "reported_at",
    ),
    Case(
        "spreadsheet_default_date",
        "heating",
        encode(AREA, occurred_at="1900-01-01T00:00:00+08:00"),
        "too_early",
        "occurred_at",
    ),
    Case(
        "reported_at_unix_epoch",
        "heating",
        encode(AREA, reported_at="1970-01-01T08:00:00+08:00"),
        "too_early",
        "reported_at",
    ),
    Case("project_empty_string", "heating", encode(AREA, project=""), "empty_text", "project"),
    Case(
        "project_only_spaces_and_zero_width",
        "heating",
        encode(AREA, project=" \u3000\u200b\ufeff "),
        "empty_text",
        "project",
    ),
    Case(
        "project_with_nul",
        "heating",
        encode(AREA, project="estate\u00001"),
        "invalid_field",
        "project",
    ),
    Case(
        "project_with_bidi_override",
        "heating",
        encode(AREA, project="estate \u202e1"),
        "invalid_field",
        "project",
    ),
    Case(
        "project_too_long", "heating", encode(AREA, project="石" * 201), "invalid_field", "project"
    ),
    Case("project_as_number", "heating", encode(AREA, project=17), "invalid_field", "project"),
    Case(
        "source_ref_as_object",
        "heating",
        encode(AREA, source_ref={"row": 17}),
        "invalid_field",
        "source_ref",
    ),
    # --- unknown fields -----------------------------------------------------------------
    Case("unknown_extra_field", "heating", encode(AREA, comment="ok"), "unknown_field", "comment"),
    Case(
        "pipeline_field_ingested_at",
        "heating",
        encode(AREA, ingested_at=REPORTED),
        "unknown_field",
        "ingested_at",
    ),
    Case(
        "misspelt_quantity",
        "heating",
        encode(AREA, area_m2=DROP, aera_m2="12000.50"),
        "missing_field",
        "area_m2",
    ),
    Case("nul_in_field_name", "heating", encode(AREA, **{"\u0000": 1}), "unknown_field", "\\u0000"),
    # --- quantities ---------------------------------------------------------------------
    Case("area_negative", "heating", encode(AREA, area_m2=-5), "out_of_range", "area_m2"),
    Case("area_zero", "heating", encode(AREA, area_m2="0"), "out_of_range", "area_m2"),
    Case("area_nan_string", "heating", encode(AREA, area_m2="NaN"), "not_finite", "area_m2"),
    Case(
        "area_infinity_string", "heating", encode(AREA, area_m2="Infinity"), "not_finite", "area_m2"
    ),
    Case("area_1e308", "heating", encode(AREA, area_m2=1e308), "out_of_range", "area_m2"),
    Case("area_1e308_string", "heating", encode(AREA, area_m2="1e308"), "out_of_range", "area_m2"),
    Case("area_float_noise", "heating", encode(AREA, area_m2=0.1 + 0.2), "too_precise", "area_m2"),
    Case("area_boolean", "heating", encode(AREA, area_m2=True), "invalid_field", "area_m2"),
    Case(
        "area_with_unit_text",
        "heating",
        encode(AREA, area_m2="1.2万㎡"),
        "invalid_field",
        "area_m2",
    ),
    Case("area_null", "heating", encode(AREA, area_m2=None), "invalid_field", "area_m2"),
    Case(
        "area_deeply_nested",
        "heating",
        encode(AREA, area_m2=[[[[[[[[[[1]]]]]]]]]]),
        "invalid_field",
        "area_m2",
    ),
    Case(
        "pipe_metres_as_km",
        "heating",
        encode("heating.pipe_laid", length_km=2375),
        "out_of_range",
        "length_km",
    ),
    Case(
        "units_fractional",
        "housing",
        encode("housing.units_completed", units=912.5),
        "invalid_field",
        "units",
    ),
    Case(
        "units_boolean",
        "housing",
        encode("housing.units_completed", units=True),
        "invalid_field",
        "units",
    ),
    Case(
        "units_beyond_64_bits",
        "housing",
        encode("housing.units_completed", units=10**19),
        "out_of_range",
        "units",
    ),
    Case(
        "units_year_total",
        "housing",
        encode("housing.units_completed", units=100_000),
        "out_of_range",
        "units",
    ),
    Case(
        "area_in_wan_m2",
        "housing",
        encode("housing.units_completed", area_m2="79.94", units=9120),
        "out_of_range",
        "area_m2",
    ),
    Case(
        "persons_fewer_than_households",
        "housing",
        encode("housing.households_returned", persons=300),
        "out_of_range",
        "persons",
    ),
    Case(
        "households_and_persons_missing",
        "housing",
        encode("housing.households_returned", households=DROP, persons=DROP),
        "missing_field",
        "households",
    ),
    Case(
        "school_places_year_total",
        "education",
        encode("education.places_added", places=18420),
        "out_of_range",
        "places",
    ),
    Case(
        "school_level_unknown",
        "education",
        encode("education.places_added", level="university"),
        "invalid_field",
        "level",
    ),
    Case(
        "school_opened_without_name",
        "education",
        encode("education.school_opened", school_name=DROP),
        "missing_field",
        "school_name",
    ),
    Case(
        "parking_kind_unknown",
        "parking",
        encode("parking.spaces_opened", kind="underground"),
        "invalid_field",
        "kind",
    ),
    Case(
        "parking_spaces_zero",
        "parking",
        encode("parking.lot_opened", spaces=0),
        "out_of_range",
        "spaces",
    ),
    Case(
        "drainage_lat_lon_swapped",
        "drainage",
        encode("drainage.point_repaired", location={"lat": 113.5521, "lon": 34.8157}),
        "out_of_range",
        "location.lat",
    ),
    Case(
        "drainage_location_extra_field",
        "drainage",
        encode("drainage.point_repaired", location={"lat": 34.8, "lon": 113.5, "alt": 90}),
        "unknown_field",
        "location.alt",
    ),
    Case(
        "drainage_location_as_text",
        "drainage",
        encode("drainage.point_repaired", location="34.8,113.5"),
        "invalid_field",
        "location",
    ),
    Case(
        "drainage_point_name_zero_width",
        "drainage",
        encode("drainage.point_repaired", point_name="\u200b\u200d"),
        "empty_text",
        "point_name",
    ),
    # Text that renders as blank is whitespace (schemas.fields: BLANK, INVISIBLE_RANGES).
    Case(
        "project_only_hangul_fillers",
        "heating",
        encode(AREA, project="\u3164\uffa0\u115f\u1160"),
        "empty_text",
        "project",
    ),
    Case(
        "project_only_braille_blanks",
        "heating",
        encode(AREA, project="\u2800 \u2800"),
        "empty_text",
        "project",
    ),
    Case(
        "school_name_only_variation_selectors",
        "education",
        encode("education.school_opened", school_name="\ufe0f\ufe0e\U000e0100"),
        "empty_text",
        "school_name",
    ),
    Case(
        "lot_name_only_mongolian_khmer_and_cgj",
        "parking",
        encode("parking.lot_opened", lot_name="\u180e\u17b4\u17b5\u034f"),
        "empty_text",
        "lot_name",
    ),
    Case(
        "point_name_only_invisible_operators",
        "drainage",
        encode("drainage.point_repaired", point_name="\u2061\u2062\u2063\u2064"),
        "empty_text",
        "point_name",
    ),
    Case(
        "project_with_right_to_left_mark",
        "heating",
        encode(AREA, project="estate\u200f 1"),
        "invalid_field",
        "project",
    ),
    Case(
        "project_with_soft_hyphen",
        "heating",
        encode(AREA, project="石佛\u00ad安置区"),
        "invalid_field",
        "project",
    ),
    # --- corrections --------------------------------------------------------------------
    Case(
        "correction_zero_delta",
        "heating",
        encode("heating.correction", delta="0.00"),
        "out_of_range",
        "delta",
    ),
    Case(
        "correction_other_family_metric",
        "heating",
        encode("heating.correction", metric="housing.completed_units"),
        "metric_not_in_family",
        "metric",
    ),
    Case(
        "correction_unknown_metric",
        "heating",
        encode("heating.correction", metric="heating.area"),
        "invalid_field",
        "metric",
    ),
    Case(
        "correction_delta_beyond_bound",
        "heating",
        encode("heating.correction", delta="-5000000.01"),
        "out_of_range",
        "delta",
    ),
    Case(
        "correction_fractional_count",
        "housing",
        encode("housing.correction", delta="1.5"),
        "too_precise",
        "delta",
    ),
    Case(
        "correction_hidden_fraction_of_a_count",
        "drainage",
        encode("drainage.correction", delta="-1.0000000000000000000000000001"),
        "too_precise",
        "delta",
    ),
    Case(
        "correction_of_two_points",
        "drainage",
        encode("drainage.correction", delta="-2"),
        "out_of_range",
        "delta",
    ),
    Case(
        "correction_empty_reason",
        "heating",
        encode("heating.correction", reason="  "),
        "empty_text",
        "reason",
    ),
    Case(
        "correction_approved_by_only_tags",
        "heating",
        encode("heating.correction", approved_by="\U000e0001\U000e0041\U000e007f"),
        "empty_text",
        "approved_by",
    ),
    Case(
        "correction_reason_only_musical_invisibles",
        "heating",
        encode("heating.correction", reason="\U0001d173\U0001d159\U0001d17a"),
        "empty_text",
        "reason",
    ),
    Case(
        "correction_without_approval",
        "heating",
        encode("heating.correction", approved_by=DROP),
        "missing_field",
        "approved_by",
    ),
    Case(
        "correction_without_reference",
        "heating",
        encode("heating.correction", source_ref=DROP),
        "missing_field",
        "source_ref",
    ),
    Case(
        "correction_of_itself",
        "heating",
        encode("heating.correction", corrects=fixed_id("heating.correction")),
        "invalid_field",
        "corrects",
    ),
    Case(
        "correction_corrects_not_a_uuid",
        "heating",
        encode("heating.correction", corrects="row 17"),
        "invalid_field",
        "corrects",
    ),
    Case(
        "correction_delta_nan",
        "heating",
        encode("heating.correction", delta="NaN"),
        "not_finite",
        "delta",
    ),
    # --- only the sink can tell ---------------------------------------------------------
    Case(
        "correction_of_unknown_event",
        "heating",
        encode("heating.correction", corrects=fixed_id("never sent")),
        "unknown_corrected_event",
        "corrects",
        stage="sink",
    ),
    Case(
        "duplicate_event_id_other_content",
        "heating",
        encode(AREA, area_m2="999.00"),
        "duplicate_event_id",
        "event_id",
        stage="sink",
        before=(encode(AREA),),
    ),
    Case(
        # A script retried after a timeout: the same correction (same 审批单号) under a
        # new event_id must not be applied twice.
        "correction_resent_under_new_event_id",
        "heating",
        encode(
            "heating.correction",
            event_id=fixed_id("the correction, sent again"),
            source_ref="审批单 2024-088",
        ),
        "duplicate_correction",
        "source_ref",
        stage="sink",
        before=(
            encode(AREA, event_id=fixed_id("corrected heating")),
            encode(
                "heating.correction",
                event_id=fixed_id("the correction, first sent"),
                source_ref="审批单 2024-088",
            ),
        ),
    ),
)


_INJECTION = "Robert'); DROP TABLE events;--"
_OR_TRUE = "1' OR '1'='1"

ACCEPTED: tuple[Accepted, ...] = (
    Accepted(
        "sql_injection_in_project",
        "heating",
        encode(AREA, project=_INJECTION),
        "project",
        _INJECTION,
    ),
    Accepted(
        "sql_injection_in_source_ref",
        "heating",
        encode(AREA, source_ref=_OR_TRUE),
        "source_ref",
        _OR_TRUE,
    ),
    Accepted(
        "html_in_project",
        "heating",
        encode(AREA, project="<script>alert(1)</script>"),
        "project",
        "<script>alert(1)</script>",
    ),
    Accepted(
        "zero_width_inside_project",
        "heating",
        encode(AREA, project="石佛\u200b安置区\u2060二期\ufeff"),
        "project",
        "石佛安置区二期",
    ),
    Accepted(
        "blank_fillers_inside_project",
        "heating",
        encode(AREA, project="石佛\u3164安置区\uffa0二期\u2800"),
        "project",
        "石佛 安置区 二期",
    ),
    Accepted(
        "selectors_and_invisible_operators_inside_project",
        "heating",
        encode(AREA, project="石佛\ufe0f安置区\u2062二期\U000e0020"),
        "project",
        "石佛安置区二期",
    ),
    Accepted(
        "full_width_project",
        "heating",
        encode(AREA, project="ＡＢＣ１２３\u3000二期"),
        "project",
        "ABC123 二期",
    ),
    Accepted(
        "project_spaces_collapsed",
        "heating",
        encode(AREA, project="  石佛   安置区\t二期 \n"),
        "project",
        "石佛 安置区 二期",
    ),
    Accepted(
        "emoji_project",
        "heating",
        encode(AREA, project="🏠 石佛安置区"),
        "project",
        "🏠 石佛安置区",
    ),
    Accepted(
        "district_chinese_full_name",
        "heating",
        encode(AREA, district="石佛街道"),
        "district",
        "shifo",
    ),
    Accepted(
        "district_chinese_short_name",
        "heating",
        encode(AREA, district="双桥"),
        "district",
        "shuangqiao",
    ),
    Accepted(
        "district_english_name",
        "heating",
        encode(AREA, district="Fengyang Subdistrict"),
        "district",
        "fengyang",
    ),
    Accepted(
        "district_code_upper_case",
        "heating",
        encode(AREA, district=" WUTONG "),
        "district",
        "wutong",
    ),
    Accepted(
        "district_zone_chinese", "heating", encode(AREA, district="高新区"), "district", "zone"
    ),
    Accepted(
        "area_as_json_number",
        "heating",
        encode(AREA, area_m2=12000.5),
        "area_m2",
        Decimal("12000.5"),
    ),
    Accepted(
        "area_trailing_zeros",
        "heating",
        encode(AREA, area_m2="12000.500"),
        "area_m2",
        Decimal("12000.5"),
    ),
    Accepted(
        "units_as_numeric_string",
        "housing",
        encode("housing.units_completed", units="912"),
        "units",
        912,
    ),
    Accepted(
        "occurred_within_clock_skew",
        "heating",
        encode(
            AREA, occurred_at="2024-10-01T12:04:00+08:00", reported_at="2024-10-01T12:04:00+08:00"
        ),
        "occurred_at",
        datetime(2024, 10, 1, 12, 4, tzinfo=CST),
    ),
    Accepted(
        "reported_within_clock_skew",
        "heating",
        encode(AREA, reported_at="2024-09-01T09:26:00+08:00"),
        "reported_at",
        datetime(2024, 9, 1, 9, 26, tzinfo=CST),
    ),
    Accepted(
        "utc_offset_z",
        "heating",
        encode(AREA, occurred_at="2024-09-01T01:30:00Z"),
        "occurred_at",
        datetime(2024, 9, 1, 9, 30, tzinfo=CST),
    ),
    Accepted("project_null", "heating", encode(AREA, project=None), "project", None),
    Accepted("project_absent", "heating", encode(AREA, project=DROP), "project", None),
    Accepted(
        "duplicate_json_key_last_wins",
        "heating",
        _HEAT_TEXT.replace('"area_m2"', '"area_m2":"1.00","area_m2"').encode(),
        "area_m2",
        Decimal("12000.50"),
    ),
    Accepted(
        "households_only",
        "housing",
        encode("housing.households_returned", persons=DROP),
        "households",
        850,
    ),
    Accepted(
        "correction_positive_delta", "parking", encode("parking.correction"), "delta", Decimal(20)
    ),
)

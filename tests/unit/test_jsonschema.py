"""The committed JSON Schemas equal a fresh build, and agree with decode on examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from schemas.jsonschema_export import OUT_DIR, build, render, write
from schemas.rejections import Rejection
from schemas.topics import BY_EVENT_TYPE
from schemas.validation import decode
from tests.unit.bad_inputs import DROP, GOOD, NOW, encode, event

SCHEMAS = build()


def validator(event_type: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        SCHEMAS[event_type], format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_committed_schemas_equal_a_fresh_build() -> None:
    committed = {path.stem: path.read_text(encoding="utf-8") for path in OUT_DIR.glob("*.json")}
    fresh = {event_type: render(schema) for event_type, schema in SCHEMAS.items()}
    stale = sorted(set(committed) ^ set(fresh)) + sorted(
        t for t in set(committed) & set(fresh) if committed[t] != fresh[t]
    )
    assert not stale, f"run 'python -m schemas.jsonschema_export'; out of date: {stale}"


def test_write_replaces_stale_files(tmp_path: Path) -> None:
    (tmp_path / "heating.area_removed.json").write_text("{}")
    written = write(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
    assert len(written) == len(BY_EVENT_TYPE)


def test_rendering_is_sorted_indented_and_ends_with_a_newline() -> None:
    text = render(SCHEMAS["heating.area_connected"])
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text.startswith('{\n  "$defs"')


@pytest.mark.parametrize("event_type", sorted(BY_EVENT_TYPE))
def test_every_schema_is_valid_and_accepts_the_good_example(event_type: str) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[event_type])
    validator(event_type).validate(GOOD[event_type])
    # ... and what the producer sends of it.
    model = decode(BY_EVENT_TYPE[event_type], encode(event_type), now=NOW)
    assert not isinstance(model, Rejection)
    validator(event_type).validate(model.model_dump(mode="json"))


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("heating.area_connected", event("heating.area_connected", area_m2=DROP), "area_m2"),
    ("heating.area_connected", event("heating.area_connected", area_m2=-5), "area_m2"),
    ("heating.area_connected", event("heating.area_connected", area_m2=1e308), "area_m2"),
    ("heating.area_connected", event("heating.area_connected", area_m2="12.345"), "area_m2"),
    ("heating.area_connected", event("heating.area_connected", department="housing"), "department"),
    ("heating.area_connected", event("heating.area_connected", comment="x"), "comment"),
    ("heating.area_connected", event("heating.area_connected", event_type=DROP), "event_type"),
    ("heating.area_connected", event("heating.area_connected", schema_version=2), "schema_version"),
    ("heating.area_connected", event("heating.area_connected", event_id="HT-17"), "event_id"),
    ("heating.correction", event("heating.correction", metric="housing.completed_units"), "metric"),
    ("housing.units_completed", event("housing.units_completed", units=12.5), "units"),
    ("parking.spaces_opened", event("parking.spaces_opened", kind="underground"), "kind"),
    ("education.places_added", event("education.places_added", level="university"), "level"),
    (
        "drainage.point_repaired",
        event("drainage.point_repaired", location={"lat": 113.5, "lon": 34.8}),
        "location",
    ),
]


@pytest.mark.parametrize(("event_type", "example", "field"), BAD)
def test_schema_and_decode_both_reject(
    event_type: str, example: dict[str, Any], field: str
) -> None:
    errors = list(validator(event_type).iter_errors(example))
    assert errors, "the JSON Schema accepted it"
    named = {str(part) for e in errors for part in (*e.absolute_path, e.message)}
    assert any(field in text for text in named), [e.message for e in errors]

    outcome = decode(BY_EVENT_TYPE[event_type], orjson.dumps(example), now=NOW)
    assert isinstance(outcome, Rejection)
    assert outcome.field is not None and outcome.field.startswith(field)

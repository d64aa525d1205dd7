"""Subdistrict names as clerks write them: the office forms (石佛街道办事处, 石佛办 …) mean
the subdistrict, in the ledger import and in the event model alike; the names accepted
before keep their meaning; an unknown or ambiguous name is refused naming the five."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from schemas.districts import LABELS, NAMES, SUBDISTRICTS, District, district_code
from schemas.rejections import Rejection
from schemas.topics import HEATING
from schemas.validation import decode

NOW = datetime(2025, 1, 15, tzinfo=UTC)
# What clerks write for their own subdistrict, {} being its short name (石佛).
OFFICE_FORMS = (
    "{}街道办事处",
    "{}办事处",
    "{}街道办",
    "{}办",
    "{} 街道",
    "{}街道 ",
    " {} 街道办事处",
    "{}　街道",  # an ideographic space, as an IME types it
    "高新区{}街道",
    "郑州高新区{}办事处",
    "{}\u200b街道办事处",
)


def _short(district: District) -> str:
    return LABELS[district][0].removesuffix("街道")


@pytest.mark.parametrize("district", SUBDISTRICTS, ids=lambda d: d.value)
@pytest.mark.parametrize("form", OFFICE_FORMS)
def test_every_office_form_of_every_subdistrict_is_that_subdistrict(
    district: District, form: str
) -> None:
    assert district_code(form.format(_short(district))) is district


def _event(district: str) -> bytes:
    return orjson.dumps(
        {
            "event_type": "heating.area_connected",
            "event_id": "0190f5e4-8a2b-7c3d-9e4f-5a6b7c8d9e0f",
            "department": "heating",
            "district": district,
            "occurred_at": "2024-10-08T00:00:00+08:00",
            "reported_at": "2024-10-09T10:00:00+08:00",
            "area_m2": "1200",
        }
    )


@pytest.mark.parametrize("name", ["沟赵办事处", "枫杨街道办事处", "梧桐办", "双桥 街道"])
def test_the_event_model_stores_an_office_form_as_the_code(name: str) -> None:
    event = decode(HEATING, _event(name), now=NOW)
    assert not isinstance(event, Rejection), event
    assert event.district == district_code(name) and event.district in SUBDISTRICTS
    assert orjson.loads(event.model_dump_json())["district"] == event.district.value


def test_every_name_accepted_before_keeps_its_meaning() -> None:
    for name, district in NAMES.items():
        assert district_code(name) is district, name
        event = decode(HEATING, _event(name), now=NOW)
        assert not isinstance(event, Rejection) and event.district is district, name


@pytest.mark.parametrize("name", ["石桥街道", "火星办事处", "街道办事处", "办", "沟赵乡", "梧桐街"])
def test_an_unknown_name_is_refused_naming_the_five(name: str) -> None:
    assert district_code(name) is None
    why = decode(HEATING, _event(name), now=NOW)
    assert isinstance(why, Rejection)
    assert (why.reason, why.field) == ("unknown_district", "district")
    for district in SUBDISTRICTS:
        assert LABELS[district][0] in why.message_zh and LABELS[district][0] in why.message_en


def test_a_near_miss_is_asked_about() -> None:
    why = decode(HEATING, _event("梧桐街"), now=NOW)
    assert isinstance(why, Rejection)
    assert "是否指 梧桐街道" in why.message_zh and "did you mean 梧桐街道" in why.message_en


@pytest.mark.parametrize("name", ["石佛/沟赵", "石佛、沟赵街道", "枫杨双桥办事处"])
def test_a_name_of_two_subdistricts_is_refused_as_ambiguous(name: str) -> None:
    assert district_code(name) is None
    why = decode(HEATING, _event(name), now=NOW)
    assert isinstance(why, Rejection) and why.reason == "unknown_district"
    assert "每条记录只能属于一个街道" in why.message_zh
    assert "one record belongs to one subdistrict" in why.message_en


@pytest.mark.parametrize("name", ["高新区", "全区", "高新区（全区）", "郑州高新区"])
def test_the_zone_is_still_the_zone(name: str) -> None:
    assert district_code(name) is District.ZONE

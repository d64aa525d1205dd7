"""An event's times carry the standard library's fixed-offset timezone instead of the
tzinfo pydantic parses them with, and nothing anyone can see changes: the same instant, the
same offset, the same ISO text, the same JSON in the ledger's payload, the same verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, TypeAdapter

from schemas.envelope import Envelope, standard_zone
from schemas.topics import BY_EVENT_TYPE
from schemas.validation import decode
from streams.chain import event_json
from tests.unit.bad_inputs import GOOD, NOW

# pydantic's own parse of a time: what the envelope's fields held before.
_PARSED = TypeAdapter(AwareDatetime)
_OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timedelta(minutes=m))


def _text(when: datetime, offset: timedelta, style: str) -> str:
    text = when.replace(tzinfo=timezone(offset)).isoformat()
    if style == "Z" and not offset:
        return text.replace("+00:00", "Z")
    if style == "space":
        return text.replace("T", " ", 1)
    return text


@settings(max_examples=400)
@given(
    when=st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2024, 9, 29)),
    offset=_OFFSETS,
    style=st.sampled_from(["iso", "Z", "space"]),
    event_type=st.sampled_from(sorted(t for t in GOOD if not t.endswith(".correction"))),
)
def test_times_keep_instant_offset_text_and_json(
    when: datetime, offset: timedelta, style: str, event_type: str
) -> None:
    text = _text(when, offset, style)
    data: dict[str, Any] = {**GOOD[event_type], "occurred_at": text, "reported_at": text}
    event = decode(BY_EVENT_TYPE[event_type], orjson.dumps(data), now=NOW + timedelta(days=2))
    assert isinstance(event, Envelope), event
    parsed = _PARSED.validate_python(text)
    for value in (event.occurred_at, event.reported_at):
        assert type(value.tzinfo) is timezone
        assert value.tzinfo is UTC if not offset else value.tzinfo == timezone(offset)
        assert value == parsed
        assert value.utcoffset() == parsed.utcoffset() == offset
        assert value.isoformat() == parsed.isoformat()
        # The payload's bytes, as the sink writes them and as pydantic does, are those of the
        # time as pydantic parsed it: every chain hashed before still verifies.
        assert orjson.dumps(value, option=orjson.OPT_UTC_Z) == orjson.dumps(
            parsed, option=orjson.OPT_UTC_Z
        )
        assert _PARSED.dump_json(value) == _PARSED.dump_json(parsed)
    assert event_json(event) == orjson.dumps(
        {**event.model_dump(mode="json"), "occurred_at": _PARSED.dump_python(parsed, mode="json")},
        option=orjson.OPT_SORT_KEYS,
    )


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(0), UTC),
        (timedelta(hours=8), timezone(timedelta(hours=8))),
        (timedelta(hours=-5, minutes=-30), timezone(timedelta(hours=-5, minutes=-30))),
        (timedelta(hours=5, minutes=30, seconds=15), None),
    ],
)
def test_standard_zone(offset: timedelta, expected: timezone | None) -> None:
    assert standard_zone(timezone(offset)) == expected


@pytest.mark.parametrize(
    ("occurred_at", "too_early"),
    [
        # 1999-12-31T15:30:00Z: before 2000-01-01T00:00:00+08:00 (16:00Z), in year 2000's
        # wall time.
        ("2000-01-01T00:30:00+09:00", True),
        # 2000-01-01T00:59:59Z: after it, in 1999's wall time.
        ("1999-12-31T23:59:59-01:00", False),
    ],
)
def test_before_2000_is_judged_by_the_instant(occurred_at: str, too_early: bool) -> None:
    data = {**GOOD["heating.area_connected"], "occurred_at": occurred_at}
    outcome = decode(BY_EVENT_TYPE["heating.area_connected"], orjson.dumps(data), now=NOW)
    if too_early:
        assert not isinstance(outcome, Envelope)
        assert (outcome.reason, outcome.field) == ("too_early", "occurred_at")
    else:
        assert isinstance(outcome, Envelope)
        assert outcome.occurred_at == datetime(2000, 1, 1, 0, 59, 59, tzinfo=UTC)

"""The canonical content spliced from JSON parts is byte for byte what ``orjson.dumps`` of
the whole content writes: every ledger row ever hashed must hash the same again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.envelope import Envelope
from schemas.topics import BY_EVENT_TYPE
from schemas.validation import decode
from streams.chain import (
    ContentOf,
    canonical,
    content,
    event_json,
    instant,
    json_digest,
    payload_digest,
)
from tests.unit.bad_inputs import GOOD, NOW

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _reference(**fields: Any) -> bytes:
    """The definition: the whole content dumped at once, keys sorted."""
    body: dict[str, Any] = {
        "event_id": str(fields["event_id"]),
        "topic": fields["topic"],
        "partition": fields["partition"],
        "offset": fields["offset"],
        "ingested_at": fields["ingested_at"].astimezone(UTC).isoformat(),
        "payload": fields["payload"],
        "measures": fields["measures"],
    }
    if fields["incarnation"] != 1:
        body["incarnation"] = fields["incarnation"]
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


@given(
    event_id=st.uuids(),
    topic=st.text(),
    incarnation=st.integers(1, 2**31 - 1),
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**63 - 1),
    ingested_at=st.datetimes(
        min_value=datetime(2000, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
    ),
    payload=st.dictionaries(st.text(), _json, max_size=6),
    measures=st.dictionaries(st.text(), st.text(), max_size=3),
)
def test_spliced_content_is_the_sorted_dump(
    event_id: UUID,
    topic: str,
    incarnation: int,
    partition: int,
    offset: int,
    ingested_at: datetime,
    payload: dict[str, Any],
    measures: dict[str, str],
) -> None:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "topic": topic,
        "incarnation": incarnation,
        "partition": partition,
        "offset": offset,
        "ingested_at": ingested_at,
        "payload": payload,
        "measures": measures,
    }
    expected = _reference(**fields)
    assert canonical(**fields) == expected
    sorted_json = orjson.OPT_SORT_KEYS
    assert (
        content(
            event_id=str(event_id),
            topic=topic,
            incarnation=incarnation,
            partition=partition,
            offset=offset,
            ingested_at=instant(ingested_at),
            payload_json=orjson.dumps(payload, option=sorted_json),
            measures_json=orjson.dumps(measures, option=sorted_json),
        )
        == expected
    )
    # The per-batch template the sink builds rows with (streams.db.batch_rows).
    template = ContentOf(topic=topic, incarnation=incarnation, ingested_at=instant(ingested_at))
    assert (
        template(
            orjson.dumps(event_id),
            partition,
            offset,
            orjson.dumps(payload, option=sorted_json),
            orjson.dumps(measures, option=sorted_json),
        )
        == expected
    )
    assert json_digest(orjson.dumps(payload, option=sorted_json)) == payload_digest(payload)


# Values an event's fields may take, of every kind the models hold: times in several
# offsets and with fractions of a second, decimals written every way a sender may, text
# that normalisation changes, districts by name and code, counts as strings, a location.
_FIELD_VALUES = st.one_of(
    st.datetimes(
        min_value=datetime(2000, 1, 2),
        max_value=datetime(2024, 9, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
        ),
    ).map(lambda when: when.isoformat()),
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal(5000), places=3).map(str),
    st.sampled_from(["1E+2", "0.10", "100", "12", "7", 3, "-1.5", "石佛街道", "Gouzhao"]),
    st.sampled_from(["石佛\u200b安置区", "\uff21\u3000b", "  x  y ", "approved", "started"]),
    st.fixed_dictionaries({"lat": st.floats(34.7, 34.9), "lon": st.floats(113.5, 113.7)}),
    st.uuids().map(str),
    st.text(max_size=12),
)


@st.composite
def _events(draw: st.DrawFn) -> Envelope:
    """An event of any type, decoded from its good example with fields changed."""
    while True:
        event_type = draw(st.sampled_from(sorted(GOOD)))
        data = dict(GOOD[event_type])
        for name in draw(st.lists(st.sampled_from(sorted({*data, "location"})), max_size=4)):
            data[name] = draw(_FIELD_VALUES)
        outcome = decode(BY_EVENT_TYPE[event_type], orjson.dumps(data), now=NOW)
        if isinstance(outcome, Envelope):
            return outcome


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(_events())
def test_event_json_is_pydantic_json_with_sorted_keys(event: Envelope) -> None:
    expected = orjson.dumps(event.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    assert event_json(event) == expected
    assert json_digest(event_json(event)) == payload_digest(event.model_dump(mode="json"))

"""The canonical content spliced from JSON parts is byte for byte what ``orjson.dumps`` of
the whole content writes: every ledger row ever hashed must hash the same again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.chain import ContentOf, canonical, content, instant, json_digest, payload_digest

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
            str(event_id),
            partition,
            offset,
            orjson.dumps(payload, option=sorted_json),
            orjson.dumps(measures, option=sorted_json),
        )
        == expected
    )
    assert json_digest(orjson.dumps(payload, option=sorted_json)) == payload_digest(payload)

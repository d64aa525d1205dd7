"""The sink's pure parts: decoding a batch, the rollup, the hash chain. No sockets."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
from hypothesis import given
from hypothesis import strategies as st

from schemas.heating import CONNECTED_AREA_M2, HeatingAreaConnected
from schemas.topics import HEATING
from streams.batch import Record, prepare
from streams.chain import GENESIS, canonical, link
from streams.rollup import local_day, rollup


def _event(**overrides: object) -> HeatingAreaConnected:
    fields: dict[str, object] = {
        "event_id": uuid.uuid4(),
        "department": "heating",
        "district": "shifo",
        "occurred_at": datetime(2024, 10, 1, 3, tzinfo=UTC),
        "reported_at": datetime(2024, 10, 2, tzinfo=UTC),
        "area_m2": Decimal("1200.50"),
    }
    fields.update(overrides)
    return HeatingAreaConnected.model_validate(fields)


def _record(offset: int, value: bytes | None, partition: int = 0) -> Record:
    return Record("city.heating.v1", partition, offset, value)


def test_prepare_splits_accepted_rejected_and_repeated() -> None:
    good = _event()
    batch = prepare(
        HEATING,
        [
            _record(10, good.model_dump_json().encode()),
            _record(11, b"{not json"),
            _record(12, good.model_dump_json().encode()),
            _record(5, None, partition=1),
        ],
    )
    assert [e.event_id for _, e in batch.accepted] == [good.event_id]
    assert [(r.offset, why.reason) for r, why in batch.rejected] == [
        (11, "invalid_json"),
        (5, "empty_record"),
    ]
    assert batch.repeated == 1
    assert batch.next_offsets == {("city.heating.v1", 0): 13, ("city.heating.v1", 1): 6}


def test_days_follow_the_district_calendar_not_utc() -> None:
    # 17:30 UTC on 30 Sep is already 1 Oct in Zhengzhou.
    assert local_day(datetime(2024, 9, 30, 17, 30, tzinfo=UTC)) == date(2024, 10, 1)


def test_rollup_sums_per_day_district_metric() -> None:
    a = _event(area_m2=Decimal("100.25"))
    b = _event(area_m2=Decimal("50"), district="gouzhao")
    c = _event(area_m2=Decimal("0.75"))
    groups = rollup((e.occurred_at, str(e.district), e.measures()) for e in (a, b, c))
    assert {k: (v.total, v.events) for k, v in groups.items()} == {
        (date(2024, 10, 1), "shifo", CONNECTED_AREA_M2): (Decimal("101.00"), 2),
        (date(2024, 10, 1), "gouzhao", CONNECTED_AREA_M2): (Decimal("50"), 1),
    }


@given(
    st.lists(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal(5_000_000), places=2), max_size=50
    )
)
def test_rollup_total_equals_the_sum_of_its_events(quantities: list[Decimal]) -> None:
    events = [_event(area_m2=q) for q in quantities]
    groups = rollup((e.occurred_at, str(e.district), e.measures()) for e in events)
    assert sum((g.total for g in groups.values()), Decimal(0)) == sum(quantities, Decimal(0))
    assert sum(g.events for g in groups.values()) == len(quantities)


def test_canonical_content_survives_a_json_round_trip() -> None:
    event = _event()
    payload = event.model_dump(mode="json")
    kwargs = {
        "event_id": event.event_id,
        "topic": "t",
        "partition": 0,
        "offset": 7,
        "ingested_at": datetime(2024, 10, 2, 1, 2, 3, 456789, tzinfo=UTC),
        "measures": {CONNECTED_AREA_M2: "1200.50"},
    }
    first = canonical(payload=payload, **kwargs)  # type: ignore[arg-type]
    again = canonical(payload=orjson.loads(orjson.dumps(payload)), **kwargs)  # type: ignore[arg-type]
    assert first == again


def test_chain_links_depend_on_everything_before() -> None:
    one, two = b"row one", b"row two"
    h1 = link(GENESIS, one)
    assert link(h1, two) != link(link(GENESIS, b"row 0ne"), two)
    assert link(h1, two) != link(link(GENESIS, two), one)
    assert len(h1) == 32

"""The rows a batch writes, built ahead or in its transaction: each links to the one before
it exactly as ``audit verify`` recomputes it from what the ledger gives back, and prebuilt
rows are used only when they are what the transaction would build."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import cast

import orjson

from schemas.districts import District
from schemas.heating import CONNECTED_AREA_M2, HeatingAreaConnected, HeatingCorrection
from schemas.topics import HEATING
from streams.batch import Record, prepare
from streams.chain import GENESIS, canonical, link, payload_digest
from streams.db.batch_rows import JSONB_V1, ChainTip, adopt, build_rows, prebuild

TOPIC = "city.heating.v1"


def _records() -> list[Record]:
    at = datetime(2024, 10, 1, 3, tzinfo=UTC)
    original = HeatingAreaConnected(
        event_id=uuid.uuid4(),
        department="heating",
        district=District.SHIFO,
        occurred_at=at,
        reported_at=at + timedelta(hours=1),
        project="石佛 安置区",
        area_m2=Decimal("1200.50"),
    )
    correction = HeatingCorrection(
        event_id=uuid.uuid4(),
        department="heating",
        district=District.SHIFO,
        occurred_at=at,
        reported_at=at + timedelta(hours=2),
        corrects=original.event_id,
        metric=CONNECTED_AREA_M2,
        delta=Decimal("-0.50"),
        reason="复核",
        approved_by="王",
        source_ref="审批-1",
    )
    events = [original, correction]
    events += [original.model_copy(update={"event_id": uuid.uuid4()}) for _ in range(3)]
    return [
        Record(TOPIC, i % 2, 100 + i, event.model_dump_json().encode())
        for i, event in enumerate(events)
    ]


def test_each_row_links_as_audit_verify_recomputes_it() -> None:
    batch = prepare(HEATING, _records(), incarnation=2)
    heads = {(TOPIC, 0): GENESIS, (TOPIC, 1): bytes(range(32))}
    stamp = datetime(2024, 10, 2, tzinfo=UTC)
    built = build_rows(batch.accepted, incarnation=2, ingested_at=stamp, heads=heads)
    chain = dict(heads)
    for row, key in zip(built.ledger, built.keys, strict=True):
        # What PostgreSQL's jsonb gives back to a reader.
        raw_payload, raw_measures = cast(bytes, row.payload), cast(bytes, row.measures)
        assert raw_payload[:1] == JSONB_V1 and raw_measures[:1] == JSONB_V1
        payload = orjson.loads(raw_payload[1:])
        measures = orjson.loads(raw_measures[1:])
        tp = (row.topic, row.partition)
        assert row.prev_hash == chain[tp]
        content = canonical(
            event_id=row.event_id,
            topic=row.topic,
            incarnation=row.incarnation,
            partition=row.partition,
            offset=row.kafka_offset,
            ingested_at=row.ingested_at,
            payload=payload,
            measures=measures,
        )
        assert row.hash == link(chain[tp], content)
        chain[tp] = row.hash
        assert key == (
            row.event_id,
            stamp,
            TOPIC,
            2,
            row.partition,
            row.kafka_offset,
            payload_digest(payload),
        )
    assert built.heads == chain
    # The digest a redelivery is judged by (streams.db.ledger._split_known) is the one
    # written: both serialise the event the same way.
    by_id = {event.event_id: event for _, event in batch.accepted}
    for key in built.keys:
        assert key[6] == payload_digest(by_id[key[0]].model_dump(mode="json"))
    assert [c[0] for c in built.corrections] == [batch.accepted[1][1].event_id]
    assert built.corrections[0][4:] == (CONNECTED_AREA_M2, Decimal("-0.50"))
    assert len(built.measured) == 5


def test_prebuilt_rows_are_adopted_only_when_they_are_what_the_transaction_builds() -> None:
    batch = prepare(HEATING, _records())
    tip = ChainTip()
    # No head known for a partition yet: nothing to prebuild from.
    assert asyncio.run(prebuild(batch.accepted, incarnation=1, tip=tip)) is None
    tip.heads = {(TOPIC, 0): GENESIS, (TOPIC, 1): GENESIS}
    prebuilt = asyncio.run(prebuild(batch.accepted, incarnation=1, tip=tip))
    assert prebuilt is not None
    # The tip moved on to where these rows end: the next batch chains on from them.
    assert tip.heads == prebuilt.heads
    fresh = sorted(batch.accepted, key=lambda item: (item[0].partition, item[0].offset))
    heads = {(TOPIC, 0): GENESIS, (TOPIC, 1): GENESIS}
    assert adopt(prebuilt, fresh=fresh, heads=heads, tip=tip) is prebuilt
    in_tx = build_rows(fresh, incarnation=1, ingested_at=prebuilt.ingested_at, heads=heads)
    assert in_tx.ledger == prebuilt.ledger and in_tx.keys == prebuilt.keys
    # One of its events was already recorded: the transaction builds without it.
    assert adopt(prebuilt, fresh=fresh[1:], heads=heads, tip=tip) is None
    # Another writer moved a chain meanwhile.
    moved = {**heads, (TOPIC, 1): bytes(32 * [7])}
    assert adopt(prebuilt, fresh=fresh, heads=moved, tip=tip) is None
    # A batch committed after it was stamped: its rows would read as ingested before.
    tip.committed_at = prebuilt.ingested_at
    assert adopt(prebuilt, fresh=fresh, heads=heads, tip=tip) is None
    assert adopt(None, fresh=fresh, heads=heads, tip=ChainTip()) is None

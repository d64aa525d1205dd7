"""What integration tests read back: totals from PostgreSQL, progress of the worker."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.districts import SUBDISTRICTS
from schemas.heating import CONNECTED_AREA_M2, HeatingAreaConnected
from schemas.topics import HEATING
from services.progress import caught_up
from services.settings import Settings
from streams.db import connect
from streams.rollup import RollupKey, local_day


def heating_events(count: int, *, seed: int) -> list[HeatingAreaConnected]:
    rng = random.Random(seed)
    start = datetime(2024, 9, 1, tzinfo=UTC)
    return [
        HeatingAreaConnected(
            event_id=uuid.uuid4(),
            department="heating",
            district=rng.choice(SUBDISTRICTS),
            occurred_at=start + timedelta(minutes=rng.randrange(0, 60 * 24 * 70)),
            reported_at=start + timedelta(days=71),
            project=f"estate {rng.randrange(1, 80)}",
            area_m2=Decimal(rng.randrange(100, 5_000_000)) / 100,
        )
        for _ in range(count)
    ]


def expected_rollup(events: list[HeatingAreaConnected]) -> dict[RollupKey, tuple[Decimal, int]]:
    out: dict[RollupKey, tuple[Decimal, int]] = defaultdict(lambda: (Decimal(0), 0))
    for e in events:
        key = (local_day(e.occurred_at), str(e.district), CONNECTED_AREA_M2)
        total, count = out[key]
        out[key] = (total + e.area_m2, count + 1)
    return dict(out)


def rollup_rows(settings: Settings) -> dict[RollupKey, tuple[Decimal, int]]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT day, district, metric, total, events FROM metric_daily"
        ).fetchall()
    return {(r[0], r[1], r[2]): (Decimal(r[3]), int(r[4])) for r in rows}


def scalar(settings: Settings, query: str) -> int:
    with connect(settings) as conn:
        row = conn.execute(query.encode()).fetchone()
    assert row is not None
    return int(row[0])


def consumed_everything(settings: Settings) -> bool:
    """True once the offsets stored in PostgreSQL reach the end of the heating topic."""
    return caught_up(settings, [HEATING.name])


def chain_breaks(settings: Settings) -> list[str]:
    """Recompute every partition's hash chain from the stored rows; list the broken links."""
    from streams.chain import GENESIS, canonical, link

    with connect(settings) as conn:
        rows = conn.execute(
            """SELECT event_id, topic, partition, kafka_offset, ingested_at, payload, measures,
                      prev_hash, hash
               FROM events ORDER BY topic, partition, kafka_offset"""
        ).fetchall()
        heads = dict(
            ((t, p), bytes(h))
            for t, p, h in conn.execute("SELECT topic, partition, last_hash FROM consumer_offsets")
        )
    breaks = []
    prev: dict[tuple[str, int], bytes] = {}
    for (
        event_id,
        topic,
        partition,
        offset,
        ingested_at,
        payload,
        measures,
        prev_hash,
        hash_,
    ) in rows:
        tp = (topic, partition)
        expected_prev = prev.get(tp, GENESIS)
        content = canonical(
            event_id=event_id,
            topic=topic,
            partition=partition,
            offset=offset,
            ingested_at=ingested_at,
            payload=payload,
            measures=measures,
        )
        if bytes(prev_hash) != expected_prev or bytes(hash_) != link(expected_prev, content):
            breaks.append(f"{topic}[{partition}]@{offset} {event_id}")
        prev[tp] = link(expected_prev, content)
    breaks.extend(f"head of {tp}" for tp, head in prev.items() if heads.get(tp) != head)
    return breaks

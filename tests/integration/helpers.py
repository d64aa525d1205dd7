"""What integration tests read back: totals from PostgreSQL, progress of the worker."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.districts import SUBDISTRICTS
from schemas.heating import CONNECTED_AREA_M2, HeatingAreaConnected
from schemas.parking import ParkingSpacesOpened
from schemas.topics import HEATING
from services.progress import caught_up
from streams.db import connect
from streams.rollup import RollupKey, local_day
from streams.settings import Settings


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


def parking_events(count: int, *, seed: int) -> list[ParkingSpacesOpened]:
    rng = random.Random(seed)
    start = datetime(2024, 9, 1, tzinfo=UTC)
    return [
        ParkingSpacesOpened(
            event_id=uuid.uuid4(),
            department="parking",
            district=rng.choice(SUBDISTRICTS),
            occurred_at=start + timedelta(minutes=rng.randrange(0, 60 * 24 * 70)),
            reported_at=start + timedelta(days=71),
            project=f"lot {rng.randrange(1, 40)}",
            kind=rng.choice(("temporary", "permanent")),
            spaces=rng.randrange(1, 500),
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
    """Every broken link of every partition's hash chain, as ``audit verify`` finds them."""
    from services.audit.verify import verify

    return [f"{b.where} {b.event_id} {b.kind}: {b.detail}" for b in verify(settings).breaks]

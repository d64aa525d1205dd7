"""Writing ledger rows for the audit tests through the sink's own code path
(``streams.batch.prepare`` and ``streams.db.ledger.write_batch``), without a worker: the
rows, their hash chains, rollups and consumer offsets are exactly what a worker writes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from schemas.drainage import DrainagePointRepaired
from schemas.envelope import Envelope
from schemas.heating import HeatingAreaConnected
from schemas.topics import TopicSpec
from streams.batch import Record, SinkResult, prepare
from streams.db import connect, connect_async
from streams.db.ledger import write_batch
from streams.settings import Settings


def sink(
    settings: Settings,
    spec: TopicSpec,
    items: Sequence[Envelope | bytes],
    *,
    partition: Callable[[int], int] = lambda i: i % 2,
    offset_step: int = 1,
) -> SinkResult:
    """Write ``items`` as one batch of Kafka records of ``spec``'s topic, continuing each
    partition's offsets from the stored ones (``offset_step`` > 1 leaves gaps, as dead
    letters and redeliveries leave in a real topic)."""
    topic = settings.topic_name(spec.name)
    with connect(settings) as conn:
        stored = {
            p: int(n)
            for p, n in conn.execute(
                "SELECT partition, next_offset FROM consumer_offsets WHERE topic = %s", (topic,)
            ).fetchall()
        }
    now = datetime.now(UTC)
    records = []
    for i, item in enumerate(items):
        p = partition(i)
        offset = stored.get(p, 0)
        stored[p] = offset + offset_step
        value = item if isinstance(item, bytes) else item.model_dump_json().encode()
        records.append(Record(topic, p, offset, value, int(now.timestamp() * 1000)))

    async def write() -> SinkResult:
        conn = await connect_async(settings)
        try:
            return await write_batch(conn, prepare(spec, records))
        finally:
            await conn.close()

    return asyncio.run(write())


def heating(
    day: datetime, area: str, *, district: str = "fengyang", project: str = "枫杨佳苑"
) -> HeatingAreaConnected:
    return HeatingAreaConnected(
        event_id=uuid.uuid4(),
        department="heating",
        district=district,
        occurred_at=day,
        reported_at=day,
        project=project,
        area_m2=Decimal(area),
    )


def drainage_point(day: datetime, code: str, *, district: str = "shifo") -> DrainagePointRepaired:
    return DrainagePointRepaired(
        event_id=uuid.uuid4(),
        department="drainage",
        district=district,
        occurred_at=day,
        reported_at=day,
        project=code,
        point_name=f"{code} 积水点",
    )

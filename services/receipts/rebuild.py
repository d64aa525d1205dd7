"""``citystream receipts-rebuild``: publish a department's receipts again, re-derived from
PostgreSQL (operators, with database access): for a ledger older than receipts, or a
receipts topic lost.

Reads ``consumer_offsets`` (through streams.db.cursors) and ``events`` and ``deadletters`` (through
:func:`streams.receipts.rederive`, the worker's own re-derivation); writes
``city.receipts.<department>.v1`` as the workers, the one principal that may.
Env: the ``CITYSTREAM_*`` settings of Kafka and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

from schemas.topics import BY_FAMILY, receipts_topic
from services.kafka.receipts import publish_again
from services.receipts.report import ReceiptReportError
from streams import receipts as worker_receipts
from streams.db import DatabaseError, connect_async
from streams.db.cursors import topic_offsets
from streams.settings import Settings


def rebuild(settings: Settings, department: str) -> int:
    """Publish every receipt of the department's records again, re-derived from PostgreSQL
    as a newly assigned worker does for a partition's last batch: ledger rows are stored
    receipts, dead letters refused ones; then each partition's mark. Duplicates left no row
    and get no receipt (the marks tell readers). Returns the receipts published."""
    try:
        outgoing = asyncio.run(_rederive_all(settings, department))
    except DatabaseError as exc:
        raise ReceiptReportError(f"{exc} (receipts-rebuild reads PostgreSQL)") from exc
    receipts, marks = outgoing
    publish_again(
        settings,
        settings.topic_name(receipts_topic(department)),
        [(out.key, out.value) for out in receipts],
        [(out.key, out.value) for out in marks],
    )
    return sum(out.receipts for out in receipts)


async def _rederive_all(settings: Settings, department: str) -> tuple[list[Any], list[Any]]:
    receipts: list[Any] = []
    marks: list[Any] = []
    conn = await connect_async(settings)
    try:
        async with conn.transaction():
            for spec in BY_FAMILY.values():
                if department not in spec.departments:
                    continue
                offsets = await topic_offsets(conn, topic=settings.topic_name(spec.name))
                for incarnation, partition, next_offset in offsets:
                    found, marked = await worker_receipts.rederive(
                        conn,
                        spec,
                        topic=settings.topic_name(spec.name),
                        incarnation=incarnation,
                        partition=partition,
                        start=0,
                        stop=next_offset,
                    )
                    receipts.extend(o for o in found if o.department == department)
                    marks.extend(o for o in marked if o.department == department)
    finally:
        await conn.close()
    return receipts, marks

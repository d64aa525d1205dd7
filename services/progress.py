"""Has the worker caught up? The offsets PostgreSQL stored against the ends of the topics.

Used by ``make demo`` and the tests to wait for "everything sent so far is processed";
reads ``consumer_offsets`` (:func:`streams.db.cursors.latest_offsets`) and asks Kafka for each
topic's end offsets, as the auditor (it only looks).
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.topics import ALL
from services.kafka.topics import end_offsets
from streams.db import DatabaseUnavailable, connect
from streams.db.cursors import latest_offsets
from streams.settings import Settings


def caught_up(settings: Settings, topics: Iterable[str] | None = None) -> bool:
    """True once, for every partition of ``topics`` (topic base names; default: every
    family's topic) that holds records, the stored next offset reaches its end."""
    bases = list(topics) if topics is not None else [spec.name for spec in ALL]
    try:
        with connect(settings) as conn:
            stored = latest_offsets(conn)
    except DatabaseUnavailable:
        return False
    for base in bases:
        name = settings.topic_name(base)
        for partition, end in end_offsets(settings, base, principal="auditor").items():
            if end > 0 and stored.get((name, partition), 0) < end:
                return False
    return True

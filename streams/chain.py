"""The ledger's hash chain: each row's hash covers the previous row's hash in the same
topic-partition and the row's canonical content, so an edit, a deletion, an insertion or
a swap anywhere breaks every later link."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

GENESIS = bytes(32)


def canonical(
    *,
    event_id: UUID,
    topic: str,
    incarnation: int = 1,
    partition: int,
    offset: int,
    ingested_at: datetime,
    payload: Mapping[str, Any],
    measures: Mapping[str, str],
) -> bytes:
    # Everything is a string, int or nested dict of those, so a round trip through
    # PostgreSQL's jsonb gives back the same bytes.
    content: dict[str, Any] = {
        "event_id": str(event_id),
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "ingested_at": ingested_at.astimezone(UTC).isoformat(),
        "payload": payload,
        "measures": measures,
    }
    if incarnation != 1:
        # Only a re-created topic's rows carry it: the rows of a topic's first life hash as
        # they did before incarnations were recorded, so their chains still verify.
        content["incarnation"] = incarnation
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def link(prev_hash: bytes, content: bytes) -> bytes:
    return hashlib.sha256(prev_hash + content).digest()


def payload_digest(payload: Any) -> bytes:
    """An event's content as the ledger stores it (its JSON payload), in 16 bytes: what
    ``event_keys.digest`` holds, so a redelivery is told from a reused id without reading
    the ledger row (which may sit in a compressed chunk)."""
    return hashlib.blake2b(
        orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()

"""The ledger's hash chain: each row's hash covers the previous row's hash in the same
topic-partition and the row's canonical content, so an edit, a deletion, an insertion or
a swap anywhere breaks every later link.

The canonical content is the JSON object ``{event_id, [incarnation,] ingested_at, measures,
offset, partition, payload, topic}`` with sorted keys and no spaces, as
``orjson.dumps(content, option=OPT_SORT_KEYS)`` writes it. The sink has the payload's and
the measures' JSON already (they are what the ledger stores), so :func:`content` splices
them in rather than serialising the event a second time; :func:`canonical` is the same
bytes from the payload as a mapping (what an auditor reads back from the ledger).
``tests/unit/test_chain.py`` holds both to that one ``orjson.dumps``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel

GENESIS = bytes(32)
SORTED = orjson.OPT_SORT_KEYS
# pydantic's JSON mode writes a UTC offset as "Z".
_EVENT_JSON = SORTED | orjson.OPT_UTC_Z


def event_json(event: BaseModel) -> bytes:
    """The event's payload: ``event.model_dump(mode="json")`` with sorted keys, as the ledger
    stores it and the chain hashes it.

    Written by orjson from the model's own field values, which it serialises as pydantic's
    JSON mode does (ids, times, enums, text and integers natively, a Decimal as its
    ``str``): pydantic's serializer first built a dict of JSON values in Python, ~2 µs of
    the worker's ~35 per event. A nested model (a drainage point's location, whose floats
    the two write each their own way), an integer beyond 64 bits or a value of a type
    orjson does not know takes pydantic's own path. ``tests/unit/test_chain.py`` holds the
    two to the same bytes for every event type.
    """
    try:
        return orjson.dumps(event.__dict__, option=_EVENT_JSON, default=_json_value)
    except TypeError:  # orjson.JSONEncodeError is one
        payload = type(event).__pydantic_serializer__.to_python(event, mode="json")
        return orjson.dumps(payload, option=SORTED)


def _json_value(value: object) -> str:
    if type(value) is Decimal:
        return str(value)
    raise TypeError(f"{type(value).__name__} is left to pydantic")


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
    return content(
        event_id=str(event_id),
        topic=topic,
        incarnation=incarnation,
        partition=partition,
        offset=offset,
        ingested_at=instant(ingested_at),
        payload_json=orjson.dumps(payload, option=SORTED),
        measures_json=orjson.dumps(measures, option=SORTED),
    )


def instant(ingested_at: datetime) -> str:
    """``ingested_at`` as the canonical content writes it (UTC, ISO 8601)."""
    return ingested_at.astimezone(UTC).isoformat()


def content(
    *,
    event_id: str,
    topic: str,
    incarnation: int,
    partition: int,
    offset: int,
    ingested_at: str,
    payload_json: bytes,
    measures_json: bytes,
) -> bytes:
    """The canonical content from its parts already in JSON (``payload_json`` and
    ``measures_json`` with sorted keys; ``ingested_at`` from :func:`instant`), keys in
    sorted order: event_id < incarnation < ingested_at < measures < offset < partition <
    payload < topic."""
    # Only a re-created topic's rows carry their incarnation: the rows of a topic's first
    # life hash as they did before incarnations were recorded, so their chains still verify.
    life = b"" if incarnation == 1 else b',"incarnation":%d' % incarnation
    return (
        b'{"event_id":%b%b,"ingested_at":%b,"measures":%b,"offset":%d,"partition":%d,"payload":%b,"topic":%b}'
        % (
            orjson.dumps(event_id),
            life,
            orjson.dumps(ingested_at),
            measures_json,
            offset,
            partition,
            payload_json,
            orjson.dumps(topic),
        )
    )


class ContentOf:
    """:func:`content` for the rows of one batch and topic, whose topic, incarnation and
    ingest time are the same: those parts are written once, into a template, and each
    row's content is one formatting of it (two ``orjson.dumps`` and a call with eight
    keywords fewer per row)."""

    def __init__(self, *, topic: str, incarnation: int, ingested_at: str) -> None:
        parts = content(
            event_id="",
            topic=topic,
            incarnation=incarnation,
            partition=0,
            offset=0,
            ingested_at=ingested_at,
            payload_json=b"",
            measures_json=b"",
        ).replace(b"%", b"%%")
        # The empty id, JSON and numbers written above become the template's fields; the id
        # goes in as orjson writes a UUID (quoted), in C, where str() of one is a Python
        # method.
        self._template = parts.replace(b'{"event_id":""', b'{"event_id":%b', 1).replace(
            b'"measures":,"offset":0,"partition":0,"payload":,',
            b'"measures":%b,"offset":%d,"partition":%d,"payload":%b,',
            1,
        )

    def __call__(
        self, id_json: bytes, partition: int, offset: int, payload_json: bytes, measures_json: bytes
    ) -> bytes:
        """``id_json``: the event id as ``orjson.dumps(event_id)`` writes it."""
        return self._template % (id_json, measures_json, offset, partition, payload_json)


def link(prev_hash: bytes, content: bytes) -> bytes:
    return hashlib.sha256(prev_hash + content).digest()


def payload_digest(payload: Any) -> bytes:
    """An event's content as the ledger stores it (its JSON payload), in 16 bytes: what
    ``event_keys.digest`` holds, so a redelivery is told from a reused id without reading
    the ledger row (which may sit in a compressed chunk)."""
    return json_digest(orjson.dumps(payload, option=SORTED))


def json_digest(payload_json: bytes) -> bytes:
    """:func:`payload_digest` of a payload already in JSON with sorted keys."""
    return hashlib.blake2b(payload_json, digest_size=16).digest()

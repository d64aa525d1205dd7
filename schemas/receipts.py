"""Receipts: what the worker decided about each record a department sent, on a topic only
that department reads.

Topic ``city.receipts.<department>.v1`` (:func:`schemas.topics.receipts_topic`), one per
department so that each can be ACL'd to its department alone; one partition (a total order,
which the marks below need), ``cleanup.policy=compact``, broker timestamps.

Two kinds of Kafka record, both JSON, written by the worker right after a batch commits:

- **receipts**: for one topic-partition, the outcomes of some of its records, in offset
  order (at most :data:`CHUNK` per Kafka record, and :data:`MAX_RECORD_BYTES`). Key
  ``<topic>/<incarnation>/<partition>/<first offset>-<last offset>``: a receipt published
  again (after a worker crash, or by ``citystream receipts rebuild``) repeats a key, and
  compaction keeps one copy; readers keep the last receipt per (topic, incarnation,
  partition, offset) anyway. Each receipt
  names the record's offset, its ``event_id`` and ``event_type`` where the record had them,
  and its outcome:

  - ``stored``: the event is in the ledger now, from this record;
  - ``duplicate``: the ledger already held this event (an identical redelivery, or a
    repeat within the batch); it counts once;
  - ``refused``: dead-lettered, with the reason, field, value, rule and messages of
    :class:`schemas.rejections.Rejection`.

  A stored or duplicate receipt carries the ``event`` itself (the record's JSON), which is
  how a department, without any database access, learns what the ledger holds of its own
  events (the ledger import compares a re-imported row with it).
- **mark**: ``{topic, incarnation, partition, next_offset}``, key ``mark/<topic>/<incarnation>/
  <partition>`` (compaction keeps the newest): every record of that partition below
  ``next_offset`` has been judged and its receipt, if it has one, is **earlier** on this
  topic. The worker sends a mark only after the receipts before it were acknowledged, so a
  reader that meets a mark past its record without having met the record's receipt knows
  the record was a duplicate whose receipt was lost with a crashed worker (stored and
  refused receipts are re-derived from PostgreSQL first, see ``streams/receipts.py``).

No I/O here: the worker (``streams/receipts.py``) encodes, ``services/kafka/receipts.py`` reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import orjson

from schemas.rejections import Rejection

FORMAT_VERSION = 1
# Receipts per Kafka record: a few hundred keep a record well under Kafka's 1 MB limit with
# each stored event's JSON inside (~400 bytes), and a batch of 2,000 in a handful of sends.
CHUNK = 500
# ...and at most this many bytes: a valid event may be several kilobytes (long names in
# Chinese), and 500 of them would pass the broker's 1 MB message limit. A larger record is
# split in halves (one receipt alone is always sent).
MAX_RECORD_BYTES = 512 * 1024

Outcome = Literal["stored", "duplicate", "refused"]
OUTCOMES: tuple[Outcome, ...] = ("stored", "duplicate", "refused")


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of one record, as a reader gets it."""

    topic: str
    incarnation: int
    partition: int
    offset: int
    outcome: Outcome
    event_id: str | None = None
    event_type: str | None = None
    source_ref: str | None = None
    reason: str | None = None
    field: str | None = None
    value: str | None = None
    rule: str | None = None
    message_zh: str | None = None
    message_en: str | None = None
    # The event as stored (stored and duplicate receipts): its JSON object.
    event: dict[str, Any] | None = None
    # When the worker judged it (the receipt's broker timestamp), if known.
    judged_at: datetime | None = None

    @property
    def position(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)

    @property
    def message(self) -> str:
        return " / ".join(m for m in (self.message_zh, self.message_en) if m)


@dataclass(frozen=True, slots=True)
class Mark:
    """Every record of a partition below ``next_offset`` has been judged."""

    topic: str
    incarnation: int
    partition: int
    next_offset: int


def receipt_entry(
    offset: int,
    outcome: Outcome,
    *,
    event_id: str | UUID | None = None,
    event_type: str | None = None,
    source_ref: str | None = None,
    event: bytes | None = None,
    why: Rejection | None = None,
) -> dict[str, Any]:
    """One receipt inside a receipts record; ``event`` is the event's JSON, embedded as it
    is (not parsed and written again: the worker writes thousands per second). An
    ``event_id`` may stay a UUID: orjson writes its text as ``str`` would, without
    Python's ``UUID.__str__`` (a microsecond per receipt)."""
    entry: dict[str, Any] = {"offset": offset, "outcome": outcome}
    if event_id is not None:
        entry["event_id"] = event_id
    if event_type is not None:
        entry["event_type"] = event_type
    if source_ref is not None:
        entry["source_ref"] = source_ref
    if event is not None:
        entry["event"] = orjson.Fragment(event)
    if why is not None:
        entry.update(
            reason=why.reason,
            field=why.field,
            value=why.value,
            rule=why.rule,
            message_zh=why.message_zh,
            message_en=why.message_en,
        )
    return entry


def stored_entry(
    offset: int, event_id: str | UUID, event_type: str, source_ref: str | None, event: bytes
) -> dict[str, Any]:
    """``receipt_entry(offset, "stored", ...)`` of an accepted event, without the keyword
    handling: the worker builds one per stored event (a third of a receipt's time)."""
    entry: dict[str, Any] = {
        "offset": offset,
        "outcome": "stored",
        "event_id": event_id,
        "event_type": event_type,
    }
    if source_ref is not None:
        entry["source_ref"] = source_ref
    entry["event"] = orjson.Fragment(event)
    return entry


def encode_receipts(
    topic: str, incarnation: int, partition: int, entries: list[dict[str, Any]]
) -> tuple[bytes, bytes]:
    """(key, value) of one receipts record; ``entries`` in offset order."""
    key = f"{topic}/{incarnation}/{partition}/{entries[0]['offset']}-{entries[-1]['offset']}"
    value = orjson.dumps(
        {
            "v": FORMAT_VERSION,
            "kind": "receipts",
            "topic": topic,
            "incarnation": incarnation,
            "partition": partition,
            "receipts": entries,
        }
    )
    return key.encode(), value


def encode_chunks(
    topic: str, incarnation: int, partition: int, entries: list[dict[str, Any]]
) -> Iterator[tuple[bytes, bytes, int]]:
    """(key, value, receipts in it) of the receipts records holding ``entries`` (in offset
    order): at most :data:`CHUNK` receipts and :data:`MAX_RECORD_BYTES` each."""
    for start in range(0, len(entries), CHUNK):
        yield from _bounded(topic, incarnation, partition, entries[start : start + CHUNK])


def _bounded(
    topic: str, incarnation: int, partition: int, entries: list[dict[str, Any]]
) -> Iterator[tuple[bytes, bytes, int]]:
    key, value = encode_receipts(topic, incarnation, partition, entries)
    if len(value) <= MAX_RECORD_BYTES or len(entries) == 1:
        yield key, value, len(entries)
        return
    half = len(entries) // 2
    yield from _bounded(topic, incarnation, partition, entries[:half])
    yield from _bounded(topic, incarnation, partition, entries[half:])


def encode_mark(
    topic: str, incarnation: int, partition: int, next_offset: int
) -> tuple[bytes, bytes]:
    key = f"mark/{topic}/{incarnation}/{partition}"
    value = orjson.dumps(
        {
            "v": FORMAT_VERSION,
            "kind": "mark",
            "topic": topic,
            "incarnation": incarnation,
            "partition": partition,
            "next_offset": next_offset,
        }
    )
    return key.encode(), value


def decode_record(
    value: bytes | None, timestamp_ms: int | None = None
) -> list[Receipt] | Mark | None:
    """A receipts record's receipts, a mark, or None for anything else (a newer format
    this reader does not know is skipped, not misread)."""
    if not value:
        return None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
        return None
    topic, incarnation, partition = (
        data.get("topic"),
        data.get("incarnation"),
        data.get("partition"),
    )
    if (
        not isinstance(topic, str)
        or not isinstance(incarnation, int)
        or not isinstance(partition, int)
    ):
        return None
    if data.get("kind") == "mark":
        next_offset = data.get("next_offset")
        return (
            Mark(topic, incarnation, partition, next_offset)
            if isinstance(next_offset, int)
            else None
        )
    if data.get("kind") != "receipts":
        return None
    judged = None if timestamp_ms is None else datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    out: list[Receipt] = []
    for entry in data.get("receipts") or ():
        if not isinstance(entry, dict) or entry.get("outcome") not in OUTCOMES:
            continue
        offset = entry.get("offset")
        if not isinstance(offset, int):
            continue
        event = entry.get("event")
        out.append(
            Receipt(
                topic=topic,
                incarnation=incarnation,
                partition=partition,
                offset=offset,
                outcome=entry["outcome"],
                event_id=_text(entry.get("event_id")),
                event_type=_text(entry.get("event_type")),
                source_ref=_text(entry.get("source_ref")),
                reason=_text(entry.get("reason")),
                field=_text(entry.get("field")),
                value=_text(entry.get("value")),
                rule=_text(entry.get("rule")),
                message_zh=_text(entry.get("message_zh")),
                message_en=_text(entry.get("message_en")),
                event=event if isinstance(event, dict) else None,
                judged_at=judged,
            )
        )
    return out


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None

"""What goes wrong between a department and Kafka, on purpose: records sent twice, byte for
byte, and invalid records the worker must dead-letter, each with the reason it will give.

Pure: draws from the year's ``duplicates`` and ``invalid`` streams only.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import orjson

from schemas.envelope import Envelope, ledger_event_id
from schemas.topics import BY_EVENT_TYPE, DEPARTMENTS
from services.simulator.context import Context
from services.simulator.scenario import DUPLICATE_SHARE, INVALID_SHARE

InvalidKind = Literal["negative_quantity", "wrong_department", "malformed_json", "unknown_district"]
INVALID_KINDS: tuple[InvalidKind, ...] = (
    "negative_quantity",
    "wrong_department",
    "malformed_json",
    "unknown_district",
)
# What schemas.validation.decode answers for each kind (the dead-letter reason).
INVALID_REASONS: dict[InvalidKind, str] = {
    "negative_quantity": "out_of_range",
    "wrong_department": "department_not_allowed",
    "malformed_json": "invalid_json",
    "unknown_district": "unknown_district",
}
# Names a clerk might type that are not the zone's: neighbouring districts and subdistricts,
# the townships the subdistricts were before 2003.
FOREIGN_DISTRICTS = ("须水街道", "中原区", "金水区", "石佛镇", "沟赵乡")


@dataclass(frozen=True)
class InvalidRecord:
    """Bytes a department sends that the worker must dead-letter, and why it will."""

    kind: InvalidKind
    topic: str  # base topic name, e.g. city.heating.v1
    key: bytes | None
    value: bytes
    reason: str  # the rejection reason of schemas.validation.decode
    field: str | None
    sent_at: datetime


def duplicates(
    events: list[Envelope], rng: random.Random, cutoff: datetime | None
) -> list[tuple[Envelope, datetime]]:
    """~1% of events sent again, identical: a retry minutes later or a re-export weeks later."""
    if not events:
        return []
    count = max(1, round(DUPLICATE_SHARE * len(events)))
    out = []
    for i, event in enumerate(rng.sample(events, min(count, len(events)))):
        if i % 2 == 0:
            sent = event.reported_at + timedelta(minutes=rng.randint(1, 20))
        else:
            sent = event.reported_at + timedelta(days=rng.randint(20, 120))
        if cutoff is not None:
            sent = min(sent, cutoff)
        out.append((event, sent))
    return out


def invalid_records(
    events: list[Envelope],
    ctx: Context,
    cutoff: datetime | None,
    quantity_fields: Mapping[str, str],
) -> list[InvalidRecord]:
    """~0.5% of the events' number in invalid records, at least one of each kind; a
    negative quantity goes in ``quantity_fields[event type]``."""
    if not events:
        return []
    rng = ctx.rng("invalid")
    count = max(len(INVALID_KINDS), round(INVALID_SHARE * len(events)))
    kinds = list(INVALID_KINDS)
    rng.shuffle(kinds)
    kinds += [rng.choice(INVALID_KINDS) for _ in range(count - len(kinds))]
    with_quantity = [e for e in events if e.event_type_name in quantity_fields]
    out = []
    for i, kind in enumerate(kinds):
        template = rng.choice(with_quantity if kind == "negative_quantity" else events)
        family = template.family
        source_ref = f"sim-{ctx.seed}:{ctx.year}:invalid:{i + 1:04d}"
        data = template.model_dump(mode="json")
        data["event_id"] = str(ledger_event_id(family, source_ref))
        data["source_ref"] = source_ref
        field_name: str | None
        if kind == "negative_quantity":
            field_name = quantity_fields[template.event_type_name]
            value = data[field_name]
            data[field_name] = f"-{value}" if isinstance(value, str) else -value
            raw = orjson.dumps(data)
        elif kind == "wrong_department":
            field_name = "department"
            data["department"] = rng.choice([d for d in DEPARTMENTS if d != family])
            raw = orjson.dumps(data)
        elif kind == "unknown_district":
            field_name = "district"
            data["district"] = rng.choice(FOREIGN_DISTRICTS)
            raw = orjson.dumps(data)
        else:
            field_name = None
            text = orjson.dumps(data).decode()
            variant = rng.randrange(3)
            if variant == 0:  # an export cut off mid-record
                text = text[: rng.randint(len(text) // 3, 2 * len(text) // 3)]
            elif variant == 1:  # a hand-edited record with a trailing comma
                text = text[:-1] + ",}"
            else:  # a Python dict printed instead of JSON
                text = text.replace('"', "'")
            raw = text.encode()
        sent = template.reported_at + timedelta(minutes=rng.randint(1, 90))
        if cutoff is not None:
            sent = min(sent, cutoff)
        out.append(
            InvalidRecord(
                kind=kind,
                topic=BY_EVENT_TYPE[template.event_type_name].name,
                key=template.partition_key(),
                value=raw,
                reason=INVALID_REASONS[kind],
                field=field_name,
                sent_at=sent,
            )
        )
    return out

"""Turn the bytes of one Kafka record into an event, or a rejection that says why.

Never raises for bad input: whatever arrives, the worker gets either a model or a
:class:`Rejection` naming the field, the value and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from schemas.envelope import Envelope
from schemas.topics import TopicSpec

MAX_RECORD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Rejection:
    reason: str  # a stable code: invalid_json, unknown_event_type, invalid_field, ...
    field: str | None
    message: str

    def as_dict(self) -> dict[str, str | None]:
        return {"reason": self.reason, "field": self.field, "message": self.message}


def decode(spec: TopicSpec, raw: bytes | None) -> Envelope | Rejection:
    if raw is None:
        return Rejection("empty_record", None, "the record has no value / 记录没有内容")
    if len(raw) > MAX_RECORD_BYTES:
        return Rejection(
            "too_large", None,
            f"record of {len(raw)} bytes exceeds {MAX_RECORD_BYTES} / 记录超过 {MAX_RECORD_BYTES} 字节",
        )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("invalid_json", None, f"not valid UTF-8 JSON: {exc} / 不是有效的 JSON")
    if not isinstance(data, dict):
        return Rejection("invalid_json", None, "the record must be a JSON object / 记录必须是 JSON 对象")
    event_type = data.get("event_type")
    model = spec.by_type.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        return Rejection(
            "unknown_event_type", "event_type",
            f"{event_type!r} is not an event type of {spec.name} / 不是该主题的事件类型",
        )
    try:
        event = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        return Rejection("invalid_field", where, f"{where}: {first['msg']} (value {first.get('input')!r})")
    if event.department not in spec.departments:
        return Rejection(
            "department_not_allowed", "department",
            f"department {event.department!r} may not write {event_type} / 该部门无权报送此类事件",
        )
    return event

"""Turn the bytes of one Kafka record into an event, or a rejection that says why.

:func:`decode` never raises for bad input: whatever arrives, the worker gets either a model
or a :class:`Rejection` naming the field, the offending value and the rule, in Chinese and
English, under a stable reason code (what the dead-letter table and the pipeline dashboard
count). Checks run in this order, and the first failure is reported:

1. the record's size and encoding, 2. JSON syntax, 3. ``event_type`` of this topic,
4. the department may write this topic, 5. the event model (fields in declaration order,
then unknown fields, then cross-field rules), 6. the clock (``in_future``).

The clock is the record's own Kafka timestamp (:func:`record_clock`). The ``city.*`` topics
are created with ``message.timestamp.type=LogAppendTime``, so the broker stamps it on append
and a sender cannot move "now"; a record from before that setting keeps the CreateTime its
producer chose, and is judged against that, as it was when first consumed, so replay gives
the same verdict. A timestamp no clock can show is ``invalid_timestamp``.

The reasons, what each means and what to do: :mod:`schemas.rejections`.

Duplicate keys inside one JSON object are left to orjson: the last one wins.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import orjson
from pydantic import ValidationError

from schemas.envelope import EARLIEST, Envelope
from schemas.rejections import Rejection, explain, show
from schemas.topics import BY_EVENT_TYPE, DEPARTMENTS, TopicSpec

log = logging.getLogger("citystream.validation")

MAX_RECORD_BYTES = 64 * 1024
# Department clocks drift; an event stamped a few minutes ahead is skew, not the future.
FUTURE_TOLERANCE = timedelta(minutes=5)
_reject = Rejection.build

# Kafka's record timestamp types (the record batch's attribute bit).
CREATE_TIME = 0
LOG_APPEND_TIME = 1
_TIMESTAMP_KINDS = {CREATE_TIME: "CreateTime", LOG_APPEND_TIME: "LogAppendTime"}
# A record stamped before this was not sent by any system of the platform; one beyond the
# last day datetime can hold (a CreateTime may be any 64-bit number: 2^62 ms) cannot be a
# clock's reading.
_EARLIEST_MS = int(EARLIEST.timestamp() * 1000)
_LATEST_MS = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp() * 1000)


def record_clock(timestamp_ms: int | None, timestamp_type: int) -> datetime | Rejection:
    """The time a Kafka record is judged against: its timestamp, or why it cannot be.

    With ``LogAppendTime`` (the ``city.*`` topics) that is the broker's clock at append;
    with ``CreateTime`` the producer's claim. A pure function of the record, so replay
    judges "in the future" exactly as the worker did.
    """
    if timestamp_ms is not None and _EARLIEST_MS <= timestamp_ms <= _LATEST_MS:
        return datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    kind = _TIMESTAMP_KINDS.get(timestamp_type, f"type {timestamp_type}")
    shown = "none" if timestamp_ms is None else f"{timestamp_ms} ms ({kind})"
    return _reject(
        "invalid_timestamp",
        "kafka_timestamp",
        shown,
        rule="a Kafka record timestamp from 2000 to 9999",
        zh="Kafka 记录的时间戳不是有效时间；请勿自行设置时间戳，或校正发送端时钟",
        en="the Kafka record's timestamp is no real time; let the producer stamp records "
        "(do not set timestamps) or fix the sender's clock",
    )


def decode(
    spec: TopicSpec, raw: bytes | None, *, now: datetime | None = None
) -> Envelope | Rejection:
    """The event in ``raw``, or why not.

    ``now`` is the time "in the future" is judged against (timezone-aware), by default the
    wall clock. Passing the record's Kafka timestamp instead makes the verdict a function
    of the record alone, so a replay rejects exactly what the first run rejected.
    """
    # (record_clock's readings are in UTC: no offset asked of them, once per record)
    if now is not None and now.tzinfo is not UTC and now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    try:
        return _decode(spec, raw, now)
    except Exception as exc:  # a bug here must not stop the worker: dead-letter the record
        log.exception("decoding a record of %s failed", spec.name)
        return _reject(
            "internal_error",
            None,
            None,
            rule="decode never fails",
            zh=f"系统内部错误（{type(exc).__name__}），请报告",
            en=f"internal error ({type(exc).__name__}); please report it",
        )


def _decode(spec: TopicSpec, raw: bytes | None, now: datetime | None) -> Envelope | Rejection:
    if not raw:
        return _reject(
            "empty_record",
            None,
            None,
            rule="the record value is one JSON object",
            zh="记录没有内容",
            en="the record has no value",
        )
    if len(raw) > MAX_RECORD_BYTES:
        return _reject(
            "too_large",
            None,
            f"<{len(raw)} bytes>",
            rule=f"at most {MAX_RECORD_BYTES} bytes",
            zh=f"记录有 {len(raw)} 字节，超过上限 {MAX_RECORD_BYTES}",
            en=f"the record has {len(raw)} bytes, over the limit of {MAX_RECORD_BYTES}",
        )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _not_json(raw, exc)
    if not isinstance(data, dict):
        kind = _JSON_KINDS.get(type(data), type(data).__name__)
        return _reject(
            "not_an_object",
            None,
            show(data),
            rule="one JSON object per record",
            zh=f"记录是 JSON {kind}，必须是 JSON 对象",
            en=f"the record is a JSON {kind}, not an object",
        )

    event_type = data.get("event_type")
    model = spec.by_type.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        return _unknown_event_type(spec, event_type, "event_type" in data)

    department = data.get("department")
    if (
        isinstance(department, str)
        and department not in spec.departments
        and department in DEPARTMENTS
    ):
        allowed = ", ".join(sorted(spec.departments))
        return _reject(
            "department_not_allowed",
            "department",
            show(department),
            rule=f"{spec.name} is written by {allowed}",
            zh=f"部门 {department} 无权报送 {event_type}；{spec.name} 只能由 {allowed} 报送",
            en=f"department {department} may not write {event_type}; "
            f"only {allowed} writes {spec.name}",
        )

    try:
        # model_validate(data) without its Python wrapper (a tenth of an event's validation).
        event: Envelope = model.__pydantic_validator__.validate_python(data)
    except ValidationError as exc:
        return explain(exc, model)

    now = now or datetime.now(UTC)
    # reported_at >= occurred_at - 5 min holds already, so a report stamped no later than
    # now vouches for occurred_at too: one comparison on the common path.
    if event.reported_at > now:
        limit = now + FUTURE_TOLERANCE
        for name, when in (("occurred_at", event.occurred_at), ("reported_at", event.reported_at)):
            if when > limit:
                return _reject(
                    "in_future",
                    name,
                    show(when.isoformat()),
                    rule=f"{name} <= now + 5 min",
                    zh=f"时间在未来（现在是 {now:%Y-%m-%d %H:%M %Z}）",
                    en=f"is in the future (now is {now:%Y-%m-%d %H:%M %Z})",
                )
    return event


_JSON_KINDS: dict[type, str] = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _not_json(raw: bytes, exc: orjson.JSONDecodeError) -> Rejection:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return _reject(
            "invalid_utf8",
            None,
            show(raw[max(0, bad.start - 20) : bad.start + 20]),
            rule="UTF-8 text",
            zh=f"第 {bad.start} 字节起不是 UTF-8 编码（是否为 GBK？）",
            en=f"not UTF-8 from byte {bad.start} (GBK?); encode the record as UTF-8",
        )
    return _reject(
        "invalid_json",
        None,
        show(raw[max(0, exc.pos - 20) : exc.pos + 20]),
        rule="RFC 8259 JSON",
        zh=f"不是有效的 JSON：{exc.msg}（第 {exc.lineno} 行第 {exc.colno} 列）",
        en=f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
    )


def _unknown_event_type(spec: TopicSpec, event_type: object, present: bool) -> Rejection:
    known = ", ".join(spec.by_type)
    if not present:
        return _reject(
            "missing_field",
            "event_type",
            None,
            rule="required",
            zh=f"缺少 event_type，应为 {known} 之一",
            en=f"missing; use one of {known}",
        )
    other = BY_EVENT_TYPE.get(event_type) if isinstance(event_type, str) else None
    where_zh = f"，应发送到 {other.name}" if other else f"，应为 {known} 之一"
    where_en = f"; send it to {other.name}" if other else f"; use one of {known}"
    return _reject(
        "unknown_event_type",
        "event_type",
        show(event_type),
        rule=f"one of {known}",
        zh=f"不是 {spec.name} 的事件类型{where_zh}",
        en=f"is not an event type of {spec.name}{where_en}",
    )

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

=========================== ===================== =============================================
reason                      field                 meaning → what to do
=========================== ===================== =============================================
empty_record                –                     the record has no value (null or 0 bytes) →
                                                  send the event JSON as the record value
too_large                   –                     over 64 KiB → one event per record, shorter
                                                  text fields
invalid_utf8                –                     the bytes are not UTF-8 (e.g. GBK from a
                                                  spreadsheet export) → encode as UTF-8
invalid_json                –                     not JSON: syntax error, NaN/Infinity literal,
                                                  number beyond a double, BOM → fix the JSON
not_an_object               –                     JSON, but an array, string, number or null →
                                                  send one JSON object per record
unknown_event_type          event_type            not an event type of this topic (absent ones
                                                  are missing_field) → use the topic's types
missing_field               that field            a required field is absent → add it
unknown_field               that field            not in the contract (also pipeline fields such
                                                  as ingested_at) → remove it or fix spelling
invalid_field               that field            wrong type or format: not a number, integer,
                                                  UUID, ISO 8601 date-time with offset, not an
                                                  allowed value, control characters, too long
out_of_range                that field            ≤ 0, above the per-event bound,
                                                  an implausible ratio, a zero or oversized
                                                  correction delta → fix the quantity or unit
not_finite                  that field            "NaN" or "Infinity" → send a finite number
too_precise                 that field            more decimals than the unit takes (m² 2,
                                                  km 3, counts 0) → round it
empty_text                  that field            text empty after trimming spaces and
                                                  characters that render as blank (zero-width,
                                                  fillers, selectors…) → fill it in, or omit
                                                  an optional field
unknown_district            district              not a code or name of the zone's districts
unsupported_version         schema_version        only schema_version 1 exists
in_future                   occurred_at,          more than 5 minutes after the time decode
                            reported_at           judges by (the broker's) → fix the date
too_early                   occurred_at,          before 2000-01-01 (a spreadsheet default
                            reported_at           date) → fix the date
invalid_timestamp           kafka_timestamp       (worker) the Kafka record's timestamp is
                                                  before 2000 or beyond any calendar → let
                                                  the producer stamp it, fix its clock
reported_before_occurred    reported_at           more than 5 minutes before occurred_at
department_not_allowed      department            a department writing another family's topic
metric_not_in_family        metric                a correction of another family's metric →
                                                  send it on that family's topic
internal_error              –                     a bug in CityStream, not in the record →
                                                  report it; the record is kept as a dead letter
unprocessable               (from PostgreSQL)     (worker) passed every rule, yet storing it
                                                  failed on its own (the database's message
                                                  says why: a value out of its range, …);
                                                  the rest of its batch is stored
unknown_corrected_event     corrects              (sink) the corrected event_id is not in the
                                                  ledger; decode cannot know
correction_family_mismatch  corrects              (sink) the corrected event is of another
                                                  family, or is itself a correction
correction_metric_mismatch  metric                (sink) the corrected event has no such metric
correction_district_mismatch  district           (sink) booked on another district than the
                                                  corrected event's
correction_exceeds_original  delta                (sink) the event's figure would go below zero
duplicate_event_id          event_id              (sink) the event_id is already recorded for
                                                  different content (an identical redelivery
                                                  is not an error: it counts once)
duplicate_correction        source_ref            (sink) the department already sent a
                                                  correction with this reference (审批单号)
                                                  under another event_id: applied once
=========================== ===================== =============================================

Duplicate keys inside one JSON object are left to orjson: the last one wins.
"""

from __future__ import annotations

import logging
import reprlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.envelope import EARLIEST, Envelope
from schemas.topics import BY_EVENT_TYPE, DEPARTMENTS, TopicSpec

log = logging.getLogger("citystream.validation")

MAX_RECORD_BYTES = 64 * 1024
# Department clocks drift; an event stamped a few minutes ahead is skew, not the future.
FUTURE_TOLERANCE = timedelta(minutes=5)
VALUE_CHARS = 200
FIELD_CHARS = 100

REASONS: dict[str, tuple[str, str]] = {
    "empty_record": ("记录为空", "empty record"),
    "too_large": ("记录过大", "record too large"),
    "invalid_utf8": ("不是 UTF-8 编码", "not UTF-8"),
    "invalid_json": ("不是有效的 JSON", "not valid JSON"),
    "not_an_object": ("不是 JSON 对象", "not a JSON object"),
    "unknown_event_type": ("未知事件类型", "unknown event type"),
    "missing_field": ("缺少字段", "missing field"),
    "unknown_field": ("未知字段", "unknown field"),
    "invalid_field": ("字段格式错误", "invalid field"),
    "out_of_range": ("数值超出合理范围", "out of range"),
    "not_finite": ("不是有限数值", "not a finite number"),
    "too_precise": ("小数位数过多", "too many decimal places"),
    "empty_text": ("文本为空", "empty text"),
    "unknown_district": ("未知街道", "unknown district"),
    "unsupported_version": ("不支持的版本", "unsupported schema version"),
    "in_future": ("时间在未来", "in the future"),
    "too_early": ("时间早于 2000 年", "before 2000"),
    "invalid_timestamp": ("Kafka 记录时间戳无效", "invalid Kafka record timestamp"),
    "reported_before_occurred": ("报送早于发生", "reported before it occurred"),
    "department_not_allowed": ("部门无权报送", "department not allowed"),
    "metric_not_in_family": ("指标不属于本类", "metric of another family"),
    "internal_error": ("系统内部错误", "internal error"),
    # Found by the worker when the database refuses a record that passed decode.
    "unprocessable": ("数据库无法存储该记录", "the database refused the record"),
    # Found by the sink against the ledger, never by decode.
    "unknown_corrected_event": ("被更正的事件不存在", "corrected event unknown"),
    "correction_family_mismatch": ("被更正的事件不属于本类", "corrected event of another family"),
    "correction_metric_mismatch": ("被更正的事件没有该指标", "corrected event lacks the metric"),
    "correction_district_mismatch": ("更正的街道与原事件不符", "correction on another district"),
    "correction_exceeds_original": ("更正后数值为负", "correction below zero"),
    "duplicate_event_id": ("event_id 已用于另一条记录", "event_id reused for other content"),
    "duplicate_correction": ("该更正已报送过", "correction already recorded"),
}


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # a stable code of the table above
    field: str | None  # dotted path of the first offending field, None for the whole record
    value: str | None  # repr of the offending value, at most 200 characters
    rule: str
    message_zh: str
    message_en: str

    @classmethod
    def build(
        cls, reason: str, field: str | None, value: str | None, *, rule: str, zh: str, en: str
    ) -> Rejection:
        """A rejection whose messages name the field, the rule and the value, e.g. for the
        sink's own reasons (``unknown_corrected_event``, ``duplicate_event_id``)."""
        got_zh = f"；收到 {value}" if value is not None else ""
        got_en = f"; got {value}" if value is not None else ""
        where_zh, where_en = (f"{field}：", f"{field}: ") if field else ("", "")
        return cls(
            reason=reason,
            field=field,
            value=value,
            rule=rule,
            message_zh=f"{where_zh}{zh}（规则：{rule}{got_zh}）",
            message_en=f"{where_en}{en} (rule: {rule}{got_en})",
        )

    @property
    def message(self) -> str:
        return f"{self.message_zh} / {self.message_en}"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "reason": self.reason,
            "field": self.field,
            "value": self.value,
            "rule": self.rule,
            "message": self.message,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }


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
    if now is not None and now.utcoffset() is None:
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
            _show(data),
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
            _show(department),
            rule=f"{spec.name} is written by {allowed}",
            zh=f"部门 {department} 无权报送 {event_type}；{spec.name} 只能由 {allowed} 报送",
            en=f"department {department} may not write {event_type}; "
            f"only {allowed} writes {spec.name}",
        )

    try:
        event = model.model_validate(data)
    except ValidationError as exc:
        return _explain(exc, model)

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
                    _show(when.isoformat()),
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
            _show(raw[max(0, bad.start - 20) : bad.start + 20]),
            rule="UTF-8 text",
            zh=f"第 {bad.start} 字节起不是 UTF-8 编码（是否为 GBK？）",
            en=f"not UTF-8 from byte {bad.start} (GBK?); encode the record as UTF-8",
        )
    return _reject(
        "invalid_json",
        None,
        _show(raw[max(0, exc.pos - 20) : exc.pos + 20]),
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
        _show(event_type),
        rule=f"one of {known}",
        zh=f"不是 {spec.name} 的事件类型{where_zh}",
        en=f"is not an event type of {spec.name}{where_en}",
    )


# pydantic error type → (reason, zh, en, rule); {…} are filled from the error's context.
_RANGE = "out_of_range"
_KNOWN_ERRORS: dict[str, tuple[str, str, str, str]] = {
    "missing": ("missing_field", "缺少必填字段", "missing required field", "required"),
    "greater_than": (_RANGE, "必须大于 {gt}", "must be greater than {gt}", "{field} > {gt}"),
    "greater_than_equal": (_RANGE, "必须不小于 {ge}", "must be at least {ge}", "{field} >= {ge}"),
    "less_than": (_RANGE, "必须小于 {lt}", "must be less than {lt}", "{field} < {lt}"),
    "less_than_equal": (
        _RANGE,
        "不能超过 {le}",
        "must be at most {le}",
        "{field} <= {le}",
    ),
    "int_parsing_size": (_RANGE, "数值过大", "is far too large", "a plausible integer"),
    "finite_number": (
        "not_finite",
        "必须是有限数值，不能是 NaN 或 Infinity",
        "must be a finite number, not NaN or Infinity",
        "finite number",
    ),
    "decimal_max_places": (
        "too_precise",
        "最多 {decimal_places} 位小数",
        "takes at most {decimal_places} decimal places",
        "at most {decimal_places} decimal places",
    ),
    "string_too_short": ("empty_text", "不能为空", "must not be empty", "non-empty"),
    "string_too_long": (
        "invalid_field",
        "不能超过 {max_length} 个字符",
        "must be at most {max_length} characters",
        "length <= {max_length}",
    ),
    "literal_error": (
        "invalid_field",
        "必须是 {expected} 之一",
        "must be one of {expected}",
        "one of {expected}",
    ),
    "enum": (
        "invalid_field",
        "必须是 {expected} 之一",
        "must be one of {expected}",
        "one of {expected}",
    ),
    "string_type": ("invalid_field", "必须是字符串", "must be a string", "type: string"),
    "int_type": ("invalid_field", "必须是整数", "must be an integer", "type: integer"),
    "int_parsing": ("invalid_field", "必须是整数", "must be an integer", "type: integer"),
    "int_from_float": (
        "invalid_field",
        "必须是整数，不能有小数",
        "must be a whole number",
        "type: integer",
    ),
    "decimal_type": (
        "invalid_field",
        "必须是数字",
        "must be a number",
        "type: number or numeric string",
    ),
    "decimal_parsing": (
        "invalid_field",
        "必须是数字（如 1200.5）",
        "must be a number (e.g. 1200.5)",
        "type: number or numeric string",
    ),
    "float_type": ("invalid_field", "必须是数字", "must be a number", "type: number"),
    "float_parsing": ("invalid_field", "必须是数字", "must be a number", "type: number"),
    "uuid_type": ("invalid_field", "必须是 UUID 字符串", "must be a UUID string", "format: UUID"),
    "uuid_parsing": (
        "invalid_field",
        "必须是 UUID（如 0190f5e4-…）",
        "must be a UUID (e.g. 0190f5e4-…)",
        "format: UUID",
    ),
    "datetime_type": (
        "invalid_field",
        "必须是带时区的 ISO 8601 时间字符串",
        "must be an ISO 8601 date-time string with offset",
        "ISO 8601 date-time with offset",
    ),
    "datetime_parsing": (
        "invalid_field",
        "不是有效的 ISO 8601 时间（如 2024-09-01T08:00:00+08:00）",
        "is not a valid ISO 8601 date-time (e.g. 2024-09-01T08:00:00+08:00)",
        "ISO 8601 date-time with offset",
    ),
    "datetime_from_date_parsing": (
        "invalid_field",
        "不是有效的 ISO 8601 时间（如 2024-09-01T08:00:00+08:00）",
        "is not a valid ISO 8601 date-time (e.g. 2024-09-01T08:00:00+08:00)",
        "ISO 8601 date-time with offset",
    ),
    "timezone_aware": (
        "invalid_field",
        "缺少时区，请加上 +08:00",
        "has no timezone offset; add +08:00",
        "date-time with offset",
    ),
    "model_type": ("invalid_field", "必须是 JSON 对象", "must be a JSON object", "type: object"),
    "model_attributes_type": (
        "invalid_field",
        "必须是 JSON 对象",
        "must be a JSON object",
        "type: object",
    ),
    "dict_type": ("invalid_field", "必须是 JSON 对象", "must be a JSON object", "type: object"),
}


def _explain(exc: ValidationError, model: type[Envelope]) -> Rejection:
    """The first error, as a rejection. Errors come in field declaration order."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    kind = first["type"]
    ctx: dict[str, Any] = first.get("ctx") or {}
    if "field" in ctx:  # raised by a model validator, which has no location of its own
        field: str | None = ctx["field"]
        raw_value = ctx.get("value", _ABSENT)
    else:
        field = _field_name(first["loc"])
        raw_value = _ABSENT if kind == "missing" else first.get("input")
    value = None if raw_value is _ABSENT else _show(raw_value)

    if kind in REASONS and "zh" in ctx:  # our own rule_error
        reason, zh, en, rule = kind, ctx["zh"], ctx["en"], ctx["rule"]
    elif kind == "extra_forbidden":
        reason = "unknown_field"
        known = ", ".join(model.model_fields) if len(first["loc"]) == 1 else "see the JSON Schema"
        zh, en, rule = "不是该事件的字段", "is not a field of this event", f"known fields: {known}"
    elif kind in _KNOWN_ERRORS:
        reason, zh, en, rule = _KNOWN_ERRORS[kind]
        params = {**{k: _plain(v) for k, v in ctx.items()}, "field": field or "value"}
        zh, en, rule = zh.format_map(params), en.format_map(params), rule.format_map(params)
        if kind == "missing":
            extras = [str(_field_name(e["loc"])) for e in errors if e["type"] == "extra_forbidden"]
            if extras:
                listed = ", ".join(extras[:5])
                zh += f"（另有未知字段 {listed}，是否拼写错误？）"
                en += f" (unknown field {listed} given: a misspelling?)"
    else:
        reason, zh, en, rule = "invalid_field", "取值无效", first["msg"], kind
    if field == "schema_version" and reason == "invalid_field":
        reason, rule = "unsupported_version", "schema_version == 1"
        zh, en = "只支持 schema_version 1", "only schema_version 1 exists"
    return _reject(reason, field, value, rule=rule, zh=zh, en=en)


_ABSENT = object()


def _plain(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _field_name(loc: tuple[int | str, ...]) -> str | None:
    """Dotted path; a client's unknown key may hold control characters or be very long."""
    name = ".".join(str(part) for part in loc)
    if not name:
        return None
    if not name.isprintable():
        name = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in name)
    return name if len(name) <= FIELD_CHARS else name[: FIELD_CHARS - 1] + "…"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist = 3, 6, 6
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = VALUE_CHARS, VALUE_CHARS, 60


def _show(value: object) -> str:
    """repr of an offending value, at most 200 characters, however large or deep it is."""
    if isinstance(value, str | bytes):
        text = repr(value[: VALUE_CHARS + 1])
    else:
        try:
            text = _REPR.repr(value)
        except (ValueError, RecursionError):  # e.g. an int beyond the str conversion limit
            text = f"<{type(value).__name__}>"
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"

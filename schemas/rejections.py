"""A record the pipeline does not take, and why: a :class:`Rejection` names the field, the
offending value and the rule, in Chinese and English, under a stable reason code (what the
dead-letter table, the receipts and the pipeline dashboard count). :func:`explain` says a
pydantic validation error that way; :mod:`schemas.validation` and the sink's own checks
(:mod:`streams.acceptance`) make the others.

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

"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.envelope import Envelope

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


def explain(exc: ValidationError, model: type[Envelope]) -> Rejection:
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
    value = None if raw_value is _ABSENT else show(raw_value)

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
    return Rejection.build(reason, field, value, rule=rule, zh=zh, en=en)


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


def show(value: object) -> str:
    """repr of an offending value, at most 200 characters, however large or deep it is."""
    if isinstance(value, str | bytes):
        text = repr(value[: VALUE_CHARS + 1])
    else:
        try:
            text = _REPR.repr(value)
        except (ValueError, RecursionError):  # e.g. an int beyond the str conversion limit
            text = f"<{type(value).__name__}>"
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"

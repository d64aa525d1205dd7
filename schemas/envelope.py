"""The envelope every event carries, whatever its family.

The pipeline adds ``ingested_at`` and the Kafka coordinates; they are not part of what a
department sends. Rules that depend on the clock ("not in the future") live in
:func:`schemas.validation.decode`, which is given the time to judge against; everything
here depends on the event alone, so a replay judges it the same way.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from uuid6 import uuid7

from schemas.districts import LABELS, District, accepted_names, district_code, named_subdistricts
from schemas.fields import ISO_ONLY, NOT_NIL, Name, rule_error

# Namespace for ids derived from a department's own ledger reference (uuid5), so that
# importing the same ledger twice yields the same event ids and counts nothing twice.
LEDGER_NAMESPACE = uuid.UUID("5b1f8f0e-7a3c-4c55-9a55-0c1c17c5a1e1")


_DEPARTMENTS: tuple[str, ...] = ()


def _departments() -> tuple[str, ...]:
    # The families are collected by schemas.topics, which imports this module: looked up
    # when an event is first validated, by then every module is loaded (then kept: the
    # import statement alone cost a tenth of an event's validation).
    global _DEPARTMENTS
    if not _DEPARTMENTS:
        from schemas.topics import DEPARTMENTS

        _DEPARTMENTS = DEPARTMENTS
    return _DEPARTMENTS


def _department(value: str) -> str:
    known = _departments()
    if value not in known:
        names = ", ".join(known)
        raise rule_error(
            "invalid_field",
            rule=f"one of {names}",
            zh=f"不是报送部门，应为 {names} 之一",
            en=f"is not a sending department; use one of {names}",
        )
    return value


def _department_schema(schema: dict[str, Any]) -> None:
    schema["enum"] = list(_departments())


# The departments that send events: one per event family, named after it; each writes only
# its own family's topic (schemas.topics, services.kafka.access).
Department = Annotated[str, AfterValidator(_department)]

CST = timezone(timedelta(hours=8), "Asia/Shanghai")
# Nothing the platform tracks happened, or was reported, before 2000 (the reports start in
# 2018); earlier dates are spreadsheet defaults such as 1900-01-00 or the Unix epoch.
EARLIEST = datetime(2000, 1, 1, tzinfo=CST)
# Clocks of department systems drift a little: a report stamped a few minutes before the
# event it reports is skew, not a mistake.
CLOCK_SKEW = timedelta(minutes=5)


def new_event_id() -> uuid.UUID:
    """Time-ordered ids keep the ledger's primary-key index append-mostly."""
    return uuid7()


def ledger_event_id(department: str, source_ref: str) -> uuid.UUID:
    return uuid.uuid5(LEDGER_NAMESPACE, f"{department}\x1f{source_ref}")


def _district(value: object) -> object:
    if not isinstance(value, str):
        return value  # the enum validator reports the wrong type
    found = district_code(value)
    if found is None:
        names = accepted_names()
        codes = ", ".join(d.value for d in District)
        rule = f"one of {codes}, or their Chinese or English names"
        mentioned = named_subdistricts(value)
        if len(mentioned) > 1:
            both = "、".join(LABELS[d][0] for d in mentioned)
            raise rule_error(
                "unknown_district",
                rule=rule,
                zh=f"同时写了 {both}；每条记录只能属于一个街道，请分行填写"
                f"（{names}，或 高新区 表示全区）",
                en=f"names {len(mentioned)} subdistricts ({both}); one record belongs to "
                f"one subdistrict: split it into one row each ({names}, or 高新区 for the "
                "whole zone)",
            )
        if len(mentioned) == 1:
            meant = LABELS[mentioned[0]][0]
            raise rule_error(
                "unknown_district",
                rule=rule,
                zh=f"不是街道名称；是否指 {meant}？请填写 {names} 之一（或 高新区 表示全区）",
                en=f"is not a subdistrict's name; did you mean {meant}? Use one of {names} "
                "(or 高新区 for the whole zone)",
            )
        raise rule_error(
            "unknown_district",
            rule=rule,
            zh=f"不是高新区的街道；请填写 {names} 之一（也可写 石佛、石佛街道办事处 或 {codes}；"
            "全区填 高新区）",
            en=f"is not a subdistrict of the zone; use one of {names} (or 石佛, "
            f"石佛街道办事处, or the codes {codes}; 高新区 for the whole zone)",
        )
    return found


# Written to JSON as str() of the member (a StrEnum's own text, in C): pydantic's enum
# serializer reads ``.value``, a Python property, ~0.4 µs of every event the sink writes.
DistrictField = Annotated[
    District, BeforeValidator(_district), PlainSerializer(str, return_type=str, when_used="json")
]


# pydantic gives a parsed time its own tzinfo class, whose methods are calls into Rust:
# every comparison, conversion or binary dump of such a time asks it for its offset again
# (PostgreSQL's timestamptz dumper ~0.6 µs a time, a comparison with the record's clock
# ~0.3), ~2 µs of every event the worker writes (py-spy --native). The same offset as the
# standard library's fixed-offset timezone answers in C. Same instant, same offset, same
# ISO text: only the tzinfo's class changes (tests/unit/test_envelope_times.py).
_ZONES: dict[tzinfo, timezone | None] = {}
# Offsets pydantic parses lie within ±23:59 (2,879 whole minutes): a bound for the cache,
# were that ever to change.
_MAX_ZONES = 4096
_NOT_SEEN: Any = object()


def standard_zone(tz: tzinfo) -> timezone | None:
    """The standard library's timezone with ``tz``'s fixed offset (``UTC`` itself for 0);
    None if ``tz`` has no fixed offset in whole minutes (then it is left as it is)."""
    offset = tz.utcoffset(None)
    if offset is None or offset % timedelta(minutes=1):
        return None
    return UTC if not offset else timezone(offset)


def _in_standard_zone(value: datetime) -> datetime:
    tz = value.tzinfo
    if tz is None or type(tz) is timezone:
        return value
    zone = _ZONES.get(tz, _NOT_SEEN)
    if zone is _NOT_SEEN:
        zone = standard_zone(tz)
        if len(_ZONES) < _MAX_ZONES:
            _ZONES[tz] = zone
    if zone is None:
        return value
    # The same wall time (fold included) in the zone: combine is the cheapest way to make
    # it (replace(tzinfo=) parses keywords, ~4 times as long).
    return datetime.combine(value.date(), value.time(), zone)


def _not_before_2000(value: datetime) -> datetime:
    value = _in_standard_zone(value)
    # A year after 2000 in any offset is after EARLIEST: one attribute read instead of a
    # comparison of two aware datetimes (which asks both for their UTC offsets), a quarter
    # of an event's validation.
    if value.year > 2000:
        return value
    if value < EARLIEST:
        raise rule_error(
            "too_early",
            rule="on or after 2000-01-01T00:00:00+08:00",
            zh="早于 2000 年，不是本平台记录的事件"
            "（是否为表格默认日期 1900-01-00 或 1970-01-01？）",
            en="is before 2000, which no event of the platform is "
            "(a spreadsheet default such as 1900-01-00 or 1970-01-01?)",
        )
    return value


NOT_BEFORE_2000 = AfterValidator(_not_before_2000)
EventId = Annotated[uuid.UUID, NOT_NIL]


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Set by each concrete event model.
    event_type_name: ClassVar[str]
    family: ClassVar[str]

    event_id: EventId = Field(
        description="UUID of this event (UUIDv7 preferred; uuid5 of the ledger row for imports)"
    )
    schema_version: Literal[1] = 1
    department: Department = Field(
        description="the sending department; see the topic's list",
        json_schema_extra=_department_schema,
    )
    district: DistrictField = Field(
        description=(
            "subdistrict code (shifo, gouzhao, fengyang, wutong, shuangqiao) or zone; "
            "the Chinese and English names (石佛街道, 石佛, Shifo Subdistrict, …) are "
            "accepted and stored as the code"
        )
    )
    occurred_at: Annotated[AwareDatetime, ISO_ONLY, NOT_BEFORE_2000] = Field(
        description="when it happened (event time), ISO 8601 with offset, from 2000 on, "
        "not in the future",
    )
    reported_at: Annotated[AwareDatetime, ISO_ONLY, NOT_BEFORE_2000] = Field(
        description="when the department sent it; not before occurred_at (5 minutes of skew)"
    )
    project: Name | None = Field(
        default=None,
        description="site, estate, school, lot or waterlogging point; NFKC-normalised, "
        "invisible characters removed, blank-looking fillers read as spaces, spaces collapsed",
    )
    source_ref: Name | None = Field(
        default=None, description="ledger row or document this event comes from"
    )

    @model_validator(mode="after")
    def _reported_after_occurred(self) -> Envelope:
        if self.reported_at < self.occurred_at - CLOCK_SKEW:
            raise rule_error(
                "reported_before_occurred",
                rule="reported_at >= occurred_at - 5 min",
                zh=f"报送时间早于发生时间 {self.occurred_at.isoformat()}",
                en=f"is before occurred_at {self.occurred_at.isoformat()}",
                field="reported_at",
                value=self.reported_at.isoformat(),
            )
        return self

    def measures(self) -> dict[str, Decimal]:
        """Metric name → quantity this event adds; what the rollups sum."""
        raise NotImplementedError

    def partition_key(self) -> bytes:
        """Events of one project stay in order on one partition."""
        return f"{self.district}/{self.project or ''}".encode()

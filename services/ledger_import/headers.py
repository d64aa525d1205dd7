"""Stage 2, headers: the columns a clerk writes (项目名称, 所属街道, 面积（万㎡）…) → event
fields, with the unit each header names; unknown columns stop the import here, before a
row is read. Where the header stands and which event type the columns fit:
:mod:`services.ledger_import.layout`.

A notes column (备注, 说明, 附注 …) is kept with the row (the rejects file carries every
cell) but not sent: no event has a free-text field, and a remark must not become part of
the reference that makes the event id (editing a remark would look like a changed row);
the summary says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal
from pathlib import Path

import orjson
import yaml

from schemas.envelope import Envelope
from schemas.family import LedgerField, UnitKind, ledger_field
from schemas.fields import normalise_text
from schemas.topics import FAMILIES
from services.ledger_import.base import LedgerError

# A field as clerks head its column: schemas.family.LedgerField (each family declares its
# payload fields there; the envelope's and the corrections' are here).
FieldSpec = LedgerField
_field = ledger_field

# The headers a clerk writes for each field (the field's own name always works too). They
# are compared after header_key(): width, case, spaces and a trailing (unit) do not matter.
COMMON_FIELDS: tuple[FieldSpec, ...] = (
    _field("event_type", "event_type", "事件类型 事件 业务类型 类别"),
    _field("event_id", "text", "事件id"),
    _field("schema_version", "passthrough"),
    _field("department", "department", "部门 报送部门 填报单位 责任单位"),
    _field("district", "district", "所属街道 街道 办事处 街道办事处 所在街道 所属办事处 辖区"),
    _field(
        "occurred_at",
        "datetime",
        "日期 完成日期 发生日期 发生时间 完成时间 时间 完工日期 竣工日期 交付日期 开工日期 "
        "开学日期 投用日期 开放日期 启用日期 并网日期 入网日期 接入日期 回迁日期 铺设日期 "
        "整治完成日期 统计日期 统计时间 截至日期 截止日期 立项日期 封顶日期 开诊日期 批复日期",
    ),
    _field("reported_at", "datetime", "上报日期 报送日期 上报时间 报送时间 填报日期 填报时间"),
    _field("project", "text", "项目名称 项目 工程名称 小区名称 小区 安置区 安置区名称 楼盘"),
    _field(
        "source_ref",
        "text",
        "台账编号 编号 单据号 单据编号 台账号 记录编号 流水号 审批单号 审批编号 报送编号 报表编号",
    ),
    # A correction's own fields (schemas/corrections.py), the same in every family.
    _field("corrects", "text", "被更正事件 被更正事件id 原事件id"),
    _field("metric", "text", "指标"),
    _field("delta", "decimal", "更正量 调整量 变化量"),
    _field("reason", "text", "更正原因 原因"),
    _field("approved_by", "text", "审批人 批准人"),
)


def _merged(fields: Iterable[FieldSpec]) -> tuple[FieldSpec, ...]:
    """One spec per field name: families that share a field (area_m2) pool their aliases;
    they must agree on how its cells read."""
    merged: dict[str, FieldSpec] = {}
    for spec in fields:
        seen = merged.get(spec.name)
        if seen is None:
            merged[spec.name] = spec
            continue
        if (seen.kind, seen.units) != (spec.kind, spec.units):
            raise TypeError(f"families declare field {spec.name} differently")
        aliases = seen.aliases + tuple(a for a in spec.aliases if a not in seen.aliases)
        merged[spec.name] = LedgerField(spec.name, spec.kind, aliases, spec.units)
    return tuple(merged.values())


FIELDS: tuple[FieldSpec, ...] = _merged(
    [*COMMON_FIELDS, *(spec for family in FAMILIES for spec in family.ledger_fields)]
)
BY_FIELD: dict[str, FieldSpec] = {spec.name: spec for spec in FIELDS}

# Row serial numbers: every ledger has one, and it means nothing to the platform.
IGNORED_HEADERS: tuple[str, ...] = ("序号", "行号")
# Notes columns: nearly every ledger has one. Kept with the row, not sent (module docstring).
NOTE_HEADERS: tuple[str, ...] = (
    "备注",
    "说明",
    "附注",
    "备考",
    "注",
    "注释",
    "备注说明",
    "情况说明",
    "其他说明",
    "备注信息",
    "remark",
    "remarks",
    "note",
    "notes",
    "comment",
    "comments",
)

# Fields a ledger column would not normally hold.
_NOT_FROM_LEDGER = frozenset({"schema_version", "location"})

# Units a header may carry, → factor to the field's base unit (m², km, a count).
UNITS: dict[UnitKind, dict[str, Decimal]] = {
    "area": {
        "m2": Decimal(1),
        "平方米": Decimal(1),
        "平米": Decimal(1),
        "万m2": Decimal(10_000),
        "万平方米": Decimal(10_000),
        "万平米": Decimal(10_000),
    },
    "length": {
        "km": Decimal(1),
        "公里": Decimal(1),
        "千米": Decimal(1),
        "m": Decimal("0.001"),
        "米": Decimal("0.001"),
    },
    "count": {unit: Decimal(1) for unit in ("套", "户", "人", "个", "位", "辆", "所", "处")},
}

# How a unit is shown back to the clerk (keys as header_key writes them: ㎡ reads m2).
UNIT_LABELS: dict[str, str] = {"m2": "㎡", "万m2": "万㎡", "m": "米"}
# The unit of each quantity field when its header names none: the field's own unit.
BASE_UNIT_LABELS: dict[str, str] = {
    "area_m2": "㎡",
    "length_km": "km",
    "units": "套",
    "households": "户",
    "persons": "人",
    "places": "个",
    "spaces": "个",
}

_BRACKETS = str.maketrans({"【": "(", "】": ")", "〔": "(", "〕": ")", "[": "(", "]": ")"})
_SEPARATORS_RE = re.compile(r"[\s_\-·*:：]+")
_UNIT_RE = re.compile(r"^(?P<base>.+?)\((?:单位)?(?P<unit>[^()]*)\)$")


def header_key(text: str) -> str:
    """What headers are compared by: the text fields' normalisation (NFKC: full-width →
    half-width, ㎡ → m2; invisible characters gone), case-folded, without spaces,
    underscores, hyphens, colons and the * of required-field templates."""
    text = normalise_text(text).translate(_BRACKETS).casefold()
    return _SEPARATORS_RE.sub("", text)


def _alias_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for spec in FIELDS:
        for spelling in (spec.name, *spec.aliases):
            key = header_key(spelling)
            if table.setdefault(key, spec.name) != spec.name:
                raise AssertionError(f"header {spelling!r} means two fields")
    return table


ALIASES: dict[str, str] = _alias_table()
_UNIT_KEYS: dict[UnitKind, dict[str, Decimal]] = {
    kind: {header_key(unit): factor for unit, factor in units.items()}
    for kind, units in UNITS.items()
}


IGNORED_KEYS = frozenset(header_key(h) for h in IGNORED_HEADERS)
_NOTE_KEYS = frozenset(header_key(h) for h in NOTE_HEADERS)
ALL_UNIT_KEYS = frozenset(unit for units in _UNIT_KEYS.values() for unit in units)


def is_note_header(header: str) -> bool:
    """备注, 说明, 备注（选填）…: a notes column."""
    key = header_key(header)
    found = _UNIT_RE.match(key)
    return key in _NOTE_KEYS or (found is not None and found["base"] in _NOTE_KEYS)


@dataclass(frozen=True)
class Column:
    """One column of the ledger and the field it feeds (None: ignored, or notes)."""

    index: int
    header: str
    field: str | None
    scale: Decimal = Decimal(1)
    # The unit its header names, as shown to the clerk (万㎡, 米); None: the field's own.
    unit: str | None = None
    note: bool = False

    @property
    def unit_label(self) -> str:
        """The unit this column's numbers are in, for messages: 万㎡, 米, ㎡, km, 套 …"""
        return self.unit or BASE_UNIT_LABELS.get(self.field or "", "")


@dataclass(frozen=True)
class Match:
    field: str
    scale: Decimal = Decimal(1)
    # Not part of what a header means (the factor is): how to name its unit to the clerk.
    unit: str | None = dataclass_field(default=None, compare=False)


def match_header(header: str) -> Match | None:
    """The field a header means, and the factor its unit asks for; None if unknown.

    Raises LedgerError for a known field with a unit it cannot convert (面积(亩)): reading
    the number as m² would be silently wrong by a factor.
    """
    key = header_key(header)
    if key in ALIASES:
        return Match(ALIASES[key])
    base, unit = key, ""
    found = _UNIT_RE.match(key)
    if found:
        base, unit = found["base"], found["unit"]
    else:
        base, sep, unit = key.partition("/")
        if not sep:
            # A bare unit suffix: 面积m2, 长度km, 套数套.
            for units in _UNIT_KEYS.values():
                for suffix in sorted(units, key=len, reverse=True):
                    if key.endswith(suffix) and key[: -len(suffix)] in ALIASES:
                        base, unit = key[: -len(suffix)], suffix
                        break
                else:
                    continue
                break
            else:
                return None
    name = ALIASES.get(base)
    if name is None:
        return None
    spec = BY_FIELD[name]
    if spec.units is None:
        return Match(name)  # 日期(年月日), 街道(办事处): the bracket only explains
    factor = _UNIT_KEYS[spec.units].get(unit)
    label = UNIT_LABELS.get(unit, unit)
    if factor is None:
        known = "、".join(UNITS[spec.units])
        raise LedgerError(
            f"column {header!r} means {name}, but its unit {unit!r} is not one CityStream "
            f"converts ({known}); give the figure in one of those units, or map the column "
            "with --mapping if the unit is already right"
        )
    return Match(name, factor, label)


def scale_from_unit(header: str, name: str) -> Decimal:
    """The factor for an explicitly mapped header that also carries a unit, else 1."""
    return _mapped_unit(header, name)[0]


def _mapped_unit(header: str, name: str) -> tuple[Decimal, str | None]:
    spec = BY_FIELD[name]
    found = _UNIT_RE.match(header_key(header))
    if spec.units is None or not found or found["unit"] not in _UNIT_KEYS[spec.units]:
        return Decimal(1), None
    unit = found["unit"]
    return _UNIT_KEYS[spec.units][unit], UNIT_LABELS.get(unit, unit)


def model_fields(models: Iterable[type[Envelope]]) -> set[str]:
    """Field names of these models, with ``location.lat``/``.lon`` for the nested location."""
    names: set[str] = set()
    for model in models:
        names.update(model.model_fields)
        if "location" in model.model_fields:
            names.update(("location.lat", "location.lon"))
    return names


def read_mapping(path: Path) -> dict[str, str | None]:
    """A --mapping file: ledger header → field name (null to ignore the column)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(f"cannot read the mapping file {path}: {exc}") from exc
    try:
        data = orjson.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise LedgerError(f"the mapping file {path} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in data.items()
    ):
        raise LedgerError(
            f"the mapping file {path} must map each ledger header to a field name "
            "(or null to ignore the column), e.g.  供热规模: area_m2"
        )
    unknown = sorted(v for v in data.values() if v and v not in BY_FIELD)
    if unknown:
        raise LedgerError(
            f"the mapping file {path} names unknown fields {', '.join(unknown)}; "
            f"fields are {', '.join(BY_FIELD)}"
        )
    return {header_key(k): (v or None) for k, v in data.items()}


def resolve_columns(
    headers: Sequence[str],
    *,
    allowed: set[str],
    mapping: Mapping[str, str | None] | None = None,
    what: str,
) -> list[Column]:
    """Headers → columns. Every problem is a LedgerError raised before any row is read:
    an unknown header, two headers for one field, a field the event type does not have."""
    mapping = mapping or {}
    columns: list[Column] = []
    unknown: list[str] = []
    for index, raw in enumerate(headers):
        header = raw.strip()
        key = header_key(header)
        if not key:
            columns.append(Column(index, "", None))
            continue
        if key in mapping:
            name = mapping[key]
            scale, unit = _mapped_unit(header, name) if name else (Decimal(1), None)
            columns.append(Column(index, header, name, scale, unit))
            continue
        if key in IGNORED_KEYS:
            columns.append(Column(index, header, None))
            continue
        if is_note_header(header):
            columns.append(Column(index, header, None, note=True))
            continue
        match = match_header(header)
        if match is None:
            unknown.append(header)
            continue
        columns.append(Column(index, header, match.field, match.scale, match.unit))
    if unknown:
        listed = "、".join(unknown)
        fields = ", ".join(sorted(f for f in allowed if f not in _NOT_FROM_LEDGER))
        raise LedgerError(
            f"unknown column{'s' if len(unknown) > 1 else ''} {listed}: not a field of "
            f"{what}, nothing was sent. Rename the column (e.g. 项目名称, 所属街道, 完成日期, "
            "面积（㎡）, or the English field name), or pass --mapping FILE with a line "
            f"'{unknown[0]}: FIELD' (FIELD one of {fields}) or '{unknown[0]}: null' to "
            "ignore the column"
        )
    seen: dict[str, str] = {}
    for column in columns:
        if column.field is None:
            continue
        if column.field not in allowed:
            raise LedgerError(
                f"column {column.header!r} means {column.field}, which {what} does not have; "
                "remove the column, or ignore it with --mapping (  "
                f"{column.header}: null  )"
            )
        if column.field in seen:
            raise LedgerError(
                f"columns {seen[column.field]!r} and {column.header!r} both mean "
                f"{column.field}; keep one, or say which is which with --mapping"
            )
        seen[column.field] = column.header
    return columns

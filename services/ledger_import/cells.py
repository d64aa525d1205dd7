"""Stage 3, cells: one cell as the clerk wrote it → the JSON value of its field.

Dates as clerks write them (Excel date cells, 2024/3/5, 2024年3月5日), numbers with thousands
separators or full-width digits scaled by the header's unit, Chinese names of enum values.
What is not a date or an enum value is a :class:`CellError`; everything else is left to
:func:`schemas.validation.decode` to judge.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from schemas.districts import district_code
from schemas.envelope import CST
from schemas.errors import CityStreamError
from schemas.fields import normalise_text
from schemas.milestones import MILESTONES, milestone_names
from schemas.rejections import Rejection
from schemas.topics import FAMILIES
from services.ledger_import.headers import BASE_UNIT_LABELS, BY_FIELD, Column, FieldSpec

# Cell values as clerks write them → the codes events carry (from the families'
# declarations, schemas/family.py).
EVENT_TYPE_NAMES: dict[str, str] = {
    name: kind.name for family in FAMILIES for kind in family.events for name in kind.ledger_names
}

DEPARTMENT_NAMES: dict[str, str] = {
    name: family.department for family in FAMILIES for name in family.department_names
}

SPACE_KINDS: dict[str, str] = {
    "临时": "temporary",
    "临时车位": "temporary",
    "临时停车位": "temporary",
    "永久": "permanent",
    "永久车位": "permanent",
    "固定": "permanent",
    "固定车位": "permanent",
}

SCHOOL_LEVELS: dict[str, str] = {
    "幼儿园": "kindergarten",
    "小学": "primary",
    "初中": "junior_secondary",
    "初级中学": "junior_secondary",
    "高中": "senior_secondary",
    "高级中学": "senior_secondary",
    "普通高中": "senior_secondary",
}

# One vocabulary for every family's milestones: 开工 is ``started`` in any ledger; an event
# type that does not go through the milestone refuses it when decoded.
MILESTONE_NAMES: dict[str, str] = milestone_names()

UTILITIES: dict[str, str] = {
    "供水": "water",
    "供水管网": "water",
    "给水": "water",
    "自来水": "water",
    "燃气": "gas",
    "燃气管网": "gas",
    "天然气": "gas",
}


class CellError(CityStreamError):
    """A cell that cannot become its field's value; carries the rejection."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


_DATE_RE = re.compile(
    r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?"
    r"(?:(?:\s*T\s*|\s+|(?<=日))(?P<H>\d{1,2})\s*[:时点]\s*"
    r"(?:(?P<M>\d{1,2})\s*分?\s*(?::\s*)?(?:(?P<S>\d{1,2})\s*秒?)?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?$"
)
_COMPACT_DATE_RE = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$")
_DATE_RULE = "a date such as 2024-03-05, 2024/3/5 or 2024年3月5日, optionally with a time"


def _date_error(field: str, value: Any, zh: str, en: str) -> CellError:
    return CellError(
        Rejection.build("invalid_field", field, quoted(value), rule=_DATE_RULE, zh=zh, en=en)
    )


def parse_datetime(value: Any, *, field: str = "occurred_at") -> datetime:
    """A date or date-time as a clerk writes it; without an offset it is Asia/Shanghai."""
    if isinstance(value, datetime):
        return value if value.utcoffset() is not None else value.replace(tzinfo=CST)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=CST)
    if isinstance(value, int) and not isinstance(value, bool) and len(str(value)) == 8:
        value = str(value)  # 20240305 typed into a number cell
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise _date_error(
            field,
            value,
            zh="是数字而不是日期；请把单元格格式设为日期，或写成 2024-03-05",
            en="is a number, not a date; format the cell as a date or write 2024-03-05",
        )
    if not isinstance(value, str):
        raise _date_error(
            field,
            value,
            zh="不是日期（如 2024-03-05）",
            en="is not a date (e.g. 2024-03-05)",
        )
    # As text fields are normalised: a date or number the clerk sees is the one read.
    text = normalise_text(value)
    try:
        found = _COMPACT_DATE_RE.match(text) or _DATE_RE.match(text)
        if found is None:
            parsed = datetime.fromisoformat(text)
        else:
            parts = found.groupdict()
            tz = parts.get("tz")
            parsed = datetime(
                int(parts["y"]),
                int(parts["m"]),
                int(parts["d"]),
                int(parts.get("H") or 0),
                int(parts.get("M") or 0),
                int(parts.get("S") or 0),
            )
            if tz:
                parsed = datetime.fromisoformat(f"{parsed.isoformat()}{_offset(tz)}")
    except ValueError:
        raise _date_error(
            field,
            value,
            zh="不是有效日期（如 2024-03-05、2024/3/5、2024年3月5日）",
            en="is not a valid date (e.g. 2024-03-05, 2024/3/5, 2024年3月5日)",
        ) from None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=CST)


def _offset(tz: str) -> str:
    if tz == "Z":
        return "+00:00"
    return tz if ":" in tz else f"{tz[:3]}:{tz[3:]}"


_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")


def _float_text(value: float) -> str:
    """A number cell as Excel shows it: 15 significant digits, so that a formula's
    1234.5600000000002 is the 1234.56 the clerk sees, not a too-precise area."""
    text = format(value, ".15g")
    return text.removesuffix(".0") if "e" not in text else format(Decimal(text), "f")


def _number_text(value: str) -> str:
    text = normalise_text(value)
    return text.replace(",", "") if _THOUSANDS_RE.match(text) else text


def _decimal_value(value: Any, scale: Decimal) -> Any:
    """A JSON-ready value for a Decimal field: numbers as exact strings, scaled by the
    header's unit; what is not a number is passed on for decode to reject."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        text = _float_text(value)
    elif isinstance(value, int | Decimal):
        text = str(value)
    elif isinstance(value, str):
        text = _number_text(value)
    else:
        return str(value)
    if scale == 1:
        return text
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return format(number * scale, "f") if number.is_finite() else text


def _count_value(value: Any) -> Any:
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        rounded = float(_float_text(value))
        return int(rounded) if rounded.is_integer() else value
    if isinstance(value, str):
        return _number_text(value)
    return value


def _text_value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, float | datetime | date):
        return display(value)
    return value if isinstance(value, bool) else str(value)


def _choice(value: Any, table: Mapping[str, str], field: str, codes: tuple[str, ...]) -> Any:
    if not isinstance(value, str):
        return value
    text = normalise_text(value)
    if text in codes:
        return text
    if text in table:
        return table[text]
    names = "、".join(table)
    raise CellError(
        Rejection.build(
            "invalid_field",
            field,
            quoted(value),
            rule=f"one of {', '.join(codes)} or {names}",
            zh=f"应为 {names} 之一（或 {', '.join(codes)}）",
            en=f"must be one of {', '.join(codes)} (or {names})",
        )
    )


def convert(spec: FieldSpec, value: Any, scale: Decimal = Decimal(1)) -> Any:
    """One cell → the JSON value of its field. Raises CellError for a date that is not one
    and an enum value in neither language; everything else is left for decode to judge."""
    kind = spec.kind
    if kind == "datetime":
        return parse_datetime(value, field=spec.name).isoformat()
    if kind == "decimal":
        return _decimal_value(value, scale)
    if kind == "count":
        return _count_value(value)
    if kind == "float":
        return _number_text(value) if isinstance(value, str) else value
    if kind == "space_kind":
        return _choice(value, SPACE_KINDS, spec.name, ("temporary", "permanent"))
    if kind == "school_level":
        codes = ("kindergarten", "primary", "junior_secondary", "senior_secondary")
        return _choice(value, SCHOOL_LEVELS, spec.name, codes)
    if kind == "milestone":
        return _choice(value, MILESTONE_NAMES, spec.name, tuple(MILESTONES))
    if kind == "utility":
        return _choice(value, UTILITIES, spec.name, ("water", "gas"))
    if kind == "department" and isinstance(value, str):
        text = normalise_text(value)
        return DEPARTMENT_NAMES.get(text, text)
    if kind == "event_type" and isinstance(value, str):
        text = normalise_text(value)
        return EVENT_TYPE_NAMES.get(text, text)
    if kind in ("text", "district"):
        return _text_value(value)
    return value


def display(value: Any) -> str:
    """A cell as the clerk sees it (for the rejects file). Runs for every cell: the common
    types are tested first, and no strftime."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ""
    if kind is datetime:
        text: str = value.isoformat(sep=" ")
        return text.removesuffix(" 00:00:00")
    if kind is float:
        return _float_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def quoted(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else repr(value[:200])
    return text if len(text) <= 200 else text[:199] + "…"


def _canonical(name: str, value: Any) -> str:
    """A converted value in one spelling, for the content hash of a row without reference:
    石佛 and 石佛街道, 1200.50 and 1200.5, a date cell and 2024/3/5 hash alike."""
    if name == "district" and isinstance(value, str):
        code = district_code(value)
        return code.value if code else normalise_text(value)
    spec = BY_FIELD.get(name)
    if spec is not None and spec.kind in ("decimal", "count", "float"):
        try:
            return format(Decimal(str(value)).normalize(), "f")
        except InvalidOperation:
            pass
    if isinstance(value, str):
        return normalise_text(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def derived_ref(stem: str, values: Mapping[str, Any]) -> str:
    """source_ref of a row in a ledger without a reference column: the file name and a hash
    of the row's values, so the same row in the same ledger is the same event wherever it
    sits (rows may be sorted or inserted between imports)."""
    content = orjson.dumps(
        {k: _canonical(k, v) for k, v in values.items()}, option=orjson.OPT_SORT_KEYS
    )
    return f"{stem[:150]}#{hashlib.sha256(content).hexdigest()[:16]}"


# --- refusals in the clerk's units ------------------------------------------------------------


def _amount(value: Decimal) -> str:
    """5000000 → 5,000,000; 0.0500 → 0.05: a bound as a clerk reads it."""
    text = f"{value.normalize():,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _plain(value: Decimal) -> str:
    """A figure to type into a cell: 8.6, 1600 (no separators)."""
    text = f"{value.normalize():f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _bounds(model: type[Any], name: str) -> tuple[Decimal | None, Decimal | None, int | None]:
    """(greater than, at most, decimal places) of a model's quantity field, from its
    pydantic constraints; None where the field has none."""
    info = model.model_fields.get(name)
    gt = le = places = None
    for constraint in getattr(info, "metadata", ()):
        if getattr(constraint, "gt", None) is not None:
            gt = Decimal(str(constraint.gt))
        if getattr(constraint, "le", None) is not None:
            le = Decimal(str(constraint.le))
        if getattr(constraint, "decimal_places", None) is not None:
            places = int(constraint.decimal_places)
    return gt, le, places


def in_column_units(why: Rejection, *, column: Column, cell: str, model: type[Any]) -> Rejection:
    """A quantity refused by decode (out of range, too precise), said again in the unit of
    the clerk's column and quoting the cell as written: ``86000`` in a 面积（万㎡） column is
    "86,000 万㎡ is over one event's bound of 100 万㎡ (1,000,000 ㎡)", not "area_m2 <=
    1000000; got '860000000'". When the figure fits the bound read in the field's own unit
    the message says so (㎡ typed into a 万㎡ column, km into a 米 column).

    Other refusals (a ratio between two fields, not a number at all) come back unchanged.
    """
    name = column.field
    if name is None or why.field != name or name not in BASE_UNIT_LABELS:
        return why
    try:
        typed = Decimal(_number_text(cell))
    except InvalidOperation:
        return why
    if not typed.is_finite():
        return why
    gt, le, places = _bounds(model, name)
    scale, unit, base = column.scale, column.unit_label, BASE_UNIT_LABELS[name]
    value = typed * scale  # in the field's own unit
    in_base = f"（= {_amount(le)} {base}）" if le is not None and scale != 1 else ""
    in_base_en = f" ({_amount(le)} {base})" if le is not None and scale != 1 else ""
    if why.reason == "out_of_range" and le is not None and value > le:
        bound = le / scale
        zh = f"{_amount(typed)} {unit} 超过一个事件的上限 {_amount(bound)} {unit}{in_base}"
        en = f"{_amount(typed)} {unit} is over one event's bound of {_amount(bound)} {unit}"
        en += in_base_en
        if scale > 1 and (gt is None or typed > gt) and typed <= le:
            # The figure fits when read in the field's own unit: typed in ㎡, not 万㎡.
            zh += f"；看起来填的是 {base}：本列单位是 {unit}，请填 {_plain(typed / scale)}"
            en += f"; it looks like {base}: this column is in {unit}, write "
            en += _plain(typed / scale)
        rule = f"{column.header} <= {_amount(bound)} {unit}"
    elif why.reason == "out_of_range" and gt is not None and value <= gt:
        zh = f"{_amount(typed)} {unit} 必须大于 {_amount(gt / scale)} {unit}"
        en = f"{_amount(typed)} {unit} must be greater than {_amount(gt / scale)} {unit}"
        rule = f"{column.header} > {_amount(gt / scale)} {unit}"
    elif why.reason == "too_precise" and places is not None:
        exponent = scale.normalize().as_tuple().exponent
        shift = exponent if isinstance(exponent, int) else 0
        allowed = max(0, places + shift)
        step = f"精确到 1 {unit}" if allowed == 0 else f"最多 {allowed} 位小数"
        step_en = f"whole {unit}" if allowed == 0 else f"at most {allowed} decimal places"
        zh = f"{_amount(typed)} {unit} 过于精确：本列（{unit}）{step}"
        en = f"{_amount(typed)} {unit} is too precise: this column takes {step_en} of {unit}"
        if scale < 1:
            # 1.6 in a 米 column: kilometres typed where metres are asked for?
            meant = typed / scale
            zh += f"；若填的是 {base}，请写 {_plain(meant)}（{unit}）"
            en += f"; if that is {base}, write {_plain(meant)} ({unit})"
        rule = f"{column.header}: {step_en} ({unit})"
    else:
        return why
    return Rejection.build(why.reason, name, quoted(cell), rule=rule, zh=zh, en=en)

"""``citystream import``: a department's spreadsheet ledger (台账) → validated events → Kafka.

Reads CSV (UTF-8 with or without BOM, or a GB18030/GBK export from Excel), XLSX (streamed
with openpyxl's read-only mode) or JSONL (one event object per line); maps the clerk's
Chinese headers (项目名称, 所属街道, 完成日期, 面积（㎡）, …) onto event fields; turns each row
into the event dict and judges it with the real :func:`schemas.validation.decode`; sends the
valid rows through :class:`services.producer.Producer` (topics ``city.<family>.v1``) and
writes every rejected row, with its sheet row number, column, value, reason and bilingual
message, to ``<stem>.rejects.csv`` beside the ledger.

Event ids are ``ledger_event_id(department, normalise_text(source_ref))``: importing the same
ledger again sends the same ids and the sink counts nothing twice. A row without a
reporting date is reported as of its own ``occurred_at``, so the same row always becomes
byte-for-byte the same event (with "now" a re-import would be a different record under a
known id, which the sink dead-letters as ``duplicate_event_id``).

The layers are separate so that tests reach each without a socket: :func:`open_ledger`
(reading), :func:`resolve_columns` (headers → fields), :func:`plan_import` (rows → events
and rejections, no I/O but the file), :func:`send_plan` (anything with ``send``/``flush``),
:func:`write_rejects`; :func:`run_import` wires them to the real producer and prints.

No database is touched. Env: what :class:`services.settings.Settings` reads, in particular
``CITYSTREAM_KAFKA_BOOTSTRAP``, ``CITYSTREAM_TOPIC_NAMESPACE``, ``CITYSTREAM_PRODUCER_TIMEOUT_S``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from schemas.districts import district_code
from schemas.envelope import CST, DEPARTMENTS, Envelope, ledger_event_id
from schemas.fields import normalise_text
from schemas.topics import ALL, BY_EVENT_TYPE, TopicSpec
from schemas.validation import Rejection, decode
from services.settings import Settings

Format = Literal["csv", "xlsx", "jsonl"]

# Exit codes of `citystream import`.
EXIT_OK = 0  # every row sent (or, with --dry-run, every row valid)
EXIT_FAILED = 1  # file-level error: unreadable, unknown columns, Kafka unreachable
EXIT_REJECTED = 2  # some rows rejected; the valid ones were sent

# Sends between two flushes: large enough to keep the producer's 256 KB batches full,
# small enough that a broker that stops answering is noticed within one batch.
SEND_BATCH = 5000

REJECTS_COLUMNS = ("row", "column", "value", "reason", "rule", "message_zh", "message_en")


class LedgerError(Exception):
    """The ledger as a whole cannot be imported; the message says what to do. Nothing sent."""


# --- fields and the headers a clerk writes ---------------------------------------------------

Kind = Literal[
    "text",
    "district",
    "datetime",
    "decimal",
    "count",
    "float",
    "event_type",
    "department",
    "space_kind",
    "school_level",
    "passthrough",
]
UnitKind = Literal["area", "length", "count"]


@dataclass(frozen=True)
class FieldSpec:
    name: str  # event field; "location.lat" for a nested one
    kind: Kind
    aliases: tuple[str, ...] = ()
    units: UnitKind | None = None


def _field(name: str, kind: Kind, aliases: str = "", units: UnitKind | None = None) -> FieldSpec:
    return FieldSpec(name, kind, tuple(aliases.split()), units)


# The headers a clerk writes for each field (the field's own name always works too). They
# are compared after header_key(): width, case, spaces and a trailing (unit) do not matter.
FIELDS: tuple[FieldSpec, ...] = (
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
        "整治完成日期",
    ),
    _field("reported_at", "datetime", "上报日期 报送日期 上报时间 报送时间 填报日期 填报时间"),
    _field("project", "text", "项目名称 项目 工程名称 小区名称 小区 安置区 安置区名称 楼盘"),
    _field("source_ref", "text", "台账编号 编号 单据号 单据编号 台账号 记录编号 流水号"),
    _field(
        "area_m2",
        "decimal",
        "面积 建筑面积 供热面积 新增供热面积 入网面积 并网面积 接入面积 开工面积 竣工面积 "
        "交付面积 area",
        "area",
    ),
    _field("units", "count", "套数 房屋套数 安置房套数", "count"),
    _field("households", "count", "户数 回迁户数 安置户数", "count"),
    _field("persons", "count", "人数 回迁人数 安置人数", "count"),
    _field("places", "count", "学位数 新增学位 新增学位数 学位", "count"),
    _field("level", "school_level", "学段 办学层次"),
    _field("school_name", "text", "学校名称 学校"),
    _field("spaces", "count", "车位数 车位 新增车位 泊位数 泊位", "count"),
    _field("kind", "space_kind", "车位类型 车位性质 泊位类型"),
    _field("lot_name", "text", "停车场名称 停车场"),
    _field("length_km", "decimal", "长度 管网长度 管道长度 铺设长度 管线长度 length", "length"),
    _field("point_name", "text", "点位名称 点位 积水点 积水点名称 易涝点 易涝点名称"),
    _field("location", "passthrough"),
    _field("location.lat", "float", "纬度 lat latitude"),
    _field("location.lon", "float", "经度 lon lng longitude"),
    _field("corrects", "text", "被更正事件 被更正事件id 原事件id"),
    _field("metric", "text", "指标"),
    _field("delta", "decimal", "更正量 调整量 变化量"),
    _field("reason", "text", "更正原因 原因"),
    _field("approved_by", "text", "审批人 批准人"),
)
BY_FIELD: dict[str, FieldSpec] = {spec.name: spec for spec in FIELDS}

# Row serial numbers: every ledger has one, and it means nothing to the platform.
IGNORED_HEADERS: tuple[str, ...] = ("序号", "行号")

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

EVENT_TYPE_NAMES: dict[str, str] = {
    "新开工": "housing.construction_started",
    "开工": "housing.construction_started",
    "竣工交付": "housing.units_completed",
    "竣工": "housing.units_completed",
    "交付": "housing.units_completed",
    "回迁": "housing.households_returned",
    "学校开学": "education.school_opened",
    "开学": "education.school_opened",
    "新建学校": "education.school_opened",
    "新增学位": "education.places_added",
    "供热面积": "heating.area_connected",
    "新增供热面积": "heating.area_connected",
    "供热入网": "heating.area_connected",
    "供热管网": "heating.pipe_laid",
    "铺设管网": "heating.pipe_laid",
    "新增车位": "parking.spaces_opened",
    "新建停车场": "parking.lot_opened",
    "停车场开放": "parking.lot_opened",
    "易涝点整治": "drainage.point_repaired",
    "积水点整治": "drainage.point_repaired",
}

DEPARTMENT_NAMES: dict[str, str] = {
    "安置房": "housing",
    "住建": "housing",
    "住房": "housing",
    "教育": "education",
    "教育局": "education",
    "供热": "heating",
    "供热办": "heating",
    "停车": "parking",
    "停车办": "parking",
    "排水": "drainage",
    "排水防汛": "drainage",
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


_IGNORED_KEYS = frozenset(header_key(h) for h in IGNORED_HEADERS)


@dataclass(frozen=True)
class Column:
    """One column of the ledger and the field it feeds (None: ignored)."""

    index: int
    header: str
    field: str | None
    scale: Decimal = Decimal(1)


@dataclass(frozen=True)
class Match:
    field: str
    scale: Decimal = Decimal(1)


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
    if factor is None:
        known = "、".join(UNITS[spec.units])
        raise LedgerError(
            f"column {header!r} means {name}, but its unit {unit!r} is not one CityStream "
            f"converts ({known}); give the figure in one of those units, or map the column "
            "with --mapping if the unit is already right"
        )
    return Match(name, factor)


def _scale_from_unit(header: str, name: str) -> Decimal:
    """The factor for an explicitly mapped header that also carries a unit, else 1."""
    spec = BY_FIELD[name]
    found = _UNIT_RE.match(header_key(header))
    if spec.units is None or not found:
        return Decimal(1)
    return _UNIT_KEYS[spec.units].get(found["unit"], Decimal(1))


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
            scale = _scale_from_unit(header, name) if name else Decimal(1)
            columns.append(Column(index, header, name, scale))
            continue
        if key in _IGNORED_KEYS:
            columns.append(Column(index, header, None))
            continue
        match = match_header(header)
        if match is None:
            unknown.append(header)
            continue
        columns.append(Column(index, header, match.field, match.scale))
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


# --- reading the file ------------------------------------------------------------------------


@dataclass
class Ledger:
    """An open ledger: its headers and an iterator over (sheet row number, cells).

    For JSONL there are no headers; each row is one line, (line number, [line text]).
    """

    path: Path
    format: Format
    headers: list[str]
    rows: Iterator[tuple[int, Sequence[Any]]]
    header_row: int = 0
    encoding: str | None = None
    sheet: str | None = None
    # Data rows expected (for the progress bar's ETA); None when the file does not say.
    total_hint: int | None = None


ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "gb18030": "GB18030 (GBK, as Excel saves CSV on Chinese Windows)",
}


def detect_encoding(path: Path) -> str:
    """utf-8-sig with a BOM, utf-8 when every byte decodes, else gb18030 (a superset of
    GBK and GB2312); LedgerError when neither reads the file."""
    with path.open("rb") as fh:
        if fh.read(3) == codecs.BOM_UTF8:
            return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise LedgerError(
        f"{path} is neither UTF-8 nor GB18030/GBK text; in Excel use "
        "File → Save As → 'CSV UTF-8 (comma delimited)'"
    )


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _find_header(rows: Iterator[tuple[int, Sequence[Any]]], path: Path) -> tuple[int, list[str]]:
    """The header is the first row with two or more cells filled: a title row above it
    (one merged cell, 2024年供热台账) and blank rows are skipped."""
    for number, cells in rows:
        if sum(not _blank(c) for c in cells) >= 2:
            return number, ["" if c is None else str(c) for c in cells]
        if number >= 20:
            break
    raise LedgerError(
        f"{path}: no header row found in the first 20 rows (a row with the column names, "
        "e.g. 台账编号, 项目名称, 所属街道, 完成日期, 面积（㎡）)"
    )


@contextmanager
def open_ledger(path: Path, *, sheet: str | None = None) -> Iterator[Ledger]:
    if not path.is_file():
        raise LedgerError(f"{path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        with _open_csv(path) as ledger:
            if is_rejects_file(ledger.headers):
                # A rejects file the clerk fixed: our leading columns are not the ledger's.
                skip = len(REJECTS_COLUMNS)
                ledger.headers = ledger.headers[skip:]
                ledger.rows = ((n, cells[skip:]) for n, cells in ledger.rows)
            yield ledger
    elif suffix in (".xlsx", ".xlsm"):
        with _open_xlsx(path, sheet) as ledger:
            yield ledger
    elif suffix in (".jsonl", ".ndjson"):
        with _open_jsonl(path) as ledger:
            yield ledger
    elif suffix in (".xls", ".et", ".ods"):
        raise LedgerError(
            f"{path}: {suffix} workbooks cannot be read; in Excel or WPS save the sheet as "
            ".xlsx or as 'CSV UTF-8'"
        )
    else:
        raise LedgerError(f"{path}: unknown ledger format {suffix!r}; use .csv, .xlsx or .jsonl")


@contextmanager
def _open_csv(path: Path) -> Iterator[Ledger]:
    encoding = detect_encoding(path)
    with path.open(encoding=encoding, newline="") as fh:
        first = fh.readline()
        fh.seek(0)
        delimiter = max(",\t;", key=first.count)
        reader = csv.reader(fh, delimiter=delimiter)

        def rows() -> Iterator[tuple[int, Sequence[Any]]]:
            number = 0
            try:
                for number, cells in enumerate(reader, start=1):
                    yield number, cells
            except csv.Error as exc:
                raise LedgerError(f"{path}, row {number + 1}: not valid CSV ({exc})") from exc

        it = rows()
        header_row, headers = _find_header(it, path)
        yield Ledger(
            path=path,
            format="csv",
            headers=headers,
            rows=it,
            header_row=header_row,
            encoding=encoding,
            total_hint=max(0, _count_lines(path) - header_row),
        )


@contextmanager
def _open_xlsx(path: Path, sheet: str | None) -> Iterator[Ledger]:
    import zipfile

    from openpyxl import load_workbook

    try:
        # read_only streams the sheet's XML row by row; data_only gives a formula's last
        # computed value, as the clerk sees it.
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise LedgerError(
            f"cannot read {path} as an Excel workbook ({type(exc).__name__}: {exc}); "
            "save it again as .xlsx, or as 'CSV UTF-8'"
        ) from exc
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise LedgerError(
                f"{path} has no sheet {sheet!r}; its sheets are {', '.join(workbook.sheetnames)}"
            )
        it: Iterator[tuple[int, Sequence[Any]]] = enumerate(
            worksheet.iter_rows(values_only=True), start=1
        )
        header_row, headers = _find_header(it, path)
        max_row = worksheet.max_row
        yield Ledger(
            path=path,
            format="xlsx",
            headers=headers,
            rows=it,
            header_row=header_row,
            sheet=str(worksheet.title),
            total_hint=max_row - header_row if isinstance(max_row, int) else None,
        )
    finally:
        workbook.close()


@contextmanager
def _open_jsonl(path: Path) -> Iterator[Ledger]:
    try:
        encoding: str | None = detect_encoding(path)
    except LedgerError:
        # JSON Lines are UTF-8 by definition: a line that is not is that line's problem
        # (reported as invalid_utf8), not a reason to refuse the lines beside it.
        encoding = None
    with path.open("rb") as fh:
        rows = (
            (n, [_jsonl_text(raw, encoding, first=n == 1)])
            for n, raw in enumerate(fh, start=1)
            if raw.strip()
        )
        yield Ledger(
            path=path,
            format="jsonl",
            headers=[],
            rows=rows,
            encoding=encoding or "utf-8",
            total_hint=_count_lines(path),
        )


def _jsonl_text(raw: bytes, encoding: str | None, *, first: bool) -> str | bytes:
    """The line as text, or its bytes when they are not UTF-8 (rejected per line)."""
    if first and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode(encoding or "utf-8")
    except UnicodeDecodeError:
        return raw


# --- cells → field values --------------------------------------------------------------------


class CellError(Exception):
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
        Rejection.build("invalid_field", field, _shown(value), rule=_DATE_RULE, zh=zh, en=en)
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
        return _display(value)
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
            _shown(value),
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
    if kind == "department" and isinstance(value, str):
        text = normalise_text(value)
        return DEPARTMENT_NAMES.get(text, text)
    if kind == "event_type" and isinstance(value, str):
        text = normalise_text(value)
        return EVENT_TYPE_NAMES.get(text, text)
    if kind in ("text", "district"):
        return _text_value(value)
    return value


def _display(value: Any) -> str:
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


def _shown(value: Any) -> str:
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


# --- rows → events and rejections ------------------------------------------------------------


@dataclass(frozen=True)
class RowRejection:
    row: int  # sheet row number (CSV record, JSONL line), the header being row 1
    column: str  # the ledger's own header for the offending field ("" for the whole row)
    value: str  # the cell as written
    reason: str
    rule: str
    message_zh: str
    message_en: str
    cells: tuple[str, ...]  # the original row

    @classmethod
    def of(
        cls, row: int, rejection: Rejection, *, column: str, value: str, cells: tuple[str, ...]
    ) -> RowRejection:
        zh, en = rejection.message_zh, rejection.message_en
        if column and rejection.field and column != rejection.field:
            # Name the column as the clerk wrote it: 所属街道：… rather than district：…
            zh = zh.replace(f"{rejection.field}：", f"{column}：", 1)
            en = en.replace(f"{rejection.field}: ", f"{column} ({rejection.field}): ", 1)
        return cls(
            row=row,
            column=column,
            value=value if value else (rejection.value or ""),
            reason=rejection.reason,
            rule=rejection.rule,
            message_zh=zh,
            message_en=en,
            cells=cells,
        )


@dataclass(slots=True)
class _Entry:
    """The first valid row with one event id, and the rows that repeat that id."""

    row: int
    event_type: str
    raw: bytes  # the event dict decode accepted; decoded again when sent
    cells: str  # the row's cells joined by \x1f (for the rejects file on a conflict)
    repeats: list[tuple[int, str, bool]] = field(default_factory=list)  # row, cells, identical
    conflict: bool = False


@dataclass
class Plan:
    """What validating a ledger found: the events to send and the rows rejected."""

    ledger_format: Format
    headers: list[str]
    rows_read: int = 0
    rejected: list[RowRejection] = field(default_factory=list)
    duplicates: int = 0  # identical repeats of a row, sent once
    # event id → entry; insertion order is the ledger's order.
    entries: dict[str, _Entry] = field(default_factory=dict)
    column_of: dict[str, str] = field(default_factory=dict)  # field → the ledger's header
    ref_column: str | None = None  # the ledger's reference column, if it has one
    id_column: str | None = None
    event_type: str | None = None  # inferred from the columns (no --type, no 事件类型)
    derived_refs: int = 0  # rows whose source_ref is file name + hash of their values
    reported_defaulted: int = 0  # rows without reported_at: reported as of occurred_at
    ignored: list[str] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_send(self) -> list[_Entry]:
        return [entry for entry in self.entries.values() if not entry.conflict]

    @property
    def valid(self) -> int:
        return len(self.to_send())


@dataclass(frozen=True)
class Options:
    event_type: str | None = None
    department: str | None = None
    mapping: Mapping[str, str | None] | None = None


def check_options(options: Options) -> None:
    if options.event_type is not None and options.event_type not in BY_EVENT_TYPE:
        known = ", ".join(t for t in BY_EVENT_TYPE if not t.endswith(".correction"))
        raise LedgerError(
            f"unknown event type {options.event_type!r} for --type; use one of {known}"
        )
    if options.department is not None:
        if options.department not in DEPARTMENTS:
            raise LedgerError(
                f"unknown department {options.department!r}; use one of {', '.join(DEPARTMENTS)}"
            )
        if options.event_type is not None:
            spec = BY_EVENT_TYPE[options.event_type]
            if options.department not in spec.departments:
                allowed = ", ".join(sorted(spec.departments))
                raise LedgerError(
                    f"department {options.department} may not send {options.event_type}; "
                    f"only {allowed} does"
                )


def ledger_stem(path: Path) -> str:
    """The ledger's name for derived references; a rejects file counts as its ledger."""
    return path.stem.removesuffix(".rejects")


@dataclass(frozen=True)
class Layout:
    """How a ledger's columns feed events: the columns, and the options in effect (with
    the event type inferred from the columns when only one type fits them)."""

    columns: list[Column]
    options: Options
    inferred_type: bool = False


# What the importer fills in itself, or what every event type has.
_ENVELOPE_FIELDS = frozenset(Envelope.model_fields) | {"event_type"}


def infer_event_type(columns: Iterable[Column]) -> list[str]:
    """The event types (corrections aside) whose fields cover the columns and whose
    required fields all have a column."""
    fields = {c.field for c in columns if c.field} - _ENVELOPE_FIELDS
    fits = []
    for event_type, spec in BY_EVENT_TYPE.items():
        model = spec.by_type[event_type]
        if event_type.endswith(".correction"):
            continue
        own = model_fields([model]) - _ENVELOPE_FIELDS
        required = {
            name
            for name, info in model.model_fields.items()
            if info.is_required() and name not in _ENVELOPE_FIELDS
        }
        if fields <= own and required <= fields | ({"location"} & fields):
            fits.append(event_type)
    return fits


def ledger_columns(ledger: Ledger, options: Options) -> Layout:
    """The columns of a tabular ledger, checked against the event type(s) it may hold.

    Raises LedgerError (unknown column, two columns for one field, no event type) before
    any row is read; a JSONL ledger has no header (its keys are checked line by line).
    """
    check_options(options)
    if ledger.format == "jsonl":
        return Layout([], options)
    if options.event_type is None:
        allowed = model_fields(m for spec in ALL for m in spec.models) | {"event_type"}
    else:
        spec = BY_EVENT_TYPE[options.event_type]
        # A 事件类型 column agreeing with --type is harmless; rows of another type are
        # judged by decode like any row.
        allowed = model_fields([spec.by_type[options.event_type]]) | {"event_type"}
    what = options.event_type or "any event type"
    columns = resolve_columns(ledger.headers, allowed=allowed, mapping=options.mapping, what=what)
    if options.event_type is None and not any(c.field == "event_type" for c in columns):
        fits = infer_event_type(columns)
        if len(fits) == 1:
            inferred = Options(fits[0], options.department, options.mapping)
            check_options(inferred)
            return Layout(columns, inferred, inferred_type=True)
        which = f"one of {', '.join(fits)}" if fits else "e.g. heating.area_connected"
        raise LedgerError(
            f"{ledger.path} has no 事件类型 (event_type) column and its columns fit "
            f"{'several event types' if fits else 'no single event type'}: pass --type, {which}"
        )
    return Layout(columns, options)


def plan_import(
    ledger: Ledger,
    options: Options,
    *,
    layout: Layout | None = None,
    now: datetime | None = None,
    advance: Callable[[int], None] | None = None,
) -> Plan:
    """Read every row, build its event and judge it with decode; find repeated references.

    Opens no socket. File-level problems raise LedgerError before the first row is read.
    """
    if layout is None:
        layout = ledger_columns(ledger, options)
    options, columns = layout.options, layout.columns
    plan = Plan(ledger_format=ledger.format, headers=ledger.headers)
    if now is not None:
        plan.now = now
    plan.event_type = options.event_type if layout.inferred_type else None
    plan.column_of = {c.field: c.header for c in columns if c.field}
    plan.ref_column = plan.column_of.get("source_ref")
    plan.id_column = plan.column_of.get("event_id")
    plan.ignored = [c.header for c in columns if c.field is None and c.header]
    tabular = ledger.format != "jsonl"
    stem = ledger_stem(ledger.path)
    pending = 0
    key_cache: dict[str, Match | None] = {}
    for number, cells in ledger.rows:
        pending += 1
        if pending >= 256 and advance:
            advance(pending)
            pending = 0
        if not tabular:
            plan.rows_read += 1
            _plan_json_row(plan, number, cells[0], options, stem, key_cache)
        elif not all(_blank(c) for c in cells):
            plan.rows_read += 1
            _plan_row(plan, number, cells, columns, options, stem)
    if advance and pending:
        advance(pending)
    _settle_repeats(plan)
    return plan


def _plan_row(
    plan: Plan,
    number: int,
    cells: Sequence[Any],
    columns: list[Column],
    options: Options,
    stem: str,
) -> None:
    values: dict[str, Any] = {}
    shown: dict[str, str] = {}
    cell_texts = tuple(_display(c) for c in cells)
    for index in range(len(columns), len(cells)):
        if not _blank(cells[index]):  # typed to the right of the last header
            _reject_unnamed(plan, number, index, cells[index], cell_texts)
            return
    for column in columns:
        value = cells[column.index] if column.index < len(cells) else None
        if _blank(value):
            continue
        if column.field is None:
            if not column.header:
                _reject_unnamed(plan, number, column.index, value, cell_texts)
                return
            continue
        try:
            values[column.field] = convert(BY_FIELD[column.field], value, column.scale)
        except CellError as exc:
            _reject_row(
                plan,
                number,
                exc.rejection,
                column=column.header,
                value=_display(value),
                cells=cell_texts,
            )
            return
        shown[column.field] = _display(value)
    _judge(plan, number, values, plan.column_of, shown, cell_texts, options, stem)


def _reject_unnamed(
    plan: Plan, number: int, index: int, value: Any, cells: tuple[str, ...]
) -> None:
    letter = _column_letter(index)
    why = Rejection.build(
        "unknown_field",
        None,
        _shown(value),
        rule="every filled cell is under a named column",
        zh=f"第 {letter} 列没有列名却有内容；请补上列名或删除该内容",
        en=f"column {letter} has a value but no header; name the column or clear the cell",
    )
    _reject_row(plan, number, why, column=letter, value=_display(value), cells=cells)


def _plan_json_row(
    plan: Plan,
    number: int,
    line: str | bytes,
    options: Options,
    stem: str,
    key_cache: dict[str, Match | None],
) -> None:
    if isinstance(line, bytes):
        printable = line.rstrip(b"\r\n").decode("utf-8", errors="backslashreplace")
        why = Rejection.build(
            "invalid_utf8",
            None,
            _shown(printable),
            rule="UTF-8 (JSON Lines are UTF-8)",
            zh="这一行不是 UTF-8 编码",
            en="this line is not UTF-8",
        )
        _reject_row(plan, number, why, column="", value="", cells=(printable,))
        return
    cells = (line.rstrip("\r\n"),)
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        why = Rejection.build(
            "invalid_json",
            None,
            _shown(line.strip()),
            rule="one JSON object per line",
            zh=f"不是有效的 JSON：{exc.msg}",
            en=f"not valid JSON: {exc.msg}",
        )
        _reject_row(plan, number, why, column="", value="", cells=cells)
        return
    if not isinstance(data, dict):
        why = Rejection.build(
            "not_an_object",
            None,
            _shown(data),
            rule="one JSON object per line",
            zh="每行必须是一个 JSON 对象",
            en="each line must be one JSON object",
        )
        _reject_row(plan, number, why, column="", value="", cells=cells)
        return
    values: dict[str, Any] = {}
    headers: dict[str, str] = {}
    shown: dict[str, str] = {}
    for key, value in data.items():
        hkey = header_key(key)
        if options.mapping and hkey in options.mapping:
            name = options.mapping[hkey]
            if name is None:
                continue
            match: Match | None = Match(name, _scale_from_unit(key, name))
        else:
            if hkey not in key_cache:
                try:
                    key_cache[hkey] = match_header(key)
                except LedgerError:
                    key_cache[hkey] = None
            match = key_cache[hkey]
        if match is None:
            why = Rejection.build(
                "unknown_field",
                key,
                None,
                rule="keys are event fields or known ledger headers",
                zh="不是事件字段；如为其他名称请用 --mapping 指定",
                en="is not an event field; map it with --mapping",
            )
            _reject_row(plan, number, why, column=key, value=_display(value), cells=cells)
            return
        if value is None:
            continue
        try:
            values[match.field] = convert(BY_FIELD[match.field], value, match.scale)
        except CellError as exc:
            _reject_row(plan, number, exc.rejection, column=key, value=_display(value), cells=cells)
            return
        headers[match.field] = key
        shown[match.field] = _display(value) if not isinstance(value, dict | list) else ""
    _judge(plan, number, values, headers, shown, cells, options, stem)


def _judge(
    plan: Plan,
    number: int,
    values: dict[str, Any],
    headers: dict[str, str],
    shown: dict[str, str],
    cells: tuple[str, ...],
    options: Options,
    stem: str,
) -> None:
    """Complete the event dict (type, department, id, reported_at) and decode it."""
    event_type = values.get("event_type") or options.event_type
    spec = BY_EVENT_TYPE.get(event_type) if isinstance(event_type, str) else None
    if spec is None:
        known = ", ".join(t for t in BY_EVENT_TYPE if not t.endswith(".correction"))
        why = Rejection.build(
            "unknown_event_type" if event_type else "missing_field",
            "event_type",
            _shown(event_type) if event_type else None,
            rule=f"one of {known}",
            zh=f"事件类型应为 {known} 之一" + ("" if event_type else "（或使用 --type）"),
            en=f"use one of {known}" + ("" if event_type else " (or pass --type)"),
        )
        column = headers.get("event_type", "")
        _reject_row(
            plan, number, why, column=column, value=shown.get("event_type", ""), cells=cells
        )
        return
    values["event_type"] = event_type
    if not values.get("department"):
        values["department"] = options.department or sorted(spec.departments)[0]
    department = values["department"]

    if "event_id" not in values:
        if plan.ref_column is not None or "source_ref" in values:
            ref = values.get("source_ref")
            if not isinstance(ref, str) or not normalise_text(ref):
                why = Rejection.build(
                    "missing_field",
                    "source_ref",
                    None,
                    rule="every row has a ledger reference",
                    zh="台账编号为空；每一行都需要编号（用于生成事件 ID、防止重复计数）",
                    en="the ledger reference is empty; every row needs one (it makes the "
                    "event id, so re-imports count nothing twice)",
                )
                column = plan.ref_column or "source_ref"
                _reject_row(plan, number, why, column=column, value="", cells=cells)
                return
            ref = normalise_text(ref)
        else:
            ref = derived_ref(stem, values)
            plan.derived_refs += 1
        values["source_ref"] = ref
        values["event_id"] = str(ledger_event_id(str(department), ref))
    if "reported_at" not in values and isinstance(values.get("occurred_at"), str):
        values["reported_at"] = values["occurred_at"]
        plan.reported_defaulted += 1
    # Flat 纬度/经度 cells form the nested location object.
    lat, lon = values.pop("location.lat", None), values.pop("location.lon", None)
    if lat is not None or lon is not None:
        values["location"] = {"lat": lat, "lon": lon}

    raw = orjson.dumps(values)
    outcome = decode(spec, raw, now=plan.now)
    if isinstance(outcome, Rejection):
        name = outcome.field or ""
        column = headers.get(name) or headers.get(name.partition(".")[0], "")
        if not column and name == "department" and options.department:
            column = "--department"
        value = shown.get(name) or shown.get(name.partition(".")[0], "")
        _reject_row(plan, number, outcome, column=column, value=value, cells=cells)
        return
    key = str(outcome.event_id)
    entry = plan.entries.get(key)
    if entry is None:
        # A copy: orjson's result keeps its 4 KiB buffer, 10x the event, for 100k rows.
        compact = memoryview(raw).tobytes()
        plan.entries[key] = _Entry(number, outcome.event_type_name, compact, "\x1f".join(cells))
        return
    first = decode(BY_EVENT_TYPE[entry.event_type], entry.raw, now=plan.now)
    identical = first == outcome
    entry.repeats.append((number, "\x1f".join(cells), identical))
    if not identical:
        entry.conflict = True


def _settle_repeats(plan: Plan) -> None:
    """Identical repeats are duplicates (sent once); one differing row makes every row
    with that reference a conflict: which of them is right only the clerk knows."""
    for entry in plan.entries.values():
        if not entry.repeats:
            continue
        if not entry.conflict:
            plan.duplicates += len(entry.repeats)
            continue
        rows = [(entry.row, entry.cells), *((r, c) for r, c, _ in entry.repeats)]
        numbers = "、".join(str(r) for r, _ in rows)
        numbers_en = ", ".join(str(r) for r, _ in rows)
        event = orjson.loads(entry.raw)
        ref = str(event.get("source_ref", ""))
        column = plan.ref_column or plan.id_column or "source_ref"
        why = Rejection.build(
            "duplicate_source_ref",
            "source_ref",
            _shown(ref),
            rule="one reference, one content",
            zh=f"第 {numbers} 行编号相同但内容不同；请更正编号或删除多余的行",
            en=f"rows {numbers_en} share this reference with different content; "
            "fix the reference or remove the extra rows",
        )
        for row, cells in rows:
            plan.rejected.append(
                RowRejection.of(
                    row, why, column=column, value=ref, cells=tuple(cells.split("\x1f"))
                )
            )
    plan.rejected.sort(key=lambda r: r.row)


def _reject_row(
    plan: Plan,
    number: int,
    rejection: Rejection,
    *,
    column: str,
    value: str,
    cells: tuple[str, ...],
) -> None:
    plan.rejected.append(
        RowRejection.of(number, rejection, column=column, value=value, cells=cells)
    )


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


# --- sending ---------------------------------------------------------------------------------


class EventSink(Protocol):
    """What :func:`send_plan` needs of :class:`services.producer.Producer`."""

    def send(self, event: Envelope) -> Any: ...

    def flush(self) -> None: ...


def _delivery_failure(entry: _Entry, message: str) -> RowRejection:
    why = Rejection.build(
        "delivery_failed",
        None,
        None,
        rule="Kafka acknowledges every event",
        zh=f"未送达 Kafka（{message}）；请稍后重新导入同一台账，已送达的行不会重复计数",
        en=f"not delivered to Kafka ({message}); import the same ledger again later, "
        "rows already delivered count once",
    )
    return RowRejection.of(
        entry.row, why, column="", value="", cells=tuple(entry.cells.split("\x1f"))
    )


def send_plan(
    plan: Plan,
    producer: EventSink,
    *,
    batch_size: int = SEND_BATCH,
    advance: Callable[[int], None] | None = None,
) -> tuple[int, list[RowRejection]]:
    """Send every valid row; return (acknowledged, rows not delivered).

    Batches of ``batch_size`` are flushed and every acknowledgement checked, so each row
    that did not reach Kafka is reported by number. After a failed flush the rest are not
    tried: the broker is not answering, and each try would wait for the full timeout.
    """
    from services.producer import DeliveryError

    entries = plan.to_send()
    sent = 0
    failed: list[RowRejection] = []
    for start in range(0, len(entries), batch_size):
        batch = entries[start : start + batch_size]
        futures: list[tuple[_Entry, Any]] = []
        broken: str | None = None
        for n, entry in enumerate(batch, start=1):
            if advance and n % 500 == 0:
                advance(500)
            event = decode(BY_EVENT_TYPE[entry.event_type], entry.raw, now=plan.now)
            if isinstance(event, Rejection):  # decoded the same bytes a moment ago
                raise AssertionError(f"row {entry.row} decoded differently: {event.message}")
            try:
                futures.append((entry, producer.send(event)))
            except Exception as exc:  # a client error is this row's failure, not a crash
                broken = f"{type(exc).__name__}: {exc}"
                failed.append(_delivery_failure(entry, broken))
                break
        try:
            producer.flush()
        except DeliveryError as exc:
            broken = broken or str(exc)
        for entry, future in futures:
            if getattr(future, "is_done", True) and not future.failed():
                sent += 1
            else:
                reason = future.exception if future.is_done else "no acknowledgement in time"
                failed.append(_delivery_failure(entry, str(reason)))
                broken = broken or str(reason)
        if advance:
            advance(len(batch) % 500)
        if broken is not None:
            done = {f.row for f in failed} | {e.row for e, _ in futures}
            for entry in entries[start:]:
                if entry.row not in done:
                    failed.append(_delivery_failure(entry, f"not tried after: {broken}"))
            break
    failed.sort(key=lambda r: r.row)
    return sent, failed


# --- reporting -------------------------------------------------------------------------------


def default_rejects_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.rejects.csv")


def write_rejects(path: Path, headers: Sequence[str], rejected: Iterable[RowRejection]) -> int:
    """UTF-8 with BOM, so that Excel shows the Chinese; our columns, then the ledger's.

    The leading columns are ignored when the file is imported again, so a clerk can fix
    the rows in place and import the rejects file itself.
    """
    original = list(headers) or ["line"]
    count = 0
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*REJECTS_COLUMNS, *original])
        for r in rejected:
            writer.writerow(
                [r.row, r.column, r.value, r.reason, r.rule, r.message_zh, r.message_en, *r.cells]
            )
            count += 1
    return count


def is_rejects_file(headers: Sequence[str]) -> bool:
    return tuple(h.strip() for h in headers[: len(REJECTS_COLUMNS)]) == REJECTS_COLUMNS


class _RateColumn(ProgressColumn):
    """Rows per second since the task started (rich's own speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished_time is not None else task.elapsed
        rate = f"{task.completed / elapsed:,.0f}" if elapsed and task.completed else "–"
        return Text(f"{rate} rows/s", style="progress.data.speed")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )


@dataclass
class ImportReport:
    path: Path
    rows_read: int = 0
    sent: int = 0
    valid: int = 0
    duplicates: int = 0
    rejected: list[RowRejection] = field(default_factory=list)
    rejects_path: Path | None = None
    seconds: float = 0.0
    exit_code: int = EXIT_OK

    @property
    def by_reason(self) -> Counter[str]:
        return Counter(r.reason for r in self.rejected)


@dataclass(frozen=True)
class ImportRequest:
    path: Path
    event_type: str | None = None
    department: str | None = None
    mapping_path: Path | None = None
    sheet: str | None = None
    dry_run: bool = False
    rejects_path: Path | None = None


def run_import(request: ImportRequest, settings: Settings, console: Console) -> ImportReport:
    """The whole import as `citystream import` runs it.

    Order: the ledger's header (unknown columns fail here, before anything else), the
    broker, every row validated, the topics, then the valid rows sent; the rejects file
    and the summary last. Raises LedgerError for a file-level problem, with nothing sent.
    """
    from services.producer import DeliveryError, Producer, end_offsets

    started = time.monotonic()
    rejects_path = request.rejects_path or default_rejects_path(request.path)
    if rejects_path.resolve() == request.path.resolve():
        raise LedgerError(f"--rejects {rejects_path} would overwrite the ledger itself")
    mapping = read_mapping(request.mapping_path) if request.mapping_path else None
    # The department is who authenticates to Kafka, not what a clerk types: see sender().
    department = request.department if request.dry_run else sender(request, settings)
    options = Options(request.event_type, department, mapping)
    report = ImportReport(path=request.path)
    with open_ledger(request.path, sheet=request.sheet) as ledger:
        _describe(console, ledger)
        layout = ledger_columns(ledger, options)
        if department is not None:
            _log_in(settings, department)
        with _progress(console) as progress:
            task = progress.add_task("validating", total=ledger.total_hint)
            plan = plan_import(
                ledger, options, layout=layout, advance=lambda n: progress.advance(task, n)
            )
            progress.update(task, total=plan.rows_read, completed=plan.rows_read)
            if plan.rows_read == 0:
                raise LedgerError(f"{request.path} has no rows under its header")
            report.rows_read, report.valid = plan.rows_read, plan.valid
            report.duplicates = plan.duplicates
            report.rejected = list(plan.rejected)
            if not request.dry_run and plan.valid:
                specs = sorted({BY_EVENT_TYPE[e.event_type] for e in plan.to_send()}, key=str)
                # Without a department named or implied, each family's rows are sent as the
                # department that owns it (the local stack holds every department's password).
                senders = [department] if department else sorted({_owner(s) for s in specs})
                for name in senders:
                    if name != department:
                        _log_in(settings, name)
                for spec in specs:
                    owner = department or _owner(spec)
                    if not end_offsets(settings, spec.name, principal=owner):
                        raise LedgerError(
                            f"Kafka has no topic {settings.topic_name(spec.name)}; nothing was "
                            "sent. Create the topics with 'citystream topics', then import again"
                        )
                try:
                    producer = Producer(settings, department=department)
                except DeliveryError as exc:
                    raise LedgerError(f"{exc}; nothing was sent") from exc
                send_task = progress.add_task("sending", total=plan.valid)
                try:
                    report.sent, failed = send_plan(
                        plan, producer, advance=lambda n: progress.advance(send_task, n)
                    )
                finally:
                    producer.close()
                report.rejected = sorted([*report.rejected, *failed], key=lambda r: r.row)
    report.seconds = time.monotonic() - started
    if any(r.reason == "delivery_failed" for r in report.rejected):
        report.exit_code = EXIT_FAILED
    elif report.rejected:
        report.exit_code = EXIT_REJECTED
    if report.rejected:
        write_rejects(rejects_path, ledger.headers, report.rejected)
        report.rejects_path = rejects_path
    elif rejects_path.exists() and _is_our_rejects(rejects_path):
        rejects_path.unlink()  # left by an earlier import of this ledger; all fixed now
    _summary(console, request, plan, report)
    return report


def _owner(spec: TopicSpec) -> str:
    return sorted(spec.departments)[0]


def sender(request: ImportRequest, settings: Settings) -> str | None:
    """The department this import authenticates to Kafka as, when it is decided before the
    rows are read: ``--department`` (only one whose Kafka password this process holds), the
    owner of ``--type``'s family, or the only department whose password it holds (a
    department's own machine). None: several are held (the local stack) and the ledger's
    rows decide — each family's rows then go as the department that owns it.

    Every row's ``department`` must then be this department (the worker refuses any other),
    so ``--department`` no longer chooses who a ledger claims to come from: it must match
    the credentials.
    """
    from services.settings import password_variable

    held = [d for d in DEPARTMENTS if settings.has_kafka_credentials(d)]
    wanted = request.department
    if wanted is None and request.event_type in BY_EVENT_TYPE:
        wanted = _owner(BY_EVENT_TYPE[request.event_type])
    if wanted is None:
        if not held:
            raise LedgerError(
                "this process holds no department's Kafka credentials: a ledger is sent "
                "with its department's own (set CITYSTREAM_KAFKA_<DEPARTMENT>_PASSWORD, e.g. "
                f"{password_variable('heating')})"
            )
        return held[0] if len(held) == 1 else None
    if wanted not in DEPARTMENTS:
        return wanted  # check_options names the valid ones
    if wanted not in held:
        named = "--department" if request.department else f"--type {request.event_type}"
        raise LedgerError(
            f"{named}: this import would send as department {wanted}, but this process holds "
            f"no Kafka credentials for {wanted} ({password_variable(wanted)}"
            + (f"; it holds {', '.join(held)}'s" if held else "")
            + "): the department is who authenticates, a ledger cannot be sent as another"
        )
    return wanted


def _log_in(settings: Settings, department: str) -> None:
    """Fail before reading the rows when Kafka cannot be reached or refuses the password."""
    from services.producer import KafkaAuthenticationError, wait_for_broker

    try:
        wait_for_broker(
            settings, principal=department, timeout_s=min(10.0, settings.producer_timeout_s)
        )
    except KafkaAuthenticationError as exc:
        raise LedgerError(f"{exc}; nothing was sent") from exc
    except TimeoutError as exc:
        raise LedgerError(
            f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}); nothing was "
            "sent. Start the local stack with 'citystream stack up' or set "
            "CITYSTREAM_KAFKA_BOOTSTRAP to the broker's address, then import again "
            "(--dry-run checks the ledger without Kafka)"
        ) from exc


def _is_our_rejects(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return is_rejects_file(next(csv.reader(fh), []))
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def _describe(console: Console, ledger: Ledger) -> None:
    parts = [f"[bold]{ledger.path}[/]", ledger.format.upper()]
    if ledger.sheet:
        parts.append(f"sheet {ledger.sheet!r}")
    if ledger.encoding:
        parts.append(f"encoding {ENCODING_NAMES.get(ledger.encoding, ledger.encoding)}")
    if ledger.header_row:
        parts.append(f"header on row {ledger.header_row}")
    console.print(", ".join(parts))


def _summary(console: Console, request: ImportRequest, plan: Plan, report: ImportReport) -> None:
    table = Table(title="导入结果 Import summary", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_column("note")
    table.add_row("rows read 读取行数", f"{report.rows_read:,}", "")
    if request.dry_run:
        table.add_row("valid 有效", f"{report.valid:,}", "dry run: nothing sent")
    else:
        table.add_row("sent 已发送", f"{report.sent:,}", "acknowledged by Kafka")
    rejected_rows = len({r.row for r in report.rejected})
    table.add_row("rejected 拒收", f"{rejected_rows:,}", "")
    for reason, n in sorted(report.by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(f"  {reason}", f"{n:,}", "")
    table.add_row("duplicates 重复行", f"{report.duplicates:,}", "identical rows, sent once")
    if plan.event_type:
        table.add_row(
            "event type 事件类型", "", f"{plan.event_type} (the only type the columns fit)"
        )
    if plan.id_column:
        ids = f"from the column {plan.id_column}"
    elif plan.ref_column:
        ids = f"department + {plan.ref_column}: importing again counts nothing twice"
    else:
        ids = "department + source_ref: importing again counts nothing twice"
    if plan.derived_refs:
        ids += (
            f"; {plan.derived_refs:,} rows have no reference, their source_ref is the file "
            f"name + a hash of the row's values ({ledger_stem(request.path)}#…): import them "
            "again under the same file name"
        )
    table.add_row("event ids 事件ID", "", ids)
    if plan.reported_defaulted:
        table.add_row(
            "reported_at 上报日期",
            f"{plan.reported_defaulted:,}",
            "rows without one: reported as of their own date (occurred_at)",
        )
    if plan.ignored:
        table.add_row("ignored 忽略列", "", "、".join(plan.ignored))
    if report.rejects_path:
        table.add_row("rejects 拒收明细", "", str(report.rejects_path))
    rate = report.rows_read / report.seconds if report.seconds else 0.0
    table.add_row("time 用时", f"{report.seconds:.1f} s", f"{rate:,.0f} rows/s")
    console.print(table)

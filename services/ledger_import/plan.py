"""Stage 4, plan: every row → its event, judged with the pipeline's own
:func:`schemas.validation.decode`, or a rejection naming the row, column, value and reason.
Event ids come from the department and the row's reference, so importing again counts
nothing twice; repeated references are settled here. Opens no socket.

Total and subtotal rows never become events: they are skipped and reported with their row
number (:mod:`services.ledger_import.totals` says how they are recognised).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from schemas.envelope import ledger_event_id
from schemas.fields import normalise_text
from schemas.rejections import Rejection
from schemas.topics import BY_EVENT_TYPE
from schemas.validation import decode
from services.ledger_import.base import LedgerError, RowRejection
from services.ledger_import.cells import (
    EVENT_TYPE_NAMES,
    CellError,
    convert,
    derived_ref,
    display,
    in_column_units,
    quoted,
)
from services.ledger_import.files import Format, Ledger, blank, ledger_stem
from services.ledger_import.headers import (
    BY_FIELD,
    Column,
    Match,
    header_key,
    match_header,
    scale_from_unit,
)
from services.ledger_import.layout import Layout, Options, column_letter, ledger_columns
from services.ledger_import.totals import (
    AMOUNT_FIELDS,
    TOTAL_WORDS_RE,
    SkippedTotal,
    Sums,
    sum_row,
)

# What became of a valid row once compared with what the ledger holds (stage state).
Status = Literal["new", "unchanged", "changed", "correction"]


@dataclass(slots=True)
class Entry:
    """The first valid row with one event id, and the rows that repeat that id."""

    row: int
    event_type: str
    raw: bytes  # the event dict decode accepted; decoded again when sent
    cells: str  # the row's cells joined by \x1f (for the rejects file on a conflict)
    repeats: list[tuple[int, str, bool]] = field(default_factory=list)  # row, cells, identical
    conflict: bool = False
    department: str = ""
    event_id: str = ""
    # new: send it; unchanged: the ledger holds it as it is; changed: the ledger holds it
    # with other figures (refused, or replaced by its corrections); correction: sent for
    # a changed row.
    status: Status = "new"
    # Where Kafka put it (topic, partition, offset), once sent.
    position: tuple[str, int, int] | None = None


@dataclass
class Plan:
    """What validating a ledger found: the events to send and the rows rejected."""

    ledger_format: Format
    headers: list[str]
    rows_read: int = 0
    rejected: list[RowRejection] = field(default_factory=list)
    duplicates: int = 0  # identical repeats of a row, sent once
    # event id → entry; insertion order is the ledger's order.
    entries: dict[str, Entry] = field(default_factory=dict)
    column_of: dict[str, str] = field(default_factory=dict)  # field → the ledger's header
    columns: dict[str, Column] = field(default_factory=dict)  # field → its column
    ref_column: str | None = None  # the ledger's reference column, if it has one
    id_column: str | None = None
    event_type: str | None = None  # inferred from the columns (no --type, no 事件类型)
    derived_refs: int = 0  # rows whose source_ref is file name + hash of their values
    reported_defaulted: int = 0  # rows without reported_at: reported as of occurred_at
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # the notes columns' headers
    noted_rows: int = 0  # rows with something in a notes column
    totals: list[SkippedTotal] = field(default_factory=list)
    header_rows: tuple[int, ...] = ()
    # Corrections the state stage made of changed rows (sent beside the new rows), and
    # what each says: (row, "入网面积（万㎡） 1.85 万㎡ → 1.92 万㎡ (+0.07 万㎡)").
    corrections: list[Entry] = field(default_factory=list)
    correction_notes: list[tuple[int, str]] = field(default_factory=list)
    compared: bool = False  # compared with what the ledger holds (stage state)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    sums: Sums = field(default_factory=Sums, repr=False)

    def to_send(self) -> list[Entry]:
        new = [e for e in self.entries.values() if not e.conflict and e.status == "new"]
        return new + self.corrections if self.corrections else new

    @property
    def valid(self) -> int:
        """Valid rows (each repeated reference once)."""
        return sum(1 for entry in self.entries.values() if not entry.conflict)

    def with_status(self, status: Status) -> list[Entry]:
        return [e for e in self.entries.values() if not e.conflict and e.status == status]


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
    plan.columns = {c.field: c for c in columns if c.field}
    plan.ref_column = plan.column_of.get("source_ref")
    plan.id_column = plan.column_of.get("event_id")
    plan.ignored = [c.header for c in columns if c.field is None and c.header and not c.note]
    plan.notes = [c.header for c in columns if c.note]
    plan.header_rows = ledger.header_rows
    plan.sums.fields = tuple(name for name in AMOUNT_FIELDS if name in plan.columns)
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
        elif not all(blank(c) for c in cells):
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
    for index, cell in enumerate(cells):
        # The one scan every row gets: cheap, and before anything else, so that a total
        # row with empty cells is skipped rather than refused.
        # An event type's own name (累计回迁率, the cumulative move-back rate) is data.
        if (
            type(cell) is str
            and TOTAL_WORDS_RE.search(cell)
            and normalise_text(cell) not in EVENT_TYPE_NAMES
        ):
            header = columns[index].header if index < len(columns) else ""
            plan.totals.append(SkippedTotal(number, cell.strip(), header or column_letter(index)))
            plan.sums.new_section()
            return
    cell_texts = tuple(display(c) for c in cells)
    for index in range(len(columns), len(cells)):
        if not blank(cells[index]):  # typed to the right of the last header
            _reject_unnamed(plan, number, index, cells[index], cell_texts)
            return
    noted = False
    for column in columns:
        value = cells[column.index] if column.index < len(cells) else None
        if blank(value):
            continue
        if column.field is None:
            if not column.header:
                _reject_unnamed(plan, number, column.index, value, cell_texts)
                return
            noted = noted or column.note
            continue
        try:
            values[column.field] = convert(BY_FIELD[column.field], value, column.scale)
        except CellError as exc:
            _reject_row(
                plan,
                number,
                exc.rejection,
                column=column.header,
                value=display(value),
                cells=cell_texts,
            )
            return
        shown[column.field] = display(value)
    if noted:
        plan.noted_rows += 1
    total = sum_row(plan.sums, number, values, shown, plan.column_of)
    if total is not None:
        plan.totals.append(total)
        return
    _judge(plan, number, values, plan.column_of, shown, cell_texts, options, stem)


def _reject_unnamed(
    plan: Plan, number: int, index: int, value: Any, cells: tuple[str, ...]
) -> None:
    letter = column_letter(index)
    why = Rejection.build(
        "unknown_field",
        None,
        quoted(value),
        rule="every filled cell is under a named column",
        zh=f"第 {letter} 列没有列名却有内容；请补上列名或删除该内容",
        en=f"column {letter} has a value but no header; name the column or clear the cell",
    )
    _reject_row(plan, number, why, column=letter, value=display(value), cells=cells)


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
            quoted(printable),
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
            quoted(line.strip()),
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
            quoted(data),
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
            match: Match | None = Match(name, scale_from_unit(key, name))
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
            _reject_row(plan, number, why, column=key, value=display(value), cells=cells)
            return
        if value is None:
            continue
        try:
            values[match.field] = convert(BY_FIELD[match.field], value, match.scale)
        except CellError as exc:
            _reject_row(plan, number, exc.rejection, column=key, value=display(value), cells=cells)
            return
        headers[match.field] = key
        shown[match.field] = display(value) if not isinstance(value, dict | list) else ""
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
            quoted(event_type) if event_type else None,
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
        if name in plan.columns and value:
            # Said in the column's own unit, quoting the cell (万㎡, 米 …).
            outcome = in_column_units(
                outcome, column=plan.columns[name], cell=value, model=spec.by_type[str(event_type)]
            )
        _reject_row(plan, number, outcome, column=column, value=value, cells=cells)
        return
    key = str(outcome.event_id)
    entry = plan.entries.get(key)
    if entry is None:
        # A copy: orjson's result keeps its 4 KiB buffer, 10x the event, for 100k rows.
        compact = memoryview(raw).tobytes()
        plan.entries[key] = Entry(
            number,
            outcome.event_type_name,
            compact,
            "\x1f".join(cells),
            department=outcome.department,
            event_id=key,
        )
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
            quoted(ref),
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

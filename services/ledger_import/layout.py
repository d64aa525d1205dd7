"""Stage 2, layout: where a ledger's header stands and what its columns say together —
``ledger_columns`` resolves them (:mod:`services.ledger_import.headers`) and settles the
event type (``--type``, a 事件类型 column, or the only type the columns fit).

A two-row header, a merged group cell over its sub-headers (完成情况 over 完成日期 and
供热面积（万㎡）), or a units row under the header (面积 over 万㎡), is read as one header
when every sub-header is known, otherwise refused naming both rows and what to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from schemas.envelope import Envelope
from schemas.topics import ALL, BY_EVENT_TYPE, DEPARTMENTS
from services.ledger_import.base import LedgerError
from services.ledger_import.files import Ledger, blank
from services.ledger_import.headers import (
    ALL_UNIT_KEYS,
    IGNORED_KEYS,
    Column,
    header_key,
    is_note_header,
    match_header,
    model_fields,
    resolve_columns,
)


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


def column_letter(index: int) -> str:
    """Column A, B, …, Z, AA as Excel names it."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _is_header(text: str, mapping: Mapping[str, str | None]) -> bool:
    """A name CityStream reads as a column: a field's header, a mapped, ignored or notes
    header."""
    key = header_key(text)
    if not key:
        return False
    if key in mapping or key in IGNORED_KEYS or is_note_header(text):
        return True
    try:
        return match_header(text) is not None
    except LedgerError:
        return True  # a field with a unit it cannot convert: a header, refused as such


def _is_unit(text: str) -> bool:
    """万㎡, （米）, 单位：套 — a cell of a units row under the header."""
    key = header_key(text).removeprefix("单位").strip("()")
    return key in ALL_UNIT_KEYS


def settle_header_rows(ledger: Ledger, mapping: Mapping[str, str | None] | None = None) -> None:
    """Read a second header row under the first, when there is one.

    District offices merge a group cell over its sub-headers (完成情况 over 完成日期 |
    供热面积（万㎡）) or put the units in a row of their own (面积 over 万㎡). In the file the
    merged cell's text sits in its first column, the others are empty. The row under the
    header is a second header row when every cell filled in it is a known header (or a unit
    under a known header) and one of them adds something: it sits under an empty or
    unknown upper cell, or it is a unit. The columns are then named by the lower row where
    it is filled, by the upper one elsewhere. A row that is a second header row except
    for names CityStream does not know is refused here, naming both rows and what to
    change; anything else is left as the first data row.
    """
    if ledger.format == "jsonl" or ledger.header_rows:
        return
    mapping = mapping or {}
    upper = ledger.headers
    ledger.header_rows = (ledger.header_row,)
    following = ledger.peek()
    if following is None:
        return
    number, cells = following
    lower = ["" if blank(c) else str(c).strip() for c in cells]
    if any(not blank(c) and not isinstance(c, str) for c in cells):
        return  # numbers or dates: a data row
    filled = [i for i, text in enumerate(lower) if text]
    if not filled:
        return

    def above(i: int) -> str:
        return upper[i].strip() if i < len(upper) else ""

    def understood(i: int) -> bool:
        text = lower[i]
        return _is_header(text, mapping) or (_is_unit(text) and _is_header(above(i), mapping))

    adds = [i for i in filled if not _is_header(above(i), mapping) or _is_unit(lower[i])]
    if not adds:
        return
    unknown = [i for i in filled if not understood(i)]
    if unknown:
        if not any(_is_header(lower[i], mapping) for i in adds):
            return  # nothing in it reads as a header: the first data row
        raise LedgerError(_two_row_refusal(ledger, upper, lower, number, unknown))
    merged: list[str] = []
    for i in range(max(len(upper), len(lower))):
        text = lower[i] if i < len(lower) else ""
        if not text:
            merged.append(above(i))
        elif _is_unit(text):
            merged.append(f"{above(i)}（{text.strip('()（）')}）")
        else:
            merged.append(text)
    ledger.skip()
    ledger.upper_headers = list(upper)
    ledger.headers = merged
    ledger.header_rows = (ledger.header_row, number)
    ledger.header_row = number
    if ledger.total_hint is not None:
        ledger.total_hint = max(0, ledger.total_hint - 1)


def _two_row_refusal(
    ledger: Ledger, upper: Sequence[str], lower: Sequence[str], number: int, unknown: list[int]
) -> str:
    first = ledger.header_row
    groups = [
        f"{upper[i].strip()} over {' / '.join(t for t in lower[i : i + 4] if t)}"
        for i in range(min(len(upper), len(lower)))
        if upper[i].strip() and lower[i]
    ]
    bad = "、".join(f"{lower[i]} (column {column_letter(i)})" for i in unknown)
    single = " | ".join(
        f"{column_letter(i)} {lower[i] if i < len(lower) and lower[i] else upper[i].strip()}"
        for i in range(max(len(upper), len(lower)))
        if (i < len(lower) and lower[i]) or (i < len(upper) and upper[i].strip())
    )
    return (
        f"{ledger.path}: rows {first} and {number} are a two-row header"
        + (f" ({'; '.join(groups)})" if groups else "")
        + f", but row {number} names column{'s' if len(unknown) > 1 else ''} CityStream does "
        f"not know: {bad}; nothing was sent. Rename {'them' if len(unknown) > 1 else 'it'} "
        f"in row {number} to a known header (e.g. 完成日期, 供热面积（万㎡）, 备注) and the two "
        f"rows are read as one header; or make row {number} the only header row — "
        f"{single} — and delete row {first}; or map {lower[unknown[0]]!r} with --mapping"
    )


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
    settle_header_rows(ledger, options.mapping)
    try:
        columns = resolve_columns(
            ledger.headers, allowed=allowed, mapping=options.mapping, what=what
        )
    except LedgerError as exc:
        if len(ledger.header_rows) < 2:
            raise
        first, second = ledger.header_rows
        raise LedgerError(
            f"{exc} (the header spans rows {first} and {second}, read as one: "
            f"{' | '.join(h for h in ledger.headers if h)}; a column is named by row {second} "
            f"where that is filled, by row {first} elsewhere)"
        ) from exc
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

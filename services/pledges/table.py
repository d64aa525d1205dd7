"""The pledge progress as a terminal table (rich), 中文 first: ``citystream pledges status``,
the audit's as-of view and the demo print it.

The table picks its layout when it is printed, for the width it gets, so that it reads as
well in an 80-column laptop terminal as in the demo's 180: every pledge's title and status
show, and no number is ever cut (a column rich must still squeeze folds onto more lines).
Headers put English under 中文. Where the title keeps :data:`TITLE_WIDE` cells, every
column shows and a status reads on one line (滞后 behind). Narrower, the status puts
English under 中文 too, then, while the title has fewer than :data:`TITLE_MIN` cells, the
columns a reader can best do without are left out in this order: 应完成 Expected (it is
actual − gap), 差额 Gap in units, 预计完成 Projected, 差天数 Gap days. Target, actual and
status always stay. With the 2024 pledges, 120 columns show all eight; 80 show target,
actual, gap days and status. Where even that leaves the title fewer than
:data:`ENGLISH_TITLE_MIN` cells (about 60 columns and fewer), the English title is left out.

Titles wrap: 中文 between characters but never inside a number or a Latin word (75.9万,
93%) nor before a closing mark (，、); English between words. Numbers are written as the
report writes them (:func:`~services.pledges.formats.format_quantity`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from schemas.catalogue import Catalogue
from services.pledges.formats import format_quantity
from services.pledges.rules import STATUS_LABELS, PledgeProgress

# Every column, a status on one line, only where the title keeps this many cells (24
# Chinese characters a line: a title on one line, its English on one or two).
TITLE_WIDE = 48
# Otherwise the fullest layout that leaves the title this many cells: 14 Chinese characters
# a line, most titles on two lines, their English on two or three.
TITLE_MIN = 28
# Narrower than this (10 Chinese characters) the English title would run to five lines and
# more; it is left out, the 中文 title kept.
ENGLISH_TITLE_MIN = 20

# (中文, English) headers of the columns, in the order they are shown.
HEADERS: dict[str, tuple[str, str]] = {
    "pledge": ("承诺", "Pledge"),
    "target": ("目标", "Target"),
    "actual": ("实际", "Actual"),
    "expected": ("应完成", "Expected"),
    "gap": ("差额", "Gap"),
    "gap_days": ("差天数", "Gap days"),
    "status": ("状态", "Status"),
    "projected": ("预计完成", "Projected"),
}
NUMBERS = frozenset({"target", "actual", "expected", "gap", "gap_days"})
# Left out in this order as the width shrinks; the others always show.
DROP_ORDER = ("expected", "gap", "projected", "gap_days")

# 中文 wraps between these tokens: a run of printable ASCII (a number, a unit, a Latin word)
# is one token, any other character another; opening marks stick to what follows them and
# closing marks to what precedes them.
_OPENING = "（《「『“‘〈【"
_CLOSING = "，。、：；！？）》」』”’〉】"
_TOKEN = re.compile(rf"[{_OPENING}]*(?:[!-~]+|\s+|.)[{_CLOSING}]*")
# Borders and padding per column (│ and a space either side), plus the table's last border.
_COLUMN_OVERHEAD = 3


@dataclass(frozen=True)
class _Pledge:
    """One row, formatted."""

    title_zh: str
    title_en: str
    status_zh: str
    status_en: str
    status_style: str
    cells: dict[str, str]


@dataclass(frozen=True)
class _Layout:
    columns: tuple[str, ...]  # after the pledge's title, in order
    status_inline: bool  # 滞后 behind; else 滞后 over behind
    english_titles: bool = True


FULL = _Layout(tuple(column for column in HEADERS if column != "pledge"), status_inline=True)


def _layouts() -> Iterator[_Layout]:
    """The layouts from the fullest to the sparest."""
    yield FULL
    columns = FULL.columns
    yield _Layout(columns, status_inline=False)
    for left_out in DROP_ORDER:
        columns = tuple(column for column in columns if column != left_out)
        yield _Layout(columns, status_inline=False)


def wrap_chinese(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells, broken only between tokens (:data:`_TOKEN`);
    a token wider than ``width`` gets a line of its own (rich folds it)."""
    lines: list[str] = []
    line = ""
    for token in _TOKEN.findall(text):
        if line and cell_len(line + token.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += token.lstrip() if not line else token
    if line.strip():
        lines.append(line.rstrip())
    return lines


@dataclass(frozen=True)
class _Title:
    """A pledge's title, 中文 over English (dim), wrapped as the module docstring says."""

    zh: str
    en: str | None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        text = Text("\n".join(wrap_chinese(self.zh, options.max_width)), overflow="fold")
        if self.en is not None:
            text.append("\n")
            text.append(self.en, style="dim")
        yield text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        words = [*_TOKEN.findall(self.zh), *(self.en or "").split()]
        lines = [self.zh, self.en or ""]
        return Measurement(
            max(cell_len(word.strip()) for word in words),
            max(cell_len(line) for line in lines),
        ).with_maximum(options.max_width)


def _header(column: str) -> str:
    zh, en = HEADERS[column]
    return f"{zh}\n{en}"


def _status(pledge: _Pledge, *, inline: bool) -> str:
    separator = " " if inline else "\n"
    return f"{pledge.status_zh}{separator}{pledge.status_en}"


def _column_width(column: str, pledges: Sequence[_Pledge], *, status_inline: bool) -> int:
    lines = _header(column).split("\n")
    if column == "status" and status_inline:
        lines += [_status(pledge, inline=True) for pledge in pledges]
    elif column == "status":
        # 无法计量 over "not measurable", which may wrap between its words.
        lines += [word for p in pledges for word in (p.status_zh, *p.status_en.split())]
    else:
        lines += [pledge.cells[column] for pledge in pledges]
    return max(cell_len(line) for line in lines)


def title_room(layout: _Layout, pledges: Sequence[_Pledge], width: int) -> int:
    """The cells left for the title in a table ``width`` wide."""
    fixed = sum(
        _column_width(column, pledges, status_inline=layout.status_inline)
        for column in layout.columns
    )
    return width - fixed - _COLUMN_OVERHEAD * (len(layout.columns) + 1) - 1


def fitting_layout(pledges: Sequence[_Pledge], width: int) -> _Layout:
    """The layout for a table ``width`` wide, as the module docstring says."""
    for layout in _layouts():
        room = title_room(layout, pledges, width)
        if room >= (TITLE_WIDE if layout.status_inline else TITLE_MIN):
            return layout
    if room >= ENGLISH_TITLE_MIN:
        return layout
    return _Layout(layout.columns, status_inline=False, english_titles=False)


def _fill(table: Table, layout: _Layout, pledges: Sequence[_Pledge]) -> Table:
    # overflow="fold" everywhere: a column rich must squeeze anyway (a terminal narrower than
    # the sparest layout) folds onto more lines instead of cutting with an ellipsis.
    table.add_column(_header("pledge"), overflow="fold")
    for column in layout.columns:
        justify: JustifyMethod = "right" if column in NUMBERS else "left"
        # max_width: the width title_room() counted ("not measurable" wraps to get it).
        width = _column_width(column, pledges, status_inline=layout.status_inline)
        table.add_column(_header(column), justify=justify, overflow="fold", max_width=width)
    for pledge in pledges:
        title = _Title(pledge.title_zh, pledge.title_en if layout.english_titles else None)
        cells = [
            Text(_status(pledge, inline=layout.status_inline), style=pledge.status_style)
            if column == "status"
            else Text(pledge.cells[column])
            for column in layout.columns
        ]
        table.add_row(title, *cells)
    return table


class StatusTable(Table):
    """The progress table; as such it holds the full layout, but it prints (and measures)
    the layout that fits the width it is given (module docstring). A :class:`Table`, so the
    callers that collect tables (the demo's screenshots) take it as one."""

    def __init__(self, pledges: Sequence[_Pledge], *, title: str) -> None:
        super().__init__(title=title)
        self.pledges = tuple(pledges)
        _fill(self, FULL, self.pledges)

    def fitted(self, width: int) -> Table:
        layout = fitting_layout(self.pledges, width)
        return self if layout == FULL else _fill(Table(title=self.title), layout, self.pledges)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = self.fitted(options.max_width)
        if table is self:
            yield from super().__rich_console__(console, options)
        else:
            yield table

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        table = self.fitted(options.max_width)
        if table is self:
            return super().__rich_measure__(console, options)
        return table.__rich_measure__(console, options)


def _pledge(row: PledgeProgress, catalogue: Catalogue) -> _Pledge:
    metric = catalogue.metric(row.metric)
    zh, en, style = STATUS_LABELS[row.status]
    projected = row.projected_completion
    return _Pledge(
        title_zh=row.title_zh,
        title_en=row.title_en,
        status_zh=zh,
        status_en=en,
        status_style=style,
        cells={
            "target": format_quantity(row.target, metric),
            "actual": format_quantity(row.actual_to_date, metric),
            "expected": format_quantity(row.expected_to_date, metric),
            "gap": format_quantity(row.gap_units, metric, sign=True),
            "gap_days": "—" if row.gap_days is None else f"{row.gap_days:+d}",
            "projected": "—" if projected is None else projected.isoformat(),
        },
    )


def status_table(rows: Sequence[PledgeProgress], catalogue: Catalogue, *, on: date) -> Table:
    """The progress rows as a table, 中文 first, its columns fitted to the width it is printed
    at (module docstring)."""
    return StatusTable(
        [_pledge(row, catalogue) for row in rows],
        title=f"承诺进度 Pledge progress · {on.isoformat()} (Asia/Shanghai)",
    )

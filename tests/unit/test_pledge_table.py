"""The pledge progress table (services/pledges/table.py) as a terminal shows it, at 200, 120,
80, 60 and 40 columns: every pledge's title and status is there in full and in order, no line
is wider than the terminal, no shown number is cut, and 中文 titles wrap between characters
but never inside a number. The real 2024 catalogue with made-up progress; no sockets."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from rich.cells import cell_len
from rich.console import Console

from schemas.catalogue import Catalogue, Metric
from schemas.seeds import load_catalogue
from services.pledges.formats import format_quantity
from services.pledges.rules import STATUS_LABELS, PledgeProgress, Status, evaluate, selected
from services.pledges.table import status_table, wrap_chinese

ON = date(2024, 10, 15)  # after the national-day pledge's deadline, so one is overdue

# What the ledger shows by ON, one of each status; None: not measurable.
ACTUALS: dict[str, Decimal | None] = {
    "2024-drainage-waterlogging-points": Decimal(1),
    "2024-education-foreign-language-school-opened": Decimal(1),
    "2024-education-kindergarten-inclusive-rate": Decimal("91.6"),  # a percent level
    "2024-education-primary-schools-built": Decimal(3),
    "2024-education-school-places": Decimal(2052),
    "2024-facilities-science-hall-opened": Decimal(0),
    "2024-health-family-bed-institutions": Decimal(4),
    "2024-health-outpatient-building-opened": Decimal(0),
    "2024-heating-integration-area": Decimal("1153820.5"),
    "2024-housing-completed-area": Decimal(417400),
    "2024-housing-cooperation-zone-first-batch": Decimal(1),
    "2024-housing-return-before-national-day": Decimal("97.3"),  # a percent level, overdue
    "2024-housing-started-area": Decimal(331200),
    "2024-lighting-main-roads-lake-alleys": Decimal(2),
    "2024-renewal-first-phase-started": None,
    "2024-renewal-projects-planned": Decimal(5),
    "2024-roads-municipal-started": Decimal(6),
}

# Each column the table may show, by its header with whitespace removed, and what its cell
# says for a row: the whole text, however the column wraps it.
Cell = Callable[[PledgeProgress, Metric], str]
CELLS: dict[str, Cell] = {
    "目标Target": lambda row, metric: format_quantity(row.target, metric),
    "实际Actual": lambda row, metric: format_quantity(row.actual_to_date, metric),
    "应完成Expected": lambda row, metric: format_quantity(row.expected_to_date, metric),
    "差额Gap": lambda row, metric: format_quantity(row.gap_units, metric, sign=True),
    "差天数Gapdays": lambda row, _: "—" if row.gap_days is None else f"{row.gap_days:+d}",
    "状态Status": lambda row, _: "".join(STATUS_LABELS[row.status][:2]),
    "预计完成Projected": lambda row, _: str(row.projected_completion or "—"),
}
ALWAYS = {"承诺Pledge", "目标Target", "实际Actual", "状态Status"}
WIDTHS = (200, 120, 80, 60, 40)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def rows(catalogue: Catalogue) -> list[PledgeProgress]:
    progress = [
        evaluate(pledge, on=ON, actual=ACTUALS.get(pledge.id, pledge.target))
        for pledge in selected(catalogue, 2024)
    ]
    assert len(progress) == 17
    assert {row.status for row in progress} == set(Status)
    assert {"percent"} <= {row.unit for row in progress}
    return progress


def render(rows: list[PledgeProgress], catalogue: Catalogue, width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(status_table(rows, catalogue, on=ON))
    return console.export_text().splitlines()


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def columns(lines: list[str]) -> dict[str, str]:
    """Each column's text, top to bottom, by its header; whitespace removed."""
    header = [line.split("┃")[1:-1] for line in lines if line.startswith("┃")]
    body = [line.split("│")[1:-1] for line in lines if line.startswith("│")]
    names = ["".join(squash(cell) for cell in column) for column in zip(*header, strict=True)]
    texts = ["".join(squash(cell) for cell in column) for column in zip(*body, strict=True)]
    return dict(zip(names, texts, strict=True))


@pytest.mark.parametrize("width", WIDTHS)
def test_every_pledge_and_status_shows_in_full(
    rows: list[PledgeProgress], catalogue: Catalogue, width: int
) -> None:
    lines = render(rows, catalogue, width)
    print("\n".join(lines))  # the table as printed, for a failing run's report
    assert max(cell_len(line) for line in lines) <= width
    assert "…" not in "".join(lines)
    shown = columns(lines)
    assert set(shown) >= ALWAYS
    # Titles: 中文 then English for each pledge, in order; at the narrowest, 中文 only.
    full_titles = "".join(squash(row.title_zh + row.title_en) for row in rows)
    chinese_titles = "".join(squash(row.title_zh) for row in rows)
    assert shown["承诺Pledge"] == (full_titles if width >= 80 else chinese_titles)
    for header, text in shown.items():
        if header != "承诺Pledge":
            cell = CELLS[header]
            expected = [cell(row, catalogue.metric(row.metric)) for row in rows]
            assert text == squash("".join(expected)), header


def test_wide_terminals_show_every_column_and_one_line_statuses(
    rows: list[PledgeProgress], catalogue: Catalogue
) -> None:
    wide = render(rows, catalogue, 200)
    assert set(columns(wide)) == {"承诺Pledge", *CELLS}
    text = "\n".join(wide)
    assert "安置房全年新建成75.9万平方米" in text
    assert "Complete 759,000 m² of resettlement housing in the year" in text
    for zh, en, _ in STATUS_LABELS.values():
        assert f"{zh} {en}" in text
    assert set(columns(render(rows, catalogue, 120))) == {"承诺Pledge", *CELLS}


def test_an_80_column_terminal_keeps_the_gap_in_days(
    rows: list[PledgeProgress], catalogue: Catalogue
) -> None:
    assert set(columns(render(rows, catalogue, 80))) == ALWAYS | {"差天数Gapdays"}


@pytest.mark.parametrize("width", range(6, 40))
def test_chinese_titles_wrap_between_characters_never_inside_a_number(
    catalogue: Catalogue, width: int
) -> None:
    for pledge in catalogue.pledges:
        lines = wrap_chinese(pledge.title_zh, width)
        assert "".join(lines) == pledge.title_zh
        for line in lines:
            assert cell_len(line) <= width or re.fullmatch(r"[!-~]+\S?", line), line
            assert not line.startswith(("，", "、", "。", "：", "；", "）")), line
        for number in re.findall(r"[!-~]+", pledge.title_zh):
            assert any(number in line for line in lines), (number, lines)

"""Writing ledgers as district offices keep them, and planning them, for the stage tests."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from schemas.envelope import Envelope
from schemas.topics import BY_EVENT_TYPE
from schemas.validation import decode
from services import ledger_import as li

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "seeds" / "samples"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
CST = timezone(timedelta(hours=8))
HEAT = li.Options(event_type="heating.area_connected")
HEAT_HEADERS = ["台账编号", "项目名称", "所属街道", "完成日期", "面积（㎡）"]


def write_rows(path: Path, rows: Sequence[Sequence[Any]], *, encoding: str = "utf-8") -> Path:
    """A CSV ledger, every row as given (the header rows too)."""
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def write_csv(
    path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, encoding: str = "utf-8"
) -> Path:
    """A CSV ledger: one header row, then the rows."""
    return write_rows(path, [headers, *rows], encoding=encoding)


def write_xlsx(
    path: Path, rows: Sequence[Sequence[Any]], *, merged: Sequence[str] = (), sheet: str = "台账"
) -> Path:
    """An XLSX sheet; ``merged`` are ranges such as "E2:F2" merged as Excel merges them
    (the text stays in the first cell, the others are emptied)."""
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for row in rows:
        ws.append(list(row))
    for cells in merged:
        ws.merge_cells(cells)
    wb.save(path)
    return path


def plan_of(path: Path, options: li.Options = HEAT, **kw: Any) -> li.Plan:
    with li.open_ledger(path, sheet=kw.pop("sheet", None)) as ledger:
        return li.plan_import(ledger, options, now=NOW, **kw)


def events_of(plan: li.Plan) -> list[Envelope]:
    out = []
    for entry in plan.to_send():
        event = decode(BY_EVENT_TYPE[entry.event_type], entry.raw, now=NOW)
        assert isinstance(event, Envelope)
        out.append(event)
    return out


def reasons(plan: li.Plan) -> list[tuple[int, str, str]]:
    return [(r.row, r.column, r.reason) for r in plan.rejected]

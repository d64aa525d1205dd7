"""Writing ledgers as district offices keep them, and planning them, for the stage tests."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from schemas.envelope import Envelope
from schemas.topics import BY_EVENT_TYPE
from schemas.validation import decode
from services import ledger_import as li

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def write_csv(path: Path, rows: Sequence[Sequence[Any]], *, encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


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


def plan_of(path: Path, options: li.Options, **kw: Any) -> li.Plan:
    with li.open_ledger(path, sheet=kw.pop("sheet", None)) as ledger:
        return li.plan_import(ledger, options, now=NOW, **kw)


def events_of(plan: li.Plan) -> list[Envelope]:
    out = []
    for entry in plan.to_send():
        event = decode(BY_EVENT_TYPE[entry.event_type], entry.raw, now=NOW)
        assert isinstance(event, Envelope)
        out.append(event)
    return out

"""``citystream receipts``: a department's receipts as a table, CSV or XLSX.

Reads ``city.receipts.<department>.v1`` as the department (:mod:`services.kafka.receipts`);
nothing else. ``citystream receipts-rebuild`` is :mod:`services.receipts.rebuild`.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from schemas.errors import CityStreamError
from schemas.receipts import Receipt
from services.kafka.receipts import ReceiptReader, ReceiptsError
from streams.rollup import LOCAL_TZ
from streams.settings import Settings

COLUMNS = (
    "judged_at",
    "topic",
    "partition",
    "offset",
    "outcome",
    "event_id",
    "event_type",
    "source_ref",
    "reason",
    "field",
    "value",
    "message_zh",
    "message_en",
)
# Printed at most; --out has every receipt.
TABLE_LINES = 200


class ReceiptReportError(CityStreamError):
    """The receipts could not be listed or rebuilt; the message says why."""


def parse_moment(text: str, *, name: str) -> datetime:
    """ISO 8601; Asia/Shanghai without an offset; a bare date is its first moment."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ReceiptReportError(
            f"{name}: {text!r} is not a date or an ISO 8601 time, e.g. 2024-11-30 or "
            "2024-11-30T08:00 (Asia/Shanghai unless an offset is given)"
        ) from None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=LOCAL_TZ)


def list_receipts(
    settings: Settings,
    console: Console,
    *,
    department: str,
    since_text: str | None,
    until_text: str | None,
    refused_only: bool,
    out: Path | None,
) -> list[Receipt]:
    since = (
        parse_moment(since_text, name="--since")
        if since_text
        else datetime.now(UTC) - timedelta(hours=24)
    )
    until = parse_moment(until_text, name="--until") if until_text else None
    if out is not None and out.suffix.lower() not in (".csv", ".xlsx"):
        raise ReceiptReportError(f"--out: {out.name} must end in .csv or .xlsx")
    try:
        with ReceiptReader(settings, department) as reader:
            found = reader.since(since, until)
    except ReceiptsError as exc:
        raise ReceiptReportError(str(exc)) from exc
    if refused_only:
        found = [r for r in found if r.outcome == "refused"]
    counts = Counter(r.outcome for r in found)
    when = f"since {since.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M} (UTC+8)"
    if until is not None:
        when += f" until {until.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}"
    console.print(
        f"回执 Receipts of {department} {when}: "
        + ", ".join(f"{name} {counts[name]:,}" for name in ("stored", "duplicate", "refused")),
        soft_wrap=True,
        highlight=False,
    )
    table = Table()
    for name in ("judged (UTC+8)", "position", "outcome", "event", "reference", "reason"):
        table.add_column(name, overflow="fold")
    table.add_column("message", overflow="fold", max_width=60)
    for receipt in found[-TABLE_LINES:]:
        style = "red" if receipt.outcome == "refused" else ""
        table.add_row(
            _local(receipt.judged_at),
            f"{receipt.topic}[{receipt.partition}]@{receipt.offset}",
            f"[{style}]{receipt.outcome}[/]" if style else receipt.outcome,
            f"{receipt.event_type or ''} {(receipt.event_id or '')[:8]}".strip(),
            escape(receipt.source_ref or ""),
            receipt.reason or "",
            escape(receipt.message_zh or receipt.message),
        )
    if found:
        console.print(table)
    if len(found) > TABLE_LINES:
        console.print(f"(the last {TABLE_LINES} of {len(found):,}; --out FILE has every one)")
    if out is not None:
        write(found, out)
        console.print(f"{len(found):,} receipts written to {out}")
    return found


def _local(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M:%S}"


def _row(receipt: Receipt) -> list[Any]:
    return [
        _local(receipt.judged_at),
        receipt.topic,
        receipt.partition,
        receipt.offset,
        receipt.outcome,
        receipt.event_id or "",
        receipt.event_type or "",
        receipt.source_ref or "",
        receipt.reason or "",
        receipt.field or "",
        receipt.value or "",
        receipt.message_zh or "",
        receipt.message_en or "",
    ]


def write(found: list[Receipt], path: Path) -> None:
    """``.csv`` (UTF-8 with BOM, as Excel on Chinese Windows expects) or ``.xlsx``."""
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(COLUMNS)
            out.writerows(_row(r) for r in found)
        return
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("receipts")
    sheet.append(list(COLUMNS))
    for receipt in found:
        sheet.append(_row(receipt))
    book.save(path)

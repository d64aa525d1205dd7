"""What the clerk gets back: the rejects file (which imports like its ledger once fixed),
the progress bars and the summary table.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
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

from services.ledger_import.base import REJECTS_COLUMNS, RowRejection
from services.ledger_import.files import ENCODING_NAMES, Ledger, is_rejects_file, ledger_stem
from services.ledger_import.plan import Plan

if TYPE_CHECKING:
    from services.ledger_import.run import ImportReport, ImportRequest
    from services.ledger_import.wait import RowOutcome

# With --wait, every row's outcome is printed up to this many rows; beyond, the rows that
# were not stored (and `citystream receipts --out` has every one).
OUTCOME_LINES = 200
OUTCOME_NAMES = {
    "stored": "stored 已入账",
    "duplicate": "already in the ledger 已在台账",
    "refused": "refused 被拒收",
    "pending": "no receipt yet 未回执",
}


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


class _RateColumn(ProgressColumn):
    """Rows per second since the task started (rich's own speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished_time is not None else task.elapsed
        rate = f"{task.completed / elapsed:,.0f}" if elapsed and task.completed else "–"
        return Text(f"{rate} rows/s", style="progress.data.speed")


def progress_bar(console: Console) -> Progress:
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


def is_our_rejects(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return is_rejects_file(next(csv.reader(fh), []))
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def describe(console: Console, ledger: Ledger) -> None:
    parts = [f"[bold]{ledger.path}[/]", ledger.format.upper()]
    if ledger.sheet:
        parts.append(f"sheet {ledger.sheet!r}")
    if ledger.encoding:
        parts.append(f"encoding {ENCODING_NAMES.get(ledger.encoding, ledger.encoding)}")
    if len(ledger.header_rows) > 1:
        first, second = ledger.header_rows
        parts.append(f"two-row header on rows {first}–{second}, read as one")
    elif ledger.header_row:
        parts.append(f"header on row {ledger.header_row}")
    console.print(", ".join(parts))


def rows_list(rows: Sequence[int], limit: int = 20) -> str:
    """Row numbers for the summary: 9, 15, 22 … (and N more)."""
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" … and {len(rows) - limit:,} more" if len(rows) > limit else "")


# Total rows listed one per line above the summary, at most.
TOTAL_LINES = 50


def print_totals(console: Console, plan: Plan) -> None:
    """One line per total row skipped: its number and the cell (or sum) that decided."""
    for total in plan.totals[:TOTAL_LINES]:
        where = f" ({escape(total.column)})" if total.column else ""
        console.print(
            f"row {total.row}: total row skipped 合计行已跳过 — {escape(total.why)}{where}",
            highlight=False,
        )
    if len(plan.totals) > TOTAL_LINES:
        console.print(f"… and {len(plan.totals) - TOTAL_LINES:,} more total rows skipped")


# Rejected rows shown on the console before the summary, at most (the rejects file has all).
REJECTED_LINES = 10


def print_rejected(console: Console, rejected: Sequence[RowRejection]) -> None:
    """The first rejected rows with their message, so the clerk reads why without opening
    the rejects file."""
    for r in rejected[:REJECTED_LINES]:
        console.print(
            f"row {r.row}: rejected 拒收 {escape(f'[{r.reason}]')} {escape(r.message_zh)}",
            highlight=False,
            soft_wrap=True,
        )
    if len(rejected) > REJECTED_LINES:
        console.print(
            f"… and {len(rejected) - REJECTED_LINES:,} more rejected rows: see the rejects file",
            highlight=False,
        )


def summary(console: Console, request: ImportRequest, plan: Plan, report: ImportReport) -> None:
    print_totals(console, plan)
    for row, note in plan.correction_notes:
        console.print(f"row {row}: correction 更正 — {escape(note)}", highlight=False)
    print_rejected(console, report.rejected)
    table = Table(title="导入结果 Import summary", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_column("note")
    table.add_row("rows read 读取行数", f"{report.rows_read:,}", "")
    if request.dry_run:
        table.add_row("valid 有效", f"{report.valid:,}", "dry run: nothing sent")
    else:
        note = "acknowledged by Kafka"
        if report.sent and not request.wait:
            departments = ", ".join(sorted({e.department for e in plan.to_send()}))
            note += (
                "; the worker's verdict on each: import with --wait, or "
                f"citystream receipts --department {departments}"
            )
        table.add_row("sent 已发送", f"{report.sent:,}", note)
    rejected_rows = len({r.row for r in report.rejected})
    table.add_row("rejected 拒收", f"{rejected_rows:,}", "")
    for reason, n in sorted(report.by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(f"  {reason}", f"{n:,}", "")
    table.add_row("duplicates 重复行", f"{report.duplicates:,}", "identical rows, sent once")
    if plan.compared:
        unchanged = len(plan.with_status("unchanged"))
        table.add_row(
            "already imported 已导入",
            f"{unchanged:,}",
            "the ledger holds these rows as they are: not sent again",
        )
        changed = plan.with_status("changed")
        if plan.corrections:
            rows = sorted({c.row for c in plan.corrections})
            table.add_row(
                "corrections 更正",
                f"{len(plan.corrections):,}",
                f"changed rows sent as corrections of the difference (rows {rows_list(rows)}, "
                f"listed above; approved by {request.approved_by}: {request.reason})",
            )
        refused = [e.row for e in changed if e.row not in {c.row for c in plan.corrections}]
        if refused:
            table.add_row(
                "changed 已改动",
                f"{len(refused):,}",
                f"rows {rows_list(refused)} differ from the ledger: refused, see the rejects file",
            )
    elif request.dry_run:
        table.add_row("ledger 台账", "", "dry run: not compared with what the ledger holds")
    if report.outcomes:
        counts = report.by_outcome
        table.add_row(
            "receipts 回执",
            f"{len(report.outcomes):,}",
            ", ".join(
                f"{OUTCOME_NAMES[name]} {counts[name]:,}" for name in OUTCOME_NAMES if counts[name]
            )
            + f" (waited {report.waited_s:.1f} s)",
        )
    if plan.totals:
        table.add_row(
            "total rows 合计行",
            f"{len(plan.totals):,}",
            f"skipped, never sent: rows {rows_list([t.row for t in plan.totals])} (listed above)",
        )
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
    if len(plan.header_rows) > 1:
        first, second = plan.header_rows
        table.add_row(
            "header 表头",
            "",
            f"rows {first}–{second} read as one: {' | '.join(h for h in plan.headers if h)}",
        )
    if plan.ignored:
        table.add_row("ignored 忽略列", "", "、".join(plan.ignored))
    if plan.notes:
        table.add_row(
            "notes 备注列",
            f"{plan.noted_rows:,}",
            f"{'、'.join(plan.notes)}: rows with a note; not sent (no event field holds a "
            "note), kept in the rejects file with each rejected row",
        )
    if report.rejects_path:
        table.add_row("rejects 拒收明细", "", str(report.rejects_path))
    rate = report.rows_read / report.seconds if report.seconds else 0.0
    table.add_row("time 用时", f"{report.seconds:.1f} s", f"{rate:,.0f} rows/s")
    console.print(table)


def print_outcomes(console: Console, outcomes: Sequence[RowOutcome]) -> None:
    """--wait: the worker's verdict on each row sent (each row when there are few, else the
    rows not stored)."""
    shown = (
        list(outcomes)
        if len(outcomes) <= OUTCOME_LINES
        else [o for o in outcomes if o.outcome != "stored"][:OUTCOME_LINES]
    )
    title = "回执 Receipts: what the worker did with each row sent"
    if len(shown) < len(outcomes):
        title += f" (the {len(shown):,} not stored of {len(outcomes):,}; the others are stored)"
    table = Table(title=title, title_justify="left")
    for name in ("row", "reference", "event type", "outcome", "reason", "message"):
        table.add_column(name, overflow="fold")
    for o in shown:
        style = {"refused": "red", "pending": "yellow"}.get(o.outcome, "")
        table.add_row(
            str(o.row),
            escape(o.ref),
            o.event_type,
            f"[{style}]{OUTCOME_NAMES.get(o.outcome, o.outcome)}[/]"
            if style
            else OUTCOME_NAMES.get(o.outcome, o.outcome),
            o.reason,
            escape(o.message),
        )
    if shown:
        console.print(table)

"""The pledge progress as a terminal table (rich), 中文 first: ``citystream pledges status``,
the audit's as-of view and the demo print it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from rich.table import Table

from schemas.catalogue import Catalogue
from services.pledges.rules import STATUS_LABELS, PledgeProgress


def _amount(value: Decimal | None, scale: Decimal, unit: str, *, sign: bool = False) -> str:
    if value is None:
        return "—"
    scaled = (value / scale).quantize(Decimal("0.01"))
    text = f"{scaled:+,.2f}" if sign and scaled else f"{scaled:,.2f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}"


def status_table(rows: Sequence[PledgeProgress], catalogue: Catalogue, *, on: date) -> Table:
    """The progress rows as a table, 中文 first."""
    table = Table(title=f"承诺进度 Pledge progress · {on.isoformat()} (Asia/Shanghai)")
    table.add_column("承诺 Pledge", min_width=24, ratio=1)
    for header in ("目标 Target", "实际 Actual", "应完成 Expected", "差额 Gap", "差天数 Gap days"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("状态 Status")
    table.add_column("预计完成 Projected", no_wrap=True)
    for row in rows:
        metric = catalogue.metric(row.metric)
        scale, unit = metric.display_scale, metric.display_unit
        zh, en, style = STATUS_LABELS[row.status]
        table.add_row(
            f"{row.title_zh}\n[dim]{row.title_en}[/]",
            _amount(row.target, scale, unit),
            _amount(row.actual_to_date, scale, unit),
            _amount(row.expected_to_date, scale, unit),
            _amount(row.gap_units, scale, unit, sign=True),
            "—" if row.gap_days is None else f"{row.gap_days:+d}",
            f"[{style}]{zh} {en}[/]",
            "—" if row.projected_completion is None else row.projected_completion.isoformat(),
        )
    return table

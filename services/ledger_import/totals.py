"""Total and subtotal rows: found in a ledger, never sent. A row with 合计, 小计, 总计 or 累计
(spaced or not, 合　计) in any text cell (:data:`TOTAL_WORDS_RE`), or a zone-wide (全区,
高新区) or district-less row whose every amount equals the sum of the data rows above it
(since the start, or since the last total row: :func:`sum_row`). A clerk's ledger has them;
counting one would count the zone's figure twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.districts import District, district_code
from services.ledger_import.headers import BASE_UNIT_LABELS


@dataclass(frozen=True)
class SkippedTotal:
    """A total or subtotal row, skipped: never an event."""

    row: int
    why: str  # the cell that says so (小计), or which sum its amounts equal
    column: str  # the ledger's header of that cell ("" when the amounts decided)


# The words a total row carries, spaced or not (合 计, 合　计); not 总计划 / 合计算.
TOTAL_WORDS_RE = re.compile(r"(?:合|小|总|累)\s*计(?![划算])")
# Fields holding an amount the zone-wide total of a ledger sums.
AMOUNT_FIELDS: tuple[str, ...] = tuple(BASE_UNIT_LABELS)


@dataclass
class Sums:
    """The amounts of the rows so far, for a zone-wide row that equals their sum. Each row
    costs one append; the sums are brought up to date only when a total row or a zone-wide
    row asks (rarely), each amount converted once."""

    fields: tuple[str, ...] = ()
    rows: list[int] = field(default_factory=list)
    amounts: list[tuple[Any, ...]] = field(default_factory=list)
    section: int = 0  # index of the first row after the last total row
    _summed: int = 0  # rows in _total
    _total: dict[str, Decimal] = field(default_factory=dict)
    _before_section: dict[str, Decimal] = field(default_factory=dict)

    def add(self, number: int, amounts: tuple[Any, ...]) -> None:
        self.rows.append(number)
        self.amounts.append(amounts)

    def _up_to_date(self) -> dict[str, Decimal]:
        total = self._total
        for values in self.amounts[self._summed :]:
            for name, value in zip(self.fields, values, strict=True):
                if value is None:
                    continue
                try:
                    total[name] = total.get(name, Decimal(0)) + Decimal(str(value))
                except InvalidOperation:
                    continue
        self._summed = len(self.amounts)
        return total

    def new_section(self) -> None:
        self._before_section = dict(self._up_to_date())
        self.section = len(self.rows)

    def equal(self, amounts: dict[str, Decimal]) -> tuple[int, int] | None:
        """(first, last) row of the rows whose sums the amounts equal (two or more rows:
        those since the last total row, or all), or None."""
        total = self._up_to_date()
        for first, before in ((self.section, self._before_section), (0, {})):
            if len(self.rows) - first < 2:
                continue
            zero = Decimal(0)
            if all(
                total.get(name, zero) - before.get(name, zero) == amount
                for name, amount in amounts.items()
            ):
                return self.rows[first], self.rows[-1]
        return None


def sum_row(
    sums: Sums,
    number: int,
    values: dict[str, Any],
    shown: dict[str, str],
    column_of: dict[str, str],
) -> SkippedTotal | None:
    """Whether a row is a total without the word for it: zone-wide (or without a
    subdistrict) and every amount equal to the sum of the rows above. Other rows are added
    to the sums. ``column_of``: field → the ledger's header, to name the amounts."""
    if not sums.fields:
        return None
    district = values.get("district")
    if district is None or (isinstance(district, str) and district_code(district) is District.ZONE):
        amounts: dict[str, Decimal] = {}
        for name in sums.fields:
            if name in values:
                try:
                    amounts[name] = Decimal(str(values[name]))
                except InvalidOperation:
                    continue
        rows = sums.equal(amounts) if amounts else None
        if rows is not None:
            where = "全区" if district is not None else "no subdistrict"
            summed = ", ".join(f"{column_of.get(n, n)} {shown.get(n, values[n])}" for n in amounts)
            sums.new_section()
            return SkippedTotal(
                number, f"{where}, {summed} = the sum of rows {rows[0]}–{rows[1]}", ""
            )
    found = tuple(values.get(name) for name in sums.fields)
    if found.count(None) < len(found):
        sums.add(number, found)
    return None

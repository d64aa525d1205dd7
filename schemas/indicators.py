"""Indicator reports: a rate a department measures from time to time, not a sum of events.

The kindergarten inclusive rate (普惠率) or the share of entitled households moved back
(回迁率) is a *level*: what the department counted on a date. Adding two reports up means
nothing, so a level metric (``Metric(level=True)``) never enters the daily rollups
(:func:`streams.rollup.rollup` skips it); its value at a date is the latest report up to that
date (by ``occurred_at``, the day it was measured; among reports of the same moment the one
reported last), plus the deltas of the corrections of that report
(:mod:`services.pledges.rules`, ``pledge_progress_at`` in SQL). A report that arrives late
counts from the day it was measured, not from the day it arrived: it never overrides a
newer measurement.

A report states the level in percent, or the numerator and denominator it comes from, or
all three (then they must agree to the level's 2 places): a department that has the counts
sends them, and the ledger keeps them.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import ClassVar

from pydantic import Field, model_validator

from schemas.envelope import Envelope
from schemas.fields import Count, Metric, rule_error

PERCENT_PLACES = 2
_QUANTUM = Decimal(1).scaleb(-PERCENT_PLACES)
HUNDRED = Decimal(100)
# A count behind a district-wide rate: the zone has about 300,000 residents; a million is a
# typo, not a count.
MAX_COUNT = 1_000_000


def level_metric(name: str, family: str) -> Metric:
    """The spec of a percentage level: 0–100, 2 decimal places (corrections too)."""
    return Metric(name, family, "percent", HUNDRED, PERCENT_PLACES, level=True)


def percent(numerator: int, denominator: int) -> Decimal:
    """numerator / denominator in percent, rounded half-even to 2 places."""
    return (HUNDRED * numerator / denominator).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


class IndicatorReport(Envelope):
    """A level measured on ``occurred_at``; its metric's value from then on, until a newer
    measurement. Subclasses set ``metric`` and describe numerator and denominator."""

    metric: ClassVar[str]

    level_pct: Decimal | None = Field(
        default=None,
        ge=0,
        le=100,
        decimal_places=PERCENT_PLACES,
        description="the level in percent, 0–100, at most 2 decimal places; may be left out "
        "when numerator and denominator are given",
    )
    numerator: Count | None = Field(default=None, ge=0, le=MAX_COUNT)
    denominator: Count | None = Field(default=None, gt=0, le=MAX_COUNT)

    @model_validator(mode="after")
    def _consistent(self) -> IndicatorReport:
        counts = (self.numerator, self.denominator)
        if None in counts and counts != (None, None):
            missing = "denominator" if self.denominator is None else "numerator"
            raise rule_error(
                "missing_field",
                rule="numerator and denominator together",
                zh="分子 numerator 与分母 denominator 须同时填写",
                en="numerator and denominator go together; one is missing",
                field=missing,
            )
        if self.numerator is None or self.denominator is None:
            if self.level_pct is None:
                raise rule_error(
                    "missing_field",
                    rule="level_pct, or numerator and denominator",
                    zh="请填写 level_pct（百分比），或分子与分母",
                    en="give level_pct (the percentage), or numerator and denominator",
                    field="level_pct",
                )
            return self
        if self.numerator > self.denominator:
            raise rule_error(
                "out_of_range",
                rule="numerator <= denominator",
                zh=f"分子 {self.numerator} 大于分母 {self.denominator}，比例不能超过 100%",
                en=f"{self.numerator} is more than the denominator {self.denominator}; a share "
                "cannot exceed 100%",
                field="numerator",
                value=self.numerator,
            )
        computed = percent(self.numerator, self.denominator)
        if self.level_pct is not None and self.level_pct != computed:
            raise rule_error(
                "out_of_range",
                rule="level_pct = round(100 * numerator / denominator, 2)",
                zh=f"与分子/分母不符：{self.numerator}/{self.denominator} = {computed}%",
                en=f"disagrees with numerator/denominator: {self.numerator}/"
                f"{self.denominator} is {computed}%",
                field="level_pct",
                value=str(self.level_pct),
            )
        return self

    def level(self) -> Decimal:
        if self.numerator is not None and self.denominator is not None:
            return percent(self.numerator, self.denominator)
        if self.level_pct is None:  # _consistent refuses such a report
            raise ValueError("a level report without a level")
        return self.level_pct

    def measures(self) -> dict[str, Decimal]:
        return {self.metric: self.level()}

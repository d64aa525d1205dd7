"""How the pledge report writes numbers, units and dates, 中文 first: 759000 m² as
"75.9万㎡" (the catalogue's display unit), exact figures in base units ("2,562,900㎡"), gaps
in days, 2024年8月31日. Pure; the chart, the page and the demo's checks table use them.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from schemas.catalogue import Metric

# Units stored in base codes whose display unit is a scaled one (万㎡): the base symbol, for
# exact figures. Units shown unscaled use the catalogue's display unit.
BASE_SYMBOLS = {"m2": "㎡", "km2": "km²", "km": "km"}


def plain_number(value: Decimal, *, places: int = 2, sign: bool = False) -> str:
    """``value`` rounded to ``places`` decimals, thousands separated, no trailing zeros."""
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)  # never "-0"
    text = f"{rounded:+,f}" if sign and rounded != 0 else f"{rounded:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def with_unit(number: str, unit: str) -> str:
    # Chinese writes 75.9万㎡ and 93%, but 11 km.
    spaced = unit[:1].isascii() and unit[:1].isalpha()
    return f"{number} {unit}" if spaced else f"{number}{unit}"


def format_quantity(value: Decimal | None, metric: Metric, *, sign: bool = False) -> str:
    """An amount as a reader expects it: 759000 m² → "75.9万㎡", 2160 places → "2,160个"."""
    if value is None:
        return "—"
    return with_unit(plain_number(value / metric.display_scale, sign=sign), metric.display_unit)


def base_unit(metric: Metric) -> str:
    if metric.display_scale == 1:
        return metric.display_unit
    return BASE_SYMBOLS.get(metric.unit, metric.unit)


def format_exact(value: Decimal | None, metric: Metric, *, sign: bool = False) -> str:
    """An amount in base units, every decimal kept: "2,562,900㎡"."""
    if value is None:
        return "—"
    exponent = value.normalize().as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    return with_unit(plain_number(value, places=places, sign=sign), base_unit(metric))


def format_gap_days(days: int | None) -> tuple[str, str]:
    """(中文, English) for a gap in days; negative is behind the schedule."""
    if days is None:
        return "—", ""
    if days < 0:
        return f"落后 {-days} 天", f"{-days} days behind"
    if days > 0:
        return f"超前 {days} 天", f"{days} days ahead"
    return "0 天", "on schedule"


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def english_date(day: date) -> str:
    return f"{day.day} {day:%B} {day.year}"

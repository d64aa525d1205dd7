"""Pure aggregation of events into daily rollups: what the sink upserts and what audit
replay recomputes. The same function serves both, so the two cannot drift apart.

Level metrics (rates a department measures, :mod:`schemas.indicators`) are left out: their
value is the latest report, which a sum cannot give; pledges read them from the ledger."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from schemas.catalogue import LEVEL_METRICS

# The district reports by the local calendar day, not by UTC.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

RollupKey = tuple[date, str, str]  # day, district, metric


@dataclass
class Totals:
    total: Decimal
    events: int


def local_day(ts: datetime) -> date:
    return ts.astimezone(LOCAL_TZ).date()


def rollup(
    items: Iterable[tuple[datetime, str, Mapping[str, Decimal]]],
) -> dict[RollupKey, Totals]:
    """(occurred_at, district, measures) per event → totals per day, district and metric."""
    groups: dict[RollupKey, Totals] = {}
    for occurred_at, district, measures in items:
        day = local_day(occurred_at)
        for metric, quantity in measures.items():
            if metric in LEVEL_METRICS:
                continue
            key = (day, district, metric)
            totals = groups.get(key)
            if totals is None:
                groups[key] = Totals(quantity, 1)
            else:
                totals.total += quantity
                totals.events += 1
    return groups

"""metric_weekly / metric_monthly: the same names and columns on plain PostgreSQL (views)
as on TimescaleDB (continuous aggregates), and the sums of the daily rollup."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from streams.db import connect
from streams.settings import Settings

pytestmark = pytest.mark.integration


def test_weekly_and_monthly_rollups_sum_the_daily_one(isolated: Settings) -> None:
    days = [
        (date(2024, 9, 29), "shifo", Decimal("10.5")),  # a Sunday: the week of 23 September
        (date(2024, 9, 30), "shifo", Decimal(20)),  # Monday: a new week, still September
        (date(2024, 10, 1), "shifo", Decimal(30)),  # same week, October
        (date(2024, 10, 1), "gouzhao", Decimal(7)),
    ]
    with connect(isolated) as conn:
        for day, district, total in days:
            conn.execute(
                "INSERT INTO metric_daily VALUES (%s, %s, 'heating.connected_area_m2', %s, 1)",
                (day, district, total),
            )
        weekly = conn.execute(
            "SELECT week, district, total, events FROM metric_weekly ORDER BY 1, 2"
        ).fetchall()
        monthly = conn.execute(
            "SELECT month, district, total, events FROM metric_monthly ORDER BY 1, 2"
        ).fetchall()
    assert weekly == [
        (date(2024, 9, 23), "shifo", Decimal("10.5"), 1),
        (date(2024, 9, 30), "gouzhao", Decimal(7), 1),
        (date(2024, 9, 30), "shifo", Decimal(50), 2),
    ]
    assert monthly == [
        (date(2024, 9, 1), "shifo", Decimal("30.5"), 2),
        (date(2024, 10, 1), "gouzhao", Decimal(7), 1),
        (date(2024, 10, 1), "shifo", Decimal(30), 1),
    ]

"""The weekly and monthly rollups at ten years' size, on each database engine.

``metric_weekly`` and ``metric_monthly`` are plain views summing ``metric_daily`` on both
engines (migrations 0006 and 0010): exact after every commit, late events included, where
TimescaleDB's continuous aggregates would lag a late event in a materialised bucket. This
measures what that costs: a schema's ``metric_daily`` gets ``years`` of daily rows for every
summed metric of the catalogue in every subdistrict (on TimescaleDB its chunks older than
730 days compressed, as migration 0002's policy would), then the period series a panel
would draw are timed, p50 / p95:

- one metric's weekly series over the whole span, and over its last year;
- one metric's monthly series over the whole span;
- every metric's monthly totals for one year (a year-end table).
"""

from __future__ import annotations

import statistics
import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from psycopg import sql

from schemas.districts import SUBDISTRICTS
from streams.db import connect
from streams.settings import Settings
from tests.bench.queries import compress_older, kinds

RUNS = 30
FIRST_DAY = date(2015, 1, 1)

QUERIES = {
    "weekly series, whole span": (
        "SELECT week, sum(total) FROM metric_weekly WHERE metric = %(metric)s "
        "GROUP BY week ORDER BY week"
    ),
    "weekly series, last year": (
        "SELECT week, sum(total) FROM metric_weekly WHERE metric = %(metric)s "
        "AND week >= %(year_ago)s GROUP BY week ORDER BY week"
    ),
    "monthly series, whole span": (
        "SELECT month, sum(total) FROM metric_monthly WHERE metric = %(metric)s "
        "GROUP BY month ORDER BY month"
    ),
    "every metric, monthly, one year": (
        "SELECT metric, month, sum(total) FROM metric_monthly "
        "WHERE month >= %(year_ago)s GROUP BY metric, month ORDER BY metric, month"
    ),
}


def fill(settings: Settings, years: int) -> int:
    """Write ``years`` of daily rollup rows; the number of rows."""
    metrics = sorted({metric for _, _, metric in kinds()})
    days = [FIRST_DAY + timedelta(days=n) for n in range(365 * years)]
    rows = 0
    with connect(settings) as conn:
        with conn.cursor().copy(
            "COPY metric_daily (day, district, metric, total, events) FROM STDIN"
        ) as copy:
            for i, day in enumerate(days):
                for j, district in enumerate(SUBDISTRICTS):
                    for k, metric in enumerate(metrics):
                        copy.write_row(
                            (day, district.value, metric, Decimal(1 + (i + j + k) % 97), 1)
                        )
                        rows += 1
        conn.commit()
        conn.execute("ANALYZE metric_daily")
        conn.commit()
    return rows


def compress(settings: Settings) -> int:
    """TimescaleDB: compress the rollup's chunks older than 730 days, as its policy would;
    the number of chunks. Plain PostgreSQL: 0."""
    return compress_older(settings, "metric_daily", "730 days")


def measure(settings: Settings, years: int) -> dict[str, Any]:
    """p50 / p95 of each query, and whether the views' totals equal metric_daily's."""
    metric = sorted({metric for _, _, metric in kinds()})[0]
    last = FIRST_DAY + timedelta(days=365 * years - 1)
    params = {"metric": metric, "year_ago": last - timedelta(days=365)}
    out: dict[str, Any] = {}
    with connect(settings) as conn:
        for name, query in QUERIES.items():
            conn.execute(query, params).fetchall()  # warm
            seconds = []
            for _ in range(RUNS):
                started = time.perf_counter()
                conn.execute(query, params).fetchall()
                seconds.append(time.perf_counter() - started)
            cuts = statistics.quantiles(seconds, n=20)
            out[name] = {
                "p50_ms": round(statistics.median(seconds) * 1000, 2),
                "p95_ms": round(cuts[18] * 1000, 2),
            }
        daily, weekly, monthly = (
            conn.execute(
                sql.SQL("SELECT sum(total) FROM {}").format(sql.Identifier(table))
            ).fetchone()
            for table in ("metric_daily", "metric_weekly", "metric_monthly")
        )
        out["views_equal_daily"] = daily == weekly == monthly
    return out

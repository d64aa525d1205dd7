"""Dashboard-style queries over a large ledger: rollup (metric_daily) against raw (events).

The ledger is filled in SQL (generate_series), not through Kafka: the question here is what
a 30-day daily panel costs once the ledger holds ``rows`` events, not how fast they arrive.
Rows spread over 2024 across every metric of the catalogue; ``metric_daily`` is built from
them with the same day rule the sink uses (the Asia/Shanghai calendar day).
"""

from __future__ import annotations

import statistics
import time
from datetime import date, timedelta
from typing import Any

from psycopg import sql
from rich.progress import Progress

from schemas.catalogue import load_catalogue
from services.settings import Settings
from streams.db import connect

CHUNK = 1_000_000

FILL = """
INSERT INTO events (event_id, event_type, schema_version, department, district, occurred_at,
                    reported_at, ingested_at, project, source_ref, measures, payload, topic,
                    partition, kafka_offset, prev_hash, hash)
SELECT lpad(to_hex(i), 32, '0')::uuid,
       kind.event_type, 1, kind.department,
       (ARRAY['shifo','gouzhao','fengyang','wutong','shuangqiao'])[1 + i %% 5],
       ts, ts + interval '6 hours', ts + interval '7 hours',
       'project ' || (i %% 5000), 'bench#' || i,
       jsonb_build_object(kind.metric, ((i %% 9973) + 1)::text),
       jsonb_build_object('event_type', kind.event_type, 'department', kind.department,
                          'project', 'project ' || (i %% 5000), 'quantity', (i %% 9973) + 1),
       %(namespace)s || 'city.' || kind.department || '.v1', (i %% 6)::int, i,
       '\\x00'::bytea, '\\x00'::bytea
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
CROSS JOIN LATERAL (
    SELECT ts FROM (SELECT timestamptz '2024-01-01 00:00+08'
                           + ((i * 7919) %% (366 * 86400)) * interval '1 second' AS ts) t
) AS t
JOIN (SELECT row_number() OVER () - 1 AS n, * FROM unnest(%(types)s::text[],
      %(departments)s::text[], %(metrics)s::text[]) AS k(event_type, department, metric)) AS kind
  ON kind.n = i %% %(kinds)s
"""

ROLLUP = """
INSERT INTO metric_daily (day, district, metric, total, events)
SELECT (occurred_at AT TIME ZONE 'Asia/Shanghai')::date, district, m.key,
       sum(m.value::numeric), count(*)
FROM events, jsonb_each_text(measures) AS m
GROUP BY 1, 2, 3
"""

ROLLUP_QUERY = """
SELECT day AS time, sum(total) AS value FROM metric_daily
WHERE metric = %s AND day BETWEEN %s AND %s
GROUP BY day ORDER BY day
"""

RAW_QUERY = """
SELECT (occurred_at AT TIME ZONE 'Asia/Shanghai')::date AS time,
       sum((measures ->> %s)::numeric) AS value
FROM events
WHERE event_type = ANY (%s) AND occurred_at >= %s AND occurred_at < %s
GROUP BY 1 ORDER BY 1
"""


def kinds() -> list[tuple[str, str, str]]:
    """(event_type, department, metric) for every event type that adds to a summed metric."""
    out = set()
    for metric in load_catalogue().metrics:
        if metric.aggregation != "sum":
            continue
        for event_type in (metric.produced_by, *metric.also_produced_by):
            if event_type is not None:
                out.add((event_type, event_type.partition(".")[0], metric.name))
    return sorted(out)


def fill(settings: Settings, rows: int) -> float:
    """Fill the ledger and the rollup; returns seconds taken."""
    started = time.monotonic()
    k = kinds()
    with connect(settings) as conn, Progress() as progress:
        task = progress.add_task(f"ledger rows (of {rows:,})", total=rows)
        for first in range(0, rows, CHUNK):
            last = min(rows, first + CHUNK) - 1
            with conn.transaction():
                conn.execute(
                    FILL,
                    {
                        "first": first,
                        "last": last,
                        "types": [t for t, _, _ in k],
                        "departments": [d for _, d, _ in k],
                        "metrics": [m for _, _, m in k],
                        "kinds": len(k),
                        "namespace": settings.topic_namespace,
                    },
                )
            progress.update(task, completed=last + 1)
        with conn.transaction():
            conn.execute(ROLLUP)
        conn.execute("ANALYZE events")
        conn.execute("ANALYZE metric_daily")
    return time.monotonic() - started


def _timed(conn: Any, query: str, params: tuple[Any, ...]) -> tuple[float, int]:
    started = time.perf_counter()
    rows = conn.execute(query, params).fetchall()
    return time.perf_counter() - started, len(rows)


def measure(settings: Settings, *, repeats: int = 20) -> dict[str, Any]:
    """p50/p95 per pledge of a 30-day daily series, from the rollup and from the raw ledger."""
    catalogue = load_catalogue()
    types_of: dict[str, list[str]] = {}
    for event_type, _, metric in kinds():
        types_of.setdefault(metric, []).append(event_type)
    out: dict[str, Any] = {}
    with connect(settings) as conn:
        conn.autocommit = True
        for pledge in catalogue.pledges:
            if pledge.metric not in types_of:
                continue
            end = min(pledge.deadline, date(2024, 12, 31))
            start = end - timedelta(days=29)
            times: dict[str, list[float]] = {"rollup": [], "raw": []}
            for _ in range(repeats):
                t, n = _timed(conn, ROLLUP_QUERY, (pledge.metric, start, end))
                times["rollup"].append(t)
                t, m = _timed(
                    conn,
                    RAW_QUERY,
                    (pledge.metric, types_of[pledge.metric], start, end + timedelta(days=1)),
                )
                times["raw"].append(t)
                if n != m:
                    raise AssertionError(f"{pledge.id}: rollup has {n} days, raw {m}")
            out[pledge.id] = {
                name: {
                    "p50_ms": round(statistics.median(v) * 1000, 2),
                    "p95_ms": round(statistics.quantiles(v, n=20)[-1] * 1000, 2),
                }
                for name, v in times.items()
            }
    return out


def table_size(settings: Settings, table: str) -> str:
    with connect(settings) as conn:
        row = conn.execute(
            sql.SQL("SELECT pg_size_pretty(pg_total_relation_size({}))").format(
                sql.Literal(f"{settings.db_schema}.{table}")
            )
        ).fetchone()
    return str(row[0]) if row else "?"

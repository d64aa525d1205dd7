"""The ledger at size, on each database engine: disk, dashboard queries, ``audit verify``.

For each engine the local stack runs — TimescaleDB (its main cluster, when the extension is
installed) and plain PostgreSQL (its plain cluster) — a fresh schema gets a ledger of
``rows`` events written the way the sink writes them: hash-chained per topic-partition in
offset order, ``ingested_at`` growing, with their ``event_keys`` and cursors, and
``metric_daily`` built from them by the sink's day rule. On TimescaleDB every ledger chunk
older than 30 days is then compressed, as the compression policy of migration 0010 would.
Then, on both:

- disk: the ledger (events, with its indexes and TOAST) and its key tables, and the rollup;
- the dashboards' queries that read the ledger (their SQL as the dashboard modules build it,
  expanded the way Grafana's PostgreSQL data source expands it) and the 30-day daily series
  per pledge from the rollup and from the raw ledger: p50 / p95;
- ``audit verify`` over the whole ledger.
"""

from __future__ import annotations

import hashlib
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from psycopg import sql
from psycopg.types.json import Jsonb, set_json_dumps
from rich.progress import Progress

from dashboards import audit, domain, pipeline
from dashboards.macros import Context, TimeRange, Variable, expand
from schemas.districts import SUBDISTRICTS
from schemas.seeds import load_catalogue
from streams.chain import GENESIS, canonical, link, payload_digest
from streams.db import connect
from streams.settings import Settings

PARTITIONS = 6
# Rows per sink-like batch: one ingested_at each, as the sink stamps a batch.
BATCH = 2_000
START = datetime(2024, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=366)

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

_LEDGER = (
    "event_id, event_type, schema_version, department, district, occurred_at, reported_at, "
    "ingested_at, project, source_ref, measures, payload, topic, incarnation, partition, "
    "kafka_offset, prev_hash, hash"
)
_KEYS = "event_id, ingested_at, topic, incarnation, partition, kafka_offset, digest"


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
    """Write a chained ledger of ``rows`` events, its keys, cursors and rollup; seconds."""
    started = time.monotonic()
    k = kinds()
    heads: dict[tuple[str, int], tuple[int, bytes]] = {}
    step = YEAR / max(rows, 1)
    with connect(settings) as conn, Progress() as progress:
        set_json_dumps(orjson.dumps, conn)
        task = progress.add_task(f"ledger rows (of {rows:,})", total=rows)
        for first in range(0, rows, BATCH * 25):
            with conn.transaction():
                ledger, keys = [], []
                for i in range(first, min(rows, first + BATCH * 25)):
                    ledger_row, key_row = _row(
                        settings, i, k, heads, START + (i // BATCH) * BATCH * step
                    )
                    ledger.append(ledger_row)
                    keys.append(key_row)
                _copy(conn, "events", _LEDGER, ledger)
                _copy(conn, "event_keys", _KEYS, keys)
            progress.update(task, completed=min(rows, first + BATCH * 25))
        with conn.transaction():
            conn.execute(
                """INSERT INTO consumer_offsets
                       (topic, incarnation, partition, next_offset, last_hash)
                   SELECT * FROM unnest(
                       %s::text[], %s::int[], %s::int[], %s::bigint[], %s::bytea[])""",
                (
                    [t for t, _ in heads],
                    [1] * len(heads),
                    [p for _, p in heads],
                    [n for n, _ in heads.values()],
                    [h for _, h in heads.values()],
                ),
            )
            conn.execute(ROLLUP)
        conn.execute("ANALYZE events")
        conn.execute("ANALYZE event_keys")
        conn.execute("ANALYZE metric_daily")
    return time.monotonic() - started


def _row(
    settings: Settings,
    i: int,
    k: list[tuple[str, str, str]],
    heads: dict[tuple[str, int], tuple[int, bytes]],
    ingested_at: datetime,
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    event_type, department, metric = k[i % len(k)]
    event_id = uuid.UUID(int=i + 1)
    occurred_at = ingested_at - timedelta(seconds=(i * 7919) % (30 * 86400))
    district = SUBDISTRICTS[i % len(SUBDISTRICTS)]
    project = f"project {i % 5000}"
    quantity = str((i % 9973) + 1)
    payload = {
        "event_type": event_type,
        "event_id": str(event_id),
        "schema_version": 1,
        "department": department,
        "district": district,
        "occurred_at": occurred_at.isoformat(),
        "reported_at": ingested_at.isoformat(),
        "project": project,
        "source_ref": f"bench#{i}",
        "quantity": quantity,
    }
    measures = {metric: quantity}
    topic = settings.topic_name(f"city.{department}.v1")
    partition = hashlib.blake2b(project.encode(), digest_size=1).digest()[0] % PARTITIONS
    offset, prev = heads.get((topic, partition), (0, GENESIS))
    content = canonical(
        event_id=event_id,
        topic=topic,
        partition=partition,
        offset=offset,
        ingested_at=ingested_at,
        payload=payload,
        measures=measures,
    )
    digest = link(prev, content)
    heads[(topic, partition)] = (offset + 1, digest)
    return (
        (
            event_id,
            event_type,
            1,
            department,
            district,
            occurred_at,
            ingested_at,
            ingested_at,
            project,
            payload["source_ref"],
            Jsonb(measures),
            Jsonb(payload),
            topic,
            1,
            partition,
            offset,
            prev,
            digest,
        ),
        (event_id, ingested_at, topic, 1, partition, offset, payload_digest(payload)),
    )


def _copy(conn: Any, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), sql.SQL(columns))
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def compress(settings: Settings) -> tuple[int, float]:
    """TimescaleDB: compress the ledger chunks older than 30 days, as the policy would;
    (chunks compressed, seconds). Plain PostgreSQL: nothing."""
    started = time.monotonic()
    chunks = compress_older(settings, "events", "30 days")
    return chunks, time.monotonic() - started


def compress_older(settings: Settings, table: str, older_than: str) -> int:
    """TimescaleDB: compress ``table``'s chunks older than ``older_than`` (an interval), as
    its compression policy would; the number of chunks (0 where it is no hypertable). As the
    admin: compressing alters the hypertable, which only its owner may (the policy's job runs
    as citystream_owner); the workers' role may only append to the ledger."""
    with connect(settings, admin=True) as conn:
        if table not in hypertables(conn, settings):
            return 0
        chunks = conn.execute(
            sql.SQL("SELECT public.show_chunks({}, older_than => {}::interval)").format(
                sql.Literal(f"{settings.db_schema}.{table}"), sql.Literal(older_than)
            )
        ).fetchall()
        conn.commit()
        for (chunk,) in chunks:
            conn.execute(
                "SELECT public.compress_chunk(%s::regclass, if_not_compressed => true)", (chunk,)
            )
            conn.commit()
    return len(chunks)


def hypertables(conn: Any, settings: Settings) -> set[str]:
    """The hypertables of the schema; none where the database has no TimescaleDB."""
    found = conn.execute("SELECT to_regclass('timescaledb_information.hypertables')").fetchone()
    if found == (None,):
        return set()
    return {
        row[0]
        for row in conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables "
            "WHERE hypertable_schema = %s",
            (settings.db_schema,),
        )
    }


def sizes(settings: Settings) -> dict[str, int]:
    """Bytes on disk: the ledger (events with its indexes, TOAST and, on TimescaleDB, every
    chunk, compressed or not), its key tables, and the daily rollup."""
    out: dict[str, int] = {}
    with connect(settings) as conn:
        hyper = hypertables(conn, settings)
        for table in ("events", "event_keys", "correction_keys", "metric_daily"):
            name = f"{settings.db_schema}.{table}"
            query = (
                "SELECT public.hypertable_size(%s::regclass)"
                if table in hyper
                else "SELECT pg_total_relation_size(%s::regclass)"
            )
            row = conn.execute(query, (name,)).fetchone()
            out[table] = int(row[0]) if row and row[0] is not None else 0
    return out


def dashboard_queries() -> dict[str, str]:
    """The dashboards' queries that read the ledger (not only the rollup), expanded for a
    dashboard over 2024 (the pipeline board: one day of it)."""
    everywhere = Variable("subdistrict", tuple(SUBDISTRICTS), multi=True, include_all=True)
    year = Context(
        TimeRange.of(START, START + YEAR),
        interval=timedelta(days=1),
        variables={"subdistrict": everywhere},
    )
    day = Context(
        TimeRange.of(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 2, tzinfo=UTC)),
        interval=timedelta(minutes=1),
    )
    return {
        "pipeline: accepted in a day": expand(pipeline.ACCEPTED, day),
        "pipeline: throughput per minute in a day": expand(pipeline.THROUGHPUT, day),
        "pipeline: freshness": expand(pipeline.FRESHNESS, day),
        "pipeline: progress per partition": expand(pipeline.PARTITIONS, day),
        "heating: latest ledger rows": expand(domain.latest_events("heating"), year),
        "audit: hash chain status": expand(audit.CHAIN_STATUS, year),
    }


def _timed(run: Callable[[], int], repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return {
        "p50_ms": round(statistics.median(times) * 1000, 2),
        "p95_ms": round(statistics.quantiles(times, n=20)[-1] * 1000, 2)
        if len(times) > 1
        else round(times[0] * 1000, 2),
    }


def measure(settings: Settings, *, repeats: int = 20, heavy_repeats: int = 5) -> dict[str, Any]:
    """p50/p95 of each dashboard query on the ledger, and per pledge of a 30-day daily
    series from the rollup and from the raw ledger."""
    catalogue = load_catalogue()
    types_of: dict[str, list[str]] = {}
    for event_type, _, metric in kinds():
        types_of.setdefault(metric, []).append(event_type)
    out: dict[str, Any] = {"dashboards": {}, "per_pledge": {}}
    with connect(settings) as conn:
        conn.autocommit = True
        for name, query in dashboard_queries().items():
            out["dashboards"][name] = _timed(
                lambda q=query: len(conn.execute(q.encode()).fetchall()), heavy_repeats
            )
        for pledge in catalogue.pledges:
            if pledge.metric not in types_of:
                continue
            end = min(pledge.deadline, date(2024, 12, 31))
            start = end - timedelta(days=29)
            rollup_params = (pledge.metric, start, end)
            raw_params = (pledge.metric, types_of[pledge.metric], start, end + timedelta(days=1))
            out["per_pledge"][pledge.id] = {
                "rollup": _timed(
                    lambda p=rollup_params: len(conn.execute(ROLLUP_QUERY, p).fetchall()), repeats
                ),
                "raw": _timed(
                    lambda p=raw_params: len(conn.execute(RAW_QUERY, p).fetchall()), repeats
                ),
            }
    return out


def verify_seconds(settings: Settings) -> dict[str, Any]:
    from services.audit.verify import verify

    started = time.monotonic()
    report = verify(settings)
    seconds = time.monotonic() - started
    return {
        "rows": report.rows,
        "seconds": round(seconds, 1),
        "rows_per_s": round(report.rows / seconds),
        "breaks": len(report.breaks),
    }

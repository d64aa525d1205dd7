"""End-to-end runs: producer → Kafka → worker process → rollup visible in PostgreSQL.

"Visible" means the worker's transaction that holds an event's rollup has committed; the
same transaction stores the partition's next offset, so polling ``consumer_offsets`` tells
exactly when each offset became visible.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from schemas.topics import HEATING
from services.kafka.acls import remove_grants
from services.kafka.producer import Producer
from services.kafka.topics import end_offsets, ensure_topics
from streams.db import connect
from streams.db.migrate import migrate
from streams.settings import Settings
from tests.conftest import drop_topics, settings_env

ROOT = Path(__file__).resolve().parents[2]


def isolated(base: Settings, label: str, **overrides: Any) -> Settings:
    suffix = f"{label}_{uuid.uuid4().hex[:6]}"
    settings = base.model_copy(
        update={
            "db_schema": f"bench_{suffix}",
            "topic_namespace": f"bench{suffix}.",
            "consumer_group": f"citystream-bench-{suffix}",
            "metrics_port": 0,
            **overrides,
        }
    )
    list(migrate(settings))
    ensure_topics(settings)
    return settings


def drop(settings: Settings) -> None:
    """Drop the run's schema, the ACLs its topic namespace was given, and its topics (a
    million-record backlog is a gigabyte of log the broker would keep)."""
    # The owner role owns the schema; only the admin connection may drop it.
    url = settings.admin_database_url or settings.database_url
    try:
        with psycopg.connect(url.get_secret_value(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(settings.db_schema))
            )
    finally:
        try:
            remove_grants(settings)
        finally:
            drop_topics(settings)


def start_child(
    argv: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A benchmarked process (a worker, a peer), its output to ``log``."""
    return subprocess.Popen(
        list(argv),
        env=None if env is None else dict(env),
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def stop_child(proc: subprocess.Popen[bytes], *, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Process:
    """A worker (ours or the naive baseline) as a child process."""

    def __init__(self, settings: Settings, module: str, log: Path) -> None:
        self.log = log
        argv = (
            [sys.executable, "-m", "services.cli", "worker"]
            if module == "services.cli"
            else [sys.executable, "-m", module]
        )
        self.proc = start_child(argv, log, env=settings_env(settings))

    def stop(self) -> None:
        stop_child(self.proc, timeout_s=30)


def visible_offsets(conn: psycopg.Connection[Any], topic: str) -> dict[int, int]:
    rows = conn.execute(
        "SELECT partition, next_offset FROM consumer_offsets WHERE topic = %s", (topic,)
    ).fetchall()
    return {int(p): int(o) for p, o in rows}


def wait_visible(settings: Settings, ends: dict[int, int], *, timeout_s: float) -> float:
    """Block until every partition's stored offset reaches ``ends``; the monotonic time."""
    topic = settings.topic_name(HEATING.name)
    deadline = time.monotonic() + timeout_s
    with connect(settings) as conn:
        conn.autocommit = True
        while True:
            seen = visible_offsets(conn, topic)
            if all(seen.get(p, 0) >= end for p, end in ends.items() if end > 0):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(f"not visible after {timeout_s:.0f} s: {seen} < {ends}")
            time.sleep(0.02)


def wait_rows(settings: Settings, table: str, count: int, *, timeout_s: float) -> float:
    """For the naive baseline, which keeps no offsets: block until ``table`` has ``count``."""
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    deadline = time.monotonic() + timeout_s
    with connect(settings) as conn:
        conn.autocommit = True
        while True:
            row = conn.execute(query).fetchone()
            if row is not None and int(row[0]) >= count:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{table} has {row} rows after {timeout_s:.0f} s, not {count}")
            time.sleep(0.05)


@dataclass
class Sent:
    started: float
    finished: float
    # (partition, offset, monotonic send time) per record, when asked for
    stamps: list[tuple[int, int, float]]
    ends: dict[int, int]


def produce(
    settings: Settings,
    records: Sequence[tuple[bytes, bytes]],
    *,
    rate: float | None = None,
    stamps: bool = False,
) -> Sent:
    """Send ``records``, as fast as possible or paced at ``rate`` per second."""
    producer = Producer(settings)
    topic = HEATING.name
    out: list[tuple[int, int, float]] = []
    lock = threading.Lock()
    ends: dict[int, int] = {}

    def acked(sent_at: float) -> Any:
        def callback(meta: Any) -> None:
            with lock:
                out.append((meta.partition, meta.offset, sent_at))
                ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)

        return callback

    started = time.monotonic()
    tick = 1000
    futures = []
    for i, (key, value) in enumerate(records):
        if rate is not None and i % tick == 0:
            # Pace in small slices: at most ``tick`` records ahead of the schedule.
            ahead = started + i / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        now = time.monotonic()
        future = producer.send_raw(topic, value, key)
        if stamps:
            future.add_callback(acked(now))
        else:
            # No callback per record: in the throughput run the producer shares the two
            # cores with the worker, and only the partitions' end offsets are needed.
            futures.append(future)
    producer.flush()
    finished = time.monotonic()
    producer.close()
    failed = sum(1 for future in futures if future.failed())
    if failed:
        raise AssertionError(f"{failed} benchmark records were not delivered")
    if not stamps:
        ends = end_offsets(settings, topic, principal="admin")
    return Sent(started, finished, out if stamps else [], ends)


class OffsetPoller(threading.Thread):
    """Samples ``consumer_offsets`` every 20 ms: when each offset became visible."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.samples: list[tuple[float, dict[int, int]]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        topic = self.settings.topic_name(HEATING.name)
        with connect(self.settings) as conn:
            conn.autocommit = True
            while not self.stopping.is_set():
                seen = visible_offsets(conn, topic)
                self.samples.append((time.monotonic(), seen))
                time.sleep(0.02)

    def latencies(self, stamps: list[tuple[int, int, float]]) -> list[float]:
        by_partition: dict[int, list[tuple[int, float]]] = {}
        for partition, offset, sent_at in stamps:
            by_partition.setdefault(partition, []).append((offset, sent_at))
        result = []
        for partition, items in by_partition.items():
            items.sort()
            i = 0
            for when, seen in self.samples:
                reached = seen.get(partition, 0)
                while i < len(items) and items[i][0] < reached:
                    result.append(when - items[i][1])
                    i += 1
            if i < len(items):
                raise AssertionError(f"partition {partition}: {len(items) - i} never visible")
        return result

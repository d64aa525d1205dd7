"""CityStream's worker against what a data engineer already knows, on one backlog.

``N`` heating events (tests/bench/workload.py ``heating_records``, seed 7) are produced
before any consumer starts, then drained into the stack's PostgreSQL by one consumer process
each, one after the other:

- ``citystream``: ``citystream worker`` (validation, ledger with hash chains, rollups,
  offsets in PostgreSQL, dead letters, receipts);
- ``kafka_connect``: Kafka Connect 3.9.1 standalone + Debezium JDBC sink 3.1.2.Final
  (tests/bench/peers/connect.py); its topic holds the same events wrapped in
  ``{schema, payload}``, which its JSON converter needs;
- ``quixstreams``: quixstreams 3.28.1 + its ``PostgreSQLSink`` (tests/bench/peers/quix.py).

Each has its own topic namespace, consumer group and ACLs (``pipeline.isolated``: every
client logs in as the workers' principal) and its own schema; the peers write one table
there, typed from the event and keyed by ``event_id`` (upsert), as the workers' database
role. Per consumer: events/s from its process start and from its first visible row to its
last; its process tree's CPU seconds and PostgreSQL's (the stack's postmaster, its backends
and background workers) over the drain, per event; then ``count(*) = N``, the rows' Σ area
and Σ of both timestamps equal to the events', and after ``RESEND`` of the records are sent
again, still ``N`` (for a peer, with how many of those rows the upsert rewrote).

"Visible": CityStream's stored offsets reach each partition's end (pipeline.wait_visible's
rule); a peer's table holds each partition's last record (each consumer writes a partition
in order, so the last one there means the partition is done) — a primary-key probe every
20 ms, cheap next to a ``count(*)`` over a growing table.

Between drains the finished consumer's schema, ACLs and topics are dropped, PostgreSQL is
checkpointed and the kernel's dirty pages written out, so neither its autovacuum nor its
dirty buffers land on the next one's PostgreSQL CPU, nor its writeback on its wall time.
Logs: ``out/bench-peer-<consumer>.log``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import orjson
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from schemas.heating import CONNECTED_AREA_M2
from schemas.topics import HEATING
from services.kafka.client import kafka_client
from services.stack import state
from streams.db import connect
from streams.settings import Settings
from tests.bench import pipeline
from tests.bench.peers import connect as connect_peer
from tests.bench.peers import cpu, install
from tests.bench.peers import quix as quix_peer
from tests.bench.workload import heating_records

ROOT = Path(__file__).resolve().parents[3]
OUT = ROOT / "out"
SEED = 7
RESEND = 10_000
TABLE = "heating_area_connected"
POLL_S = 0.02
TIMEOUT_S = 3600.0
TITLES = {
    "citystream": "CityStream worker",
    "kafka_connect": "Kafka Connect 3.9.1 + Debezium JDBC sink 3.1.2",
    "quixstreams": "quixstreams 3.28.1 + PostgreSQLSink",
}
# The printed table's column heads.
SHORT = {
    "citystream": "CityStream worker",
    "kafka_connect": "Connect + Debezium JDBC",
    "quixstreams": "quixstreams",
}
# How each consumer was run (besides logging in as the workers' principal and role).
SETUP = {
    "citystream": "citystream worker, one process, the project's settings (batch_size, "
    "batch_wait_s as in out/bench.json: worker)",
    "kafka_connect": (
        "ConnectStandalone, 1 task, JsonConverter schemas.enable=true, insert.mode=upsert, "
        "primary.key.mode=record_value on event_id, schema.evolution=none, batch.size=2000, "
        "consumer max.poll.records=2000, offset.flush.interval.ms=1000, "
        "plugin.discovery=service_load, JDBC URL ?stringtype=unspecified, "
        "connect-standalone.sh's JVM options (-Xmx2g, G1)"
    ),
    "quixstreams": (
        "Application(processing_guarantee=at-least-once, commit_interval=1 s, "
        "auto_offset_reset=earliest) → PostgreSQLSink(upsert_on_primary_key=True, "
        "primary_key_columns=event_id, include_metadata=False, schema_auto_update=False); "
        "its CREATE SCHEMA IF NOT EXISTS at setup skipped (the role may not create schemas); "
        "one more grant: DESCRIBE_CONFIGS on its topic, which it reads at start"
    ),
}
# What each consumer does with a record, and does not: printed beside the figures.
GUARANTEES = {
    "citystream": (
        "validates every record (schema, bounds, the department against the topic's "
        "principal) and dead-letters what fails, with the reason; ledger row + hash chain + "
        "daily rollup + the partition's next offset in one transaction, so a redelivery "
        "resumes exactly; a re-sent event_id is skipped (first write wins, the rollup "
        "counts it once); receipts per record for the department"
    ),
    "kafka_connect": (
        "checks only that each record matches the schema it carries; a record PostgreSQL "
        "refuses (a bad uuid, date or number) is retried, then stops the task "
        "(errors.tolerance=none; a dead-letter topic would need errors.tolerance=all and "
        "its own grant); a re-sent event_id rewrites its row (last write wins); offsets "
        "in Kafka, committed after the writes: at least once"
    ),
    "quixstreams": (
        "checks only that each value is JSON; a record that fails to deserialize or to "
        "write stops the app (default error callbacks), no dead letters; a re-sent "
        "event_id rewrites its row (last write wins; duplicates in one batch collapsed); "
        "offsets in Kafka, committed after the sink's flush: at least once"
    ),
}


class Running(Protocol):
    proc: subprocess.Popen[bytes]

    def stop(self) -> None: ...


@dataclass
class Contender:
    key: str
    settings: Settings
    records: list[tuple[bytes, bytes]]
    # The peer's table in its schema; None: CityStream's own tables.
    table: str | None
    start: Callable[[Path], Running]
    ends: dict[int, int] = field(default_factory=dict)
    last_ids: list[str] = field(default_factory=list)
    dropped: bool = False

    def drop(self) -> None:
        """Its schema, ACLs and topics: gone before the next drain, so PostgreSQL's
        autovacuum of this table and the broker's files for a million records do not
        weigh on the next consumer's figures (nor stay on disk)."""
        if self.dropped:
            return
        self.dropped = True
        pipeline.drop(self.settings)


def _role(settings: Settings) -> str:
    return str(conninfo_to_dict(settings.database_url.get_secret_value())["user"])


def _make_table(settings: Settings) -> None:
    """The peer's table, typed from the event, writable (upsert) by the workers' role."""
    table = sql.Identifier(settings.db_schema, TABLE)
    with connect(settings, admin=True, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                """CREATE TABLE {} (
                       event_id uuid PRIMARY KEY,
                       event_type text NOT NULL,
                       department text NOT NULL,
                       district text NOT NULL,
                       occurred_at timestamptz NOT NULL,
                       reported_at timestamptz NOT NULL,
                       project text,
                       source_ref text,
                       area_m2 numeric
                   )"""
            ).format(table)
        )
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE ON {} TO {}").format(
                table, sql.Identifier(_role(settings))
            )
        )


def _checkpoint(settings: Settings) -> None:
    """Write out what earlier work left dirty in PostgreSQL's buffers, so that the next drain's
    PostgreSQL CPU is its own; then the kernel's dirty pages. A drain leaves ~1.5 GB of them
    (the ledger's files, WAL, the receipts' log segments), and producing the backlogs as
    much: the kernel writes them out ~30 s later, in the middle of the next drain, whose wall
    time then paid for the one before (Dirty in /proc/meminfo grew by ~450 MB during a
    300,000-event drain)."""
    with connect(settings, admin=True, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    os.sync()


def _postmaster(settings: Settings) -> int | None:
    """The PID of the stack's PostgreSQL that ``settings`` writes to; None when it is not the
    local stack's (then its CPU cannot be read here)."""
    info = conninfo_to_dict(settings.database_url.get_secret_value())
    address = f"{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}"
    for component in state.load().values():
        if component.address == address and component.name.startswith("postgres"):
            return component.pid if component.running() else None
    return None


def _event_id(value: bytes) -> str:
    body = orjson.loads(value)
    return str(body["payload"]["event_id"] if "payload" in body else body["event_id"])


def _last_event_ids(settings: Settings, ends: dict[int, int]) -> list[str]:
    """The event_id of each partition's last record, read back as the workers' principal."""
    topic = settings.topic_name(HEATING.name)
    consumer = kafka_client(
        KafkaConsumer,
        settings,
        "worker",
        timeout_s=30,
        enable_auto_commit=False,
        client_id="citystream-bench-peek",
    )
    try:
        wanted = {p: end - 1 for p, end in ends.items() if end > 0}
        tps = [TopicPartition(topic, p) for p in sorted(wanted)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, wanted[tp.partition])
        found: dict[int, str] = {}
        deadline = time.monotonic() + 60
        while len(found) < len(wanted):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read the last records of {topic}")
            for tp, messages in consumer.poll(timeout_ms=1000).items():
                for message in messages:
                    if message.offset == wanted[tp.partition]:
                        found[tp.partition] = _event_id(message.value)
        return [found[p] for p in sorted(found)]
    finally:
        consumer.close(autocommit=False)


def _committed(
    settings: Settings, consumer: KafkaConsumer, partitions: list[int]
) -> dict[int, int]:
    topic = settings.topic_name(HEATING.name)
    return {p: consumer.committed(TopicPartition(topic, p)) or 0 for p in partitions}


class Probe:
    """Polls what a consumer has made visible: (any row yet, every partition done)."""

    def __init__(self, contender: Contender) -> None:
        self.contender = contender
        self.conn = connect(contender.settings, autocommit=True)
        self.topic = contender.settings.topic_name(HEATING.name)
        if contender.table is not None:
            self.query = sql.SQL(
                "SELECT EXISTS (SELECT 1 FROM {t}), "
                "(SELECT count(*) FROM {t} WHERE event_id = ANY(%s::uuid[]))"
            ).format(t=sql.Identifier(contender.settings.db_schema, contender.table))

    def __call__(self) -> tuple[bool, bool]:
        c = self.contender
        if c.table is None:
            seen = pipeline.visible_offsets(self.conn, self.topic)
            done = all(seen.get(p, 0) >= end for p, end in c.ends.items() if end > 0)
            return bool(seen), done
        row = self.conn.execute(self.query, (c.last_ids,)).fetchone()
        assert row is not None
        return bool(row[0]), int(row[1]) == len(c.last_ids)

    def close(self) -> None:
        self.conn.close()


def _count(contender: Contender) -> int:
    table = sql.Identifier(contender.settings.db_schema, contender.table or "events")
    with connect(contender.settings, autocommit=True) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    return int(row[0]) if row else 0


def expected_sums(records: list[tuple[bytes, bytes]]) -> tuple[Decimal, Decimal, Decimal]:
    """(Σ area_m2, Σ occurred_at, Σ reported_at as epoch seconds) of the events sent."""
    area = occurred = reported = Decimal(0)
    for _, value in records:
        body = orjson.loads(value)
        area += Decimal(body["area_m2"])
        occurred += int(datetime.fromisoformat(body["occurred_at"]).timestamp())
        reported += int(datetime.fromisoformat(body["reported_at"]).timestamp())
    return area, occurred, reported


def _sums(contender: Contender) -> tuple[Decimal, Decimal, Decimal]:
    """The same sums over what the consumer wrote: a peer's table; CityStream's ledger
    (times) and rollup (area)."""
    schema = contender.settings.db_schema
    times = sql.SQL(
        "SELECT sum(extract(epoch FROM occurred_at)), sum(extract(epoch FROM reported_at)) FROM {}"
    ).format(sql.Identifier(schema, contender.table or "events"))
    with connect(contender.settings, autocommit=True) as conn:
        if contender.table is None:
            area_row = conn.execute(
                sql.SQL("SELECT sum(total) FROM {} WHERE metric = %s").format(
                    sql.Identifier(schema, "metric_daily")
                ),
                (CONNECTED_AREA_M2,),
            ).fetchone()
        else:
            area_row = conn.execute(
                sql.SQL("SELECT sum(area_m2) FROM {}").format(
                    sql.Identifier(schema, contender.table)
                )
            ).fetchone()
        time_row = conn.execute(times).fetchone()
    assert area_row is not None and time_row is not None
    return Decimal(area_row[0] or 0), Decimal(time_row[0] or 0), Decimal(time_row[1] or 0)


def _versions(contender: Contender, ids: list[str]) -> dict[str, str]:
    """event_id → xmin of the peer's rows: an upsert that rewrites a row changes its xmin."""
    assert contender.table is not None
    table = sql.Identifier(contender.settings.db_schema, contender.table)
    with connect(contender.settings, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT event_id::text, xmin::text FROM {} WHERE event_id = ANY(%s::uuid[])"
            ).format(table),
            (ids,),
        ).fetchall()
    return {str(event_id): str(xmin) for event_id, xmin in rows}


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


def _drain(
    contender: Contender, postmaster: int | None, expected: tuple[Decimal, Decimal, Decimal]
) -> dict[str, Any]:
    """Start the consumer on its backlog, time it to the last visible row, then check the
    rows and send ``RESEND`` records again."""
    n = len(contender.records)
    log = OUT / f"bench-peer-{contender.key}.log"
    probe = Probe(contender)
    running: Running | None = None
    try:
        pg_before = cpu.tree_seconds(postmaster) if postmaster is not None else None
        started = time.monotonic()
        running = contender.start(log)
        first: float | None = None
        while True:
            if running.proc.poll() is not None:
                raise RuntimeError(
                    f"{contender.key} exited with code {running.proc.returncode}:\n{_tail(log)}"
                )
            anything, done = probe()
            now = time.monotonic()
            if anything and first is None:
                first = now
            if done:
                last = now
                break
            if now - started > TIMEOUT_S:
                raise TimeoutError(f"{contender.key}: not drained after {TIMEOUT_S:.0f} s")
            time.sleep(POLL_S)
        consumer_cpu = cpu.tree_seconds(running.proc.pid)
        pg_cpu = (
            cpu.tree_seconds(postmaster) - pg_before
            if postmaster is not None and pg_before is not None
            else None
        )
        assert first is not None
        rows = _count(contender)
        resent = contender.records[: min(RESEND, n)]
        before = _versions(contender, [_event_id(v) for _, v in resent]) if contender.table else {}
        sent = pipeline.produce(contender.settings, resent)
        _wait_resent(contender, sent.ends, running, log)
        after = _versions(contender, list(before)) if contender.table else {}
        rows_after = _count(contender)
        sums = _sums(contender)
    finally:
        probe.close()
        if running is not None:
            running.stop()
    out: dict[str, Any] = {
        "title": TITLES[contender.key],
        "events": n,
        "seconds_from_start": round(last - started, 2),
        "events_per_s_from_start": round(n / (last - started)),
        "first_row_after_s": round(first - started, 2),
        "seconds_from_first_row": round(last - first, 2),
        "events_per_s_from_first_row": round(n / max(last - first, 1e-3)),
        "consumer_cpu_s": round(consumer_cpu, 2),
        "consumer_cpu_us_per_event": round(consumer_cpu / n * 1e6, 1),
        "postgres_cpu_s": round(pg_cpu, 2) if pg_cpu is not None else None,
        "postgres_cpu_us_per_event": round(pg_cpu / n * 1e6, 1) if pg_cpu is not None else None,
        "rows": rows,
        "resent": len(resent),
        "rows_after_resend": rows_after,
        "all_landed": rows == n,
        "resend_added_nothing": rows_after == n,
        # Σ area_m2 and Σ of both timestamps equal those of the events sent: the rows hold
        # the events' values, typed (numeric, timestamptz), not just N rows.
        "values_match": sums == expected,
        "setup": SETUP[contender.key],
        "guarantees": GUARANTEES[contender.key],
    }
    if contender.table is not None:
        out["resent_rows_rewritten"] = sum(1 for k, v in after.items() if before.get(k) != v)
    return out


def _wait_resent(contender: Contender, ends: dict[int, int], running: Running, log: Path) -> None:
    """Until the consumer has dealt with the records sent again: CityStream's stored offsets,
    a peer's committed offsets (each commits only after its sink wrote)."""
    if contender.table is None:
        pipeline.wait_visible(contender.settings, ends, timeout_s=600)
        return
    consumer = kafka_client(
        KafkaConsumer,
        contender.settings,
        "worker",
        timeout_s=30,
        group_id=contender.settings.consumer_group,
        enable_auto_commit=False,
        client_id="citystream-bench-offsets",
    )
    try:
        deadline = time.monotonic() + 600
        partitions = sorted(ends)
        while True:
            if running.proc.poll() is not None:
                raise RuntimeError(f"{contender.key} exited:\n{_tail(log)}")
            seen = _committed(contender.settings, consumer, partitions)
            if all(seen.get(p, 0) >= end for p, end in ends.items()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{contender.key}: re-sent records not committed: {seen}")
            time.sleep(0.25)
    finally:
        consumer.close(autocommit=False)


def measure(
    base: Settings, count: int, *, rounds: int = 1, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """The three consumers on ``count`` events, ``rounds`` times. Each round produces fresh
    backlogs and drains them in turn, every other round in the reverse order, so that a
    slower spell of the machine (a run-to-run spread of ±10–20% is common on the 2-core
    machine) does not always fall on the same consumer. ``consumers`` holds each one's
    median round; ``rounds`` every round's figures."""
    started = time.monotonic()
    progress("  installing the peers (once; cached in .bench/)…")
    install.all_peers()
    install_s = time.monotonic() - started
    records = heating_records(count, seed=SEED)
    wrapped = connect_peer.wrap(records)
    runs: list[dict[str, Any]] = []
    produced: dict[str, Any] = {}
    postmaster = _postmaster(base)
    for number in range(rounds):
        order = KEYS if number % 2 == 0 else KEYS[::-1]
        if rounds > 1:
            progress(f"  round {number + 1} of {rounds}: {', '.join(order)}")
        produced, consumers = _round(base, records, wrapped, order, postmaster, progress)
        _ratios(consumers)
        runs.append({"order": list(order), "consumers": consumers})
    consumers = _median_rounds(runs)
    _ratios(consumers)
    return {
        "events": count,
        "seed": SEED,
        "backlog": (
            "produced before any consumer started: the same events on CityStream's and "
            "quixstreams' topics, and wrapped in {schema, payload} on Connect's own topic "
            "(Debezium's JDBC sink needs records with schemas)"
        ),
        "produced": produced,
        "install_seconds": round(install_s, 1),
        "postgres_cpu_measured": postmaster is not None,
        "ratio_to_citystream": (
            "each consumer's figure ÷ CityStream's: for events/s above 1 is faster than "
            "CityStream, for CPU µs/event above 1 is more CPU per event"
        ),
        "consumers": consumers,
        "rounds": runs,
    }


KEYS = ("citystream", "kafka_connect", "quixstreams")


def _round(
    base: Settings,
    records: list[tuple[bytes, bytes]],
    wrapped: list[tuple[bytes, bytes]],
    order: tuple[str, ...],
    postmaster: int | None,
    progress: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One round: each consumer's backlog produced, then drained in ``order``."""
    count = len(records)
    contenders: dict[str, Contender] = {}
    try:
        ours = pipeline.isolated(base, "peer_ours")
        contenders["citystream"] = Contender(
            "citystream",
            ours,
            records,
            None,
            lambda log: pipeline.Process(ours, "services.cli", log),
        )
        contenders["kafka_connect"] = _peer(
            base, "kafka_connect", "peer_connect", wrapped, connect_peer.ConnectPeer
        )
        contenders["quixstreams"] = _peer(
            base, "quixstreams", "peer_quix", records, quix_peer.QuixPeer
        )
        quix_peer.grant(contenders["quixstreams"].settings)
        produced: dict[str, Any] = {}
        for contender in contenders.values():
            progress(f"  producing the backlog for {contender.key}: {count:,} records…")
            sent = pipeline.produce(contender.settings, contender.records)
            contender.ends = sent.ends
            if contender.table is not None:
                contender.last_ids = _last_event_ids(contender.settings, sent.ends)
            produced[contender.key] = {
                "topic": contender.settings.topic_name(HEATING.name),
                "bytes_per_event": round(sum(len(v) for _, v in contender.records) / count),
                "producer_events_per_s": round(count / (sent.finished - sent.started)),
            }
        expected = expected_sums(records)
        consumers: dict[str, Any] = {}
        for key in order:
            contender = contenders[key]
            progress(f"  draining with {TITLES[key]}…")
            _checkpoint(base)
            try:
                consumers[key] = _drain(contender, postmaster, expected)
            except Exception as exc:  # one peer failing still leaves the others' figures
                consumers[key] = {"title": TITLES[key], "error": str(exc)}
            finally:
                contender.drop()
    finally:
        for contender in contenders.values():
            contender.drop()
    return produced, {key: consumers[key] for key in KEYS if key in consumers}


class _PeerProcess(Protocol):
    def __call__(self, settings: Settings, *, schema: str, table: str, log: Path) -> Running: ...


def _peer(
    base: Settings,
    key: str,
    label: str,
    records: list[tuple[bytes, bytes]],
    start: _PeerProcess,
) -> Contender:
    """A peer in its own schema and topics, writing its one table there."""
    settings = pipeline.isolated(base, label)
    _make_table(settings)
    return Contender(
        key,
        settings,
        records,
        TABLE,
        lambda log: start(settings, schema=settings.db_schema, table=TABLE, log=log),
    )


def _median_rounds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each consumer's figures from its median round by events/s from process start (the
    lower median of an even number); a consumer that failed in any round, that failure."""
    medians: dict[str, Any] = {}
    for key in KEYS:
        figures = [run["consumers"][key] for run in runs if key in run["consumers"]]
        failures = [f for f in figures if "error" in f]
        if failures or not figures:
            medians[key] = failures[0] if failures else {"title": TITLES[key], "error": "not run"}
            continue
        ranked = sorted(range(len(figures)), key=lambda i: figures[i]["events_per_s_from_start"])
        middle = ranked[(len(ranked) - 1) // 2]
        medians[key] = {**figures[middle], "median_of_rounds": len(figures), "round": middle + 1}
    return medians


def _ratios(consumers: dict[str, Any]) -> None:
    """Each consumer's figures over CityStream's: events/s (above 1: faster than CityStream)
    and CPU per event (above 1: more CPU per event than CityStream)."""
    ours = consumers.get("citystream", {})
    if "error" in ours or not ours:
        return
    for figures in consumers.values():
        if "error" in figures:
            continue
        ratio: dict[str, float | None] = {}
        for name in (
            "events_per_s_from_start",
            "events_per_s_from_first_row",
            "consumer_cpu_us_per_event",
            "postgres_cpu_us_per_event",
        ):
            mine, theirs = figures.get(name), ours.get(name)
            ratio[name] = round(mine / theirs, 2) if mine is not None and theirs else None
        figures["ratio_to_citystream"] = ratio


def failed(result: dict[str, Any]) -> list[str]:
    """What went wrong in a ``measure`` result: errors, rows missing or added."""
    problems = []
    rounds = result.get("rounds") or [{"consumers": result.get("consumers", {})}]
    everyone = [(key, figures) for run in rounds for key, figures in run["consumers"].items()]
    for key, figures in everyone:
        if "error" in figures:
            problems.append(f"{key}: {figures['error'].splitlines()[0]}")
        elif not figures["values_match"]:
            problems.append(f"{key}: the rows' sums differ from the events sent")
        elif not (figures["all_landed"] and figures["resend_added_nothing"]):
            problems.append(
                f"{key}: {figures['rows']:,} rows after the drain, "
                f"{figures['rows_after_resend']:,} after the re-send, not {figures['events']:,}"
            )
    return problems

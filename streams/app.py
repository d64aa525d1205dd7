"""The faust app of ``citystream worker``: one agent per event family, one batch sink.

Reads topics ``city.<family>.v1`` (with ``CITYSTREAM_TOPIC_NAMESPACE`` prepended), writes
``city.deadletter.v1`` and the tables of ``streams.db.ledger``. Kafka's committed offsets
are a convenience only: after every partition assignment the worker resumes each partition
at the offset PostgreSQL recorded with the rows that offset produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from schemas.topics import ALL, DEADLETTER_TOPIC, TopicSpec
from schemas.validation import Rejection
from services.settings import STACK_DIR, Settings
from streams import metrics
from streams.db import DatabaseError, DatabaseUnavailable, connect_async
from streams.db.ledger import stored_offsets, write_batch
from streams.sink import Batch, Record, SinkResult, prepare

log = logging.getLogger("citystream.worker")

# Bounded back-off while PostgreSQL is away: nothing is acked meanwhile, so nothing is lost.
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)


StoredOffsets = Callable[[set[TP]], Awaitable[dict[TP, int]]]


class _DatabaseOffsetsConsumer(faust_aiokafka.Consumer):
    """faust's Kafka consumer, except that "committed" means what PostgreSQL recorded.

    faust starts (and, after every rebalance, restarts) each partition at the offset
    ``seek_to_committed`` returns; that is the one place to decide where reading resumes,
    so the stored offsets replace Kafka's there and nothing can seek after them.
    """

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = dict(await super().seek_to_committed())
        stored = await cast(_App, self.app).stored_offsets(set(self.assignment()))
        if stored:
            await self.seek_wait(stored)
            # Kafka's copy follows, so lag tools that read the group's offsets agree.
            await self._commit(stored)
            committed.update(stored)
            log.info(
                "resuming at the offsets stored in PostgreSQL",
                extra={"offsets": {f"{t.topic}[{t.partition}]": o for t, o in stored.items()}},
            )
        return committed

    async def _drain_messages(self, fetcher: Any) -> None:
        """faust's fetch loop, racing each fetched batch against a rebalance once.

        faust races every single record's delivery against ``suspend_flow`` (set when a
        rebalance starts) with four futures and an ``asyncio.wait``; at full speed that was
        a fifth of the worker's CPU (py-spy, ``make bench``). One race per batch keeps the
        behaviour that matters: a rebalance stops delivery at once. Records fetched but not
        delivered are read again, because ``seek_to_committed`` moves every assigned
        partition to the offset PostgreSQL stored.
        """
        try:
            while not (self.should_stop or fetcher.should_stop):
                batch = [item async for item in self.getmany(timeout=1.0)]
                await self.sleep(0)
                if batch and not self.should_stop:
                    await self.wait_first(self._deliver(batch), self.suspend_flow.wait())
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _deliver(self, batch: list[tuple[TP, Any]]) -> None:
        callback = self.callback
        read_offset = self._read_offset
        generation = self.app.consumer_generation_id
        for n, (tp, message) in enumerate(batch):
            if not self.flow_active or self.app.consumer_generation_id != generation:
                return  # a rebalance began: the new assignment seeks to the stored offsets
            offset = message.offset
            last = read_offset[tp]
            if last is not None and offset < last:
                continue  # delivered already
            if (
                last is not None
                and offset - last > 1
                and self.app.topics.acks_enabled_for(tp.topic)
            ):
                # Offsets never delivered (a compacted or transactional topic): faust's
                # Kafka commit must be allowed to move past them.
                await self._add_gap(tp, last + 1, offset)
            if self._commit_every is not None and self._n_acked >= self._commit_every:
                self._n_acked = 0
                await self.commit()
            await callback(message)
            read_offset[tp] = offset
            if n % 200 == 199:
                await asyncio.sleep(0)  # let heartbeats and the agent run


class _Transport(faust_aiokafka.Transport):
    Consumer = _DatabaseOffsetsConsumer


class _App(faust.App):
    def __init__(self, *args: Any, stored_offsets: StoredOffsets, **kwargs: Any) -> None:
        self.stored_offsets = stored_offsets
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def create_app(settings: Settings) -> faust.App:
    (STACK_DIR / "faust").mkdir(parents=True, exist_ok=True)
    names = {settings.topic_name(spec.name) for spec in ALL}

    async def stored(assigned: set[TP]) -> dict[TP, int]:
        ours = sorted((tp.topic, tp.partition) for tp in assigned if tp.topic in names)
        if not ours:
            return {}
        conn = await _connect_with_retry(settings)
        try:
            offsets = await stored_offsets(conn, ours)
        finally:
            await conn.close()
        return {TP(topic, partition): offset for (topic, partition), offset in offsets.items()}

    app = _App(
        settings.consumer_group,
        stored_offsets=stored,
        broker=f"kafka://{settings.kafka_bootstrap}",
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        autodiscover=False,
        store="memory://",
        # faust makes a data folder even with no tables; keep it out of the work tree.
        datadir=str(STACK_DIR / "faust" / "{conf.id}"),
        topic_replication_factor=settings.topic_replication_factor,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 4,
        broker_commit_every=settings.batch_size,
        # A broker that restarts can answer its first metadata requests before it has loaded
        # its topics; the group is then assigned nothing until the metadata is refreshed
        # (every 5 minutes by default). 10 s bounds that stall (chaos suite, broker restart).
        consumer_metadata_max_age_ms=10_000,
        stream_buffer_maxsize=max(4096, settings.batch_size * 2),
    )
    deadletters = app.topic(settings.topic_name(DEADLETTER_TOPIC), value_serializer="raw")

    for spec in ALL:
        _register_agent(app, settings, spec, deadletters)

    return app


def _record(message: Any) -> Record:
    return Record(
        message.topic,
        message.partition,
        message.offset,
        message.value,
        datetime.fromtimestamp(message.timestamp, UTC),
    )


def _register_agent(app: faust.App, settings: Settings, spec: TopicSpec, deadletters: Any) -> None:
    topic = app.topic(
        settings.topic_name(spec.name), value_serializer="raw", partitions=settings.topic_partitions
    )

    async def agent(stream: Any) -> None:
        conn = await _connect_with_retry(settings)
        writing: asyncio.Task[None] | None = None

        async def commit(events: list[Any], batch: Batch, prepare_s: float) -> None:
            nonlocal conn
            started = time.perf_counter()
            conn, result = await _write_with_retry(settings, conn, batch)
            # After the commit: the deadletters table already holds these, so a crash here
            # loses at most the topic copy, never the record itself.
            for record, why in result.rejected:
                await _publish_deadletter(deadletters, record, why)
            for event in events:
                await stream.ack(event)
            _observe(app, spec, batch, result, prepare_s + time.perf_counter() - started)

        try:
            async for events in stream.noack().noack_take(
                settings.batch_size, within=settings.batch_wait_s
            ):
                started = time.perf_counter()
                batch = prepare(spec, [_record(e.message) for e in events])
                prepare_s = time.perf_counter() - started
                # One write at a time, in batch order: batch N+1 is read and decoded while
                # batch N waits on PostgreSQL, and N+1's transaction starts after N's
                # commit, so it sees N's rows (duplicates, corrections) and chain head.
                if writing is not None:
                    await writing
                writing = asyncio.create_task(commit(events, batch, prepare_s))
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                # Stopping: a transaction cut short rolls back, its records were not acked
                # and are read again from the offsets PostgreSQL stored.
                writing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writing

    app.agent(topic, name=spec.family, concurrency=1)(agent)


# The topic copy of a dead letter stays well under Kafka's 1 MB request limit; a larger
# original is kept whole in the deadletters table, and the copy says so.
DEADLETTER_COPY_LIMIT = 512 * 1024


async def _publish_deadletter(deadletters: Any, record: Record, why: Rejection) -> None:
    value = record.value or b""
    truncated = len(value) > DEADLETTER_COPY_LIMIT
    headers = {
        "reason": why.reason.encode(),
        "field": (why.field or "").encode(),
        "message": why.message.encode(),
        "topic": record.topic.encode(),
        "partition": str(record.partition).encode(),
        "offset": str(record.offset).encode(),
        "original_bytes": str(len(value)).encode(),
        "sha256": hashlib.sha256(value).hexdigest().encode(),
    }
    if truncated:
        headers["truncated"] = b"true"
    try:
        await deadletters.send(
            key=f"{record.topic}/{record.partition}/{record.offset}".encode(),
            value=value[:DEADLETTER_COPY_LIMIT] if truncated else value,
            headers=headers,
        )
    except Exception:
        # The deadletters table already holds it; a lost topic copy must not stop the agent.
        log.exception(
            "dead letter not copied to the topic",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
        )


def _observe(
    app: faust.App, spec: TopicSpec, batch: Batch, result: SinkResult, seconds: float
) -> None:
    """Metrics and one structured log line per batch; a warning per rejected record."""
    topics = {tp[0] for tp in batch.next_offsets}
    for topic_name in topics:
        metrics.CONSUMED.labels(topic_name).inc(
            sum(1 for r, _ in batch.accepted if r.topic == topic_name)
            + sum(1 for r, _ in batch.rejected if r.topic == topic_name)
            + batch.repeated
        )
    metrics.BATCH_SIZE.observe(len(batch.accepted) + len(batch.rejected) + batch.repeated)
    metrics.SINK_SECONDS.observe(seconds)
    for event_type, count in result.inserted_by_type.items():
        metrics.ACCEPTED.labels(event_type).inc(count)
    for (topic_name, partition), next_offset in batch.next_offsets.items():
        metrics.COMMITTED.labels(topic_name, partition).set(next_offset)
        highwater = app.consumer.highwater(TP(topic_name, partition))
        if highwater is not None:
            metrics.LAG.labels(topic_name, partition).set(max(0, highwater - next_offset))
    if result.duplicates:
        metrics.DUPLICATES.labels(spec.name).inc(result.duplicates)
    for record, why in result.rejected:
        metrics.REJECTED.labels(record.topic, why.reason).inc()
        log.warning(
            "record rejected",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": why.reason,
                "field": why.field,
                "detail": why.message,
            },
        )
    log.info(
        "batch written",
        extra={
            "family": spec.family,
            "offsets": {f"{t}[{p}]": o for (t, p), o in batch.next_offsets.items()},
            "inserted": result.inserted,
            "duplicates": result.duplicates,
            "rejected": len(result.rejected),
            "seconds": round(seconds, 4),
        },
    )


async def _connect_with_retry(settings: Settings) -> Any:
    attempt = 0
    while True:
        try:
            return await connect_async(settings)
        except DatabaseUnavailable as exc:
            delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            log.warning("database unavailable, retrying in %.1fs: %s", delay, exc)
            attempt += 1
            await asyncio.sleep(delay)


async def _write_with_retry(settings: Settings, conn: Any, batch: Batch) -> tuple[Any, SinkResult]:
    """Write until it commits; return the (possibly new) connection and the outcome."""
    attempt = 0
    while True:
        try:
            return conn, await write_batch(conn, batch)
        except Exception as exc:  # a database error, or a bug: retry, never kill the agent
            metrics.SINK_RETRIES.inc()
            if not isinstance(exc, DatabaseError):
                log.exception("unexpected error writing a batch; retrying")
            delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            log.warning("batch not written, retrying in %.1fs: %s", delay, exc)
            attempt += 1
            await asyncio.sleep(delay)
            if conn.closed or conn.broken or isinstance(exc, DatabaseUnavailable):
                await conn.close()
                conn = await _connect_with_retry(settings)

"""The faust app of ``citystream worker``: one batch loop per event family, one batch sink.

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


# A sink statement running longer than this (stuck behind a lock, a server in trouble)
# fails, and the batch is retried on the same terms as any database error.
STATEMENT_TIMEOUT_S = 60.0

# How often the offsets PostgreSQL stored are copied to the group's Kafka offsets.
KAFKA_COMMIT_INTERVAL_S = 2.0

StoredOffsets = Callable[[set[TP]], Awaitable[dict[TP, int]]]


class _BatchingConsumer(faust_aiokafka.Consumer):
    """faust's Kafka consumer, handing whole fetches to the families' batch loops.

    Two changes to faust's behaviour, both at the points faust itself decides them:

    - where reading resumes: faust starts (and, after every rebalance, restarts) each
      partition at the offset ``seek_to_committed`` returns; the offsets PostgreSQL stored
      replace Kafka's there, so nothing can seek after them;
    - how records reach the sink: faust turns every record into an event, queues it for
      a stream, races its delivery against a rebalance with four futures, and acks it one
      by one; at full speed that was half the worker's CPU (py-spy, ``make bench``). Here
      each fetch goes to the family's inbox as one list of ``Record``s, raced once.
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
        # Replaces faust's per-record loop (faust/transport/consumer.py, pinned 0.15.3).
        # faust's getmany still decides what may be yielded: it stops at a rebalance and
        # yields only records of active partitions.
        committed_at = time.monotonic()
        try:
            while not (self.should_stop or fetcher.should_stop):
                fetched: dict[str, list[Record]] = {}
                async for tp, message in self.getmany(timeout=1.0):
                    fetched.setdefault(tp.topic, []).append(_record(message))
                await self.sleep(0)
                if fetched and not self.should_stop:
                    # A rebalance (suspend_flow) stops the hand-over: what was not handed
                    # over is read again from the offsets PostgreSQL stored.
                    await self.wait_first(self._hand_over(fetched), self.suspend_flow.wait())
                if time.monotonic() - committed_at >= KAFKA_COMMIT_INTERVAL_S:
                    # Between fetches, as faust commits: never beside a fetch in flight.
                    committed_at = time.monotonic()
                    await self._commit_written()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception:
            log.exception("the fetch loop failed")
            raise

    async def _commit_written(self) -> None:
        """Copy the offsets PostgreSQL stored to the group's Kafka offsets (for lag tools
        only: reading resumes from PostgreSQL's)."""
        if not self.flow_active:
            return  # rebalancing: the next owner resumes from PostgreSQL anyway
        assigned = self.assignment()
        offsets: dict[TP, int] = {}
        for family in cast(_App, self.app).families.values():
            offsets.update(family.take_written())
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if offsets:
            await self._commit(offsets)

    async def _hand_over(self, fetched: dict[str, list[Record]]) -> None:
        families = cast(_App, self.app).families
        for topic, records in fetched.items():
            # The epoch is read now, not at the fetch: a revocation between the two makes
            # these records current, so they are written (once: the ledger drops ids it
            # holds) rather than dropped after the seek that would have re-read them.
            family = families.get(topic)
            if family is None:
                log.error("records of a topic no family reads", extra={"topic": topic})
                continue
            await family.inbox.put((family.epoch, records))


class _Transport(faust_aiokafka.Transport):
    Consumer = _BatchingConsumer


class _App(faust.App):
    def __init__(self, *args: Any, stored_offsets: StoredOffsets, **kwargs: Any) -> None:
        self.stored_offsets = stored_offsets
        self.families: dict[str, _Family] = {}
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
        # A broker that restarts can answer its first metadata requests before it has loaded
        # its topics; the group is then assigned nothing until the metadata is refreshed
        # (every 5 minutes by default). 10 s bounds that stall (chaos suite, broker restart).
        consumer_metadata_max_age_ms=10_000,
    )
    deadletters = app.topic(settings.topic_name(DEADLETTER_TOPIC), value_serializer="raw")

    for spec in ALL:
        family = _Family(app, settings, spec, deadletters)
        # Subscribing the topic is what makes the group assign its partitions to us.
        app.topics.add(
            app.topic(family.topic, value_serializer="raw", partitions=settings.topic_partitions)
        )
        app.families[family.topic] = family
        app.task(family.run)

    async def revoked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        writes = [w for family in app.families.values() if (w := family.on_revoked()) is not None]
        if writes:
            # Bounded: with PostgreSQL away a write retries until it returns.
            await asyncio.wait(writes, timeout=settings.session_timeout_s)

    # mode's stubs type async receivers as returning None | Awaitable | None; it awaits them.
    app.on_partitions_revoked.connect(cast(Any, revoked))
    return app


def _record(message: Any) -> Record:
    return Record(
        message.topic,
        message.partition,
        message.offset,
        message.value,
        datetime.fromtimestamp(message.timestamp, UTC),
    )


class _Family:
    """The batch loop of one event family (topic ``city.<family>.v1``).

    take a batch (``CITYSTREAM_BATCH_SIZE`` records, or what arrived within
    ``CITYSTREAM_BATCH_WAIT_S``) → ``prepare`` (decode, validate) → one PostgreSQL
    transaction (``write_batch``) → dead letters to their topic. One write at a time, in
    order: batch N+1 is decoded while batch N waits on PostgreSQL, and N+1's transaction
    starts after N's commit, so it sees N's rows (duplicates, corrections) and chain head.
    """

    def __init__(self, app: _App, settings: Settings, spec: TopicSpec, deadletters: Any) -> None:
        self.app = app
        self.settings = settings
        self.spec = spec
        self.deadletters = deadletters
        self.topic = settings.topic_name(spec.name)
        # A few fetches ahead at most; beyond that the consumer waits (back-pressure).
        self.inbox: asyncio.Queue[tuple[int, list[Record]]] = asyncio.Queue(maxsize=4)
        # Bumped when partitions are revoked: records read before that are dropped unread
        # (the partitions' next owner, maybe us, reads them from the stored offsets).
        self.epoch = 0
        self._carry: tuple[int, list[Record]] = (0, [])
        self._writing: asyncio.Task[None] | None = None
        self._written: dict[TP, int] = {}
        self._conn: Any = None

    async def run(self) -> None:
        self._conn = await _connect_with_retry(self.settings)
        try:
            while True:
                epoch, records = await self._take()
                if not records:
                    continue
                started = time.perf_counter()
                batch = prepare(self.spec, records)
                prepare_s = time.perf_counter() - started
                if self._writing is not None:
                    await self._writing
                if epoch == self.epoch:
                    self._writing = asyncio.create_task(self._commit(batch, prepare_s))
        finally:
            if self._writing is not None and not self._writing.done():
                # Stopping: a transaction cut short rolls back; its records are read
                # again from the offsets PostgreSQL stored.
                self._writing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._writing
            await self._conn.close()

    async def _take(self) -> tuple[int, list[Record]]:
        """Up to ``batch_size`` records of the current epoch, or what came within the wait.

        Records of an earlier epoch are dropped: the seek that follows every revocation
        moves each partition back to the offset PostgreSQL stored, which is at or before
        every record not yet written, so they are read again.
        """
        size, within = self.settings.batch_size, self.settings.batch_wait_s
        loop = asyncio.get_running_loop()
        epoch, records = self._carry if self._carry[0] == self.epoch else (self.epoch, [])
        self._carry = (epoch, [])
        deadline = loop.time() + within
        while len(records) < size:
            try:
                got, fetched = self.inbox.get_nowait()
            except asyncio.QueueEmpty:
                wait = None if not records else deadline - loop.time()
                if wait is not None and wait <= 0:
                    break
                try:
                    got, fetched = await asyncio.wait_for(self.inbox.get(), wait)
                except TimeoutError:
                    break
            if got != self.epoch:
                continue
            if got != epoch:
                epoch, records = got, []  # revoked while gathering: start over
            if not records:
                deadline = loop.time() + within
            records.extend(fetched)
        self._carry = (epoch, records[size:])
        return epoch, records[:size]

    async def _commit(self, batch: Batch, prepare_s: float) -> None:
        started = time.perf_counter()
        self._conn, result = await _write_with_retry(self.settings, self._conn, batch)
        # After the commit: the deadletters table already holds these, so a crash here
        # loses at most the topic copy, never the record itself.
        for record, why in result.rejected:
            await _publish_deadletter(self.deadletters, record, why)
        for (topic, partition), offset in batch.next_offsets.items():
            self._written[TP(topic, partition)] = offset
        try:
            _observe(self.app, self.spec, batch, result, prepare_s + time.perf_counter() - started)
        except Exception:  # the batch is committed; a metrics bug must not stop the family
            log.exception("observing a written batch failed")

    def on_revoked(self) -> asyncio.Task[None] | None:
        """Drop what was read but not written; return the write still in flight, which
        the revocation lets finish first, so that a partition's next owner starts after
        it (as faust waits for its own streams)."""
        self.epoch += 1
        while not self.inbox.empty():
            self.inbox.get_nowait()
        if self._writing is not None and not self._writing.done():
            return self._writing
        return None

    def take_written(self) -> dict[TP, int]:
        written, self._written = self._written, {}
        return written


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
            return await connect_async(settings, statement_timeout_s=STATEMENT_TIMEOUT_S)
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

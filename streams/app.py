"""The faust app of ``citystream worker``: one batch loop per event family, one batch sink.

Logs in to Kafka as the ``worker`` principal (SASL/SCRAM-SHA-512). Reads topics
``city.<family>.v1`` (with ``CITYSTREAM_TOPIC_NAMESPACE`` prepended) with
``isolation_level=read_committed`` (records of an aborted Kafka transaction never count),
writes ``city.deadletter.v1``, each department's receipts ``city.receipts.<department>.v1``
(``streams.receipts``) and the tables of ``streams.db.ledger``. Kafka's committed
offsets are a convenience only: after every partition assignment the worker resumes each
partition at the offset PostgreSQL recorded with the rows that offset produced, in the
topic's current incarnation (``streams.db.cursors``): a topic deleted and created again is
noticed (its id changed, or the stored offsets lie beyond its end) and read from its start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import faust
import psycopg
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from schemas.topics import ALL, DEADLETTER_TOPIC, DEPARTMENTS, TopicSpec, receipts_topic
from schemas.validation import CREATE_TIME, LOG_APPEND_TIME, Rejection
from streams import metrics
from streams import receipts as receipts_
from streams.db.cursors import Incarnation, current_incarnation, stored_offsets
from streams.retry import RETRY_DELAYS_S, BatchWriter, connect_with_retry
from streams.settings import SASL_MECHANISM, STACK_DIR, Settings
from streams.sink import Batch, Record, SinkResult, prepare

log = logging.getLogger("citystream.worker")

# How often the offsets PostgreSQL stored are copied to the group's Kafka offsets.
KAFKA_COMMIT_INTERVAL_S = 2.0
# How often each family asks the broker whether its topic is still the one it reads.
TOPIC_CHECK_INTERVAL_S = 5.0

# The Kafka principal the workers log in as (services.access: READ on the city.* topics and
# the group, WRITE on the dead-letter topic).
WORKER = "worker"
# Topic names → their ids as the broker reports them now (blocking; run in a thread).
TopicIds = Callable[[Sequence[str]], Mapping[str, uuid.UUID]]


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
        stored = await cast(_App, self.app).resume_positions(self, set(self.assignment()))
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
                # Between fetches, so no record fetched before a reset's seek is handed on
                # after it (aiokafka drops what it fetched for the old positions).
                await self._apply_resets()
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

    async def _apply_resets(self) -> None:
        """Start reading each topic a family found re-created from its new beginning."""
        for family in cast(_App, self.app).families.values():
            incarnation = family.pending_reset
            if incarnation is None:
                continue
            family.pending_reset = None
            mine = [tp for tp in self.assignment() if tp.topic == family.topic]
            family.begin(incarnation)
            if not mine:
                continue
            positions = await cast(_App, self.app).positions(incarnation, mine)
            for tp, offset in positions.items():
                await self.seek(tp, offset)
            log.warning(
                "topic %s: incarnation %d read from offsets %s",
                family.topic,
                incarnation.number,
                {f"[{tp.partition}]": o for tp, o in sorted(positions.items())},
            )

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

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # faust asks for read_committed only for its own exactly-once mode; without it the
        # records of a transaction that a producer aborted would be counted. aiokafka reads
        # this attribute when the consumer starts (pinned 0.14.0, tests/unit/test_pins.py).
        consumer._isolation_level = "read_committed"
        return consumer


class _Transport(faust_aiokafka.Transport):
    Consumer = _BatchingConsumer


class _App(faust.App):
    def __init__(self, *args: Any, settings: Settings, topic_ids: TopicIds, **kwargs: Any) -> None:
        self.settings = settings
        self.topic_ids = topic_ids
        self.families: dict[str, _Family] = {}
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    async def incarnation(
        self, consumer: Any, topic: str, *, require_id: bool = False
    ) -> Incarnation:
        """The topic's incarnation now, recording a new one if it was re-created. Raises
        if PostgreSQL (or, with ``require_id``, the broker) could not be asked."""
        try:
            ids = await asyncio.to_thread(self.topic_ids, [topic])
        except Exception as exc:  # without the id nothing can be told; asked again later
            if require_id:
                raise
            log.warning("could not read the id of topic %s: %s", topic, exc)
            ids = {}
        if require_id and topic not in ids:
            raise LookupError(f"the broker reports no id for topic {topic}")
        log_end: dict[int, int] | None
        try:
            partitions = consumer.topic_partitions(topic) or 0
            ends = await consumer.highwaters(*(TP(topic, p) for p in range(partitions)))
            log_end = {tp.partition: int(end) for tp, end in ends.items()}
        except Exception as exc:  # only a ledger from before topic ids needs them
            log.warning("could not read the end offsets of topic %s: %s", topic, exc)
            log_end = None
        conn = await connect_with_retry(self.settings)
        try:
            found = await current_incarnation(
                conn, topic=topic, topic_id=ids.get(topic), log_end=log_end
            )
        finally:
            await conn.close()
        if found.reset is not None:
            metrics.TOPIC_RESETS.labels(topic).inc()
            log.error(
                "topic %s was deleted and created again (%s): reading its incarnation %d from "
                "its start; the ledger keeps the earlier incarnations' rows",
                topic,
                found.reset,
                found.number,
            )
        metrics.INCARNATION.labels(topic).set(found.number)
        return found

    async def positions(self, incarnation: Incarnation, tps: Sequence[TP]) -> dict[TP, int]:
        """Where to resume each partition: the next offset PostgreSQL stored for it in this
        incarnation, its start if nothing was stored yet."""
        attempt = 0
        while True:  # nowhere to resume from without PostgreSQL: wait for it
            conn = await connect_with_retry(self.settings)
            try:
                stored = await stored_offsets(
                    conn,
                    topic=incarnation.topic,
                    incarnation=incarnation.number,
                    partitions=[tp.partition for tp in tps],
                )
                return {TP(incarnation.topic, p): offset for p, offset in stored.items()}
            except psycopg.Error as exc:
                delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
                log.warning("reading stored offsets failed, retrying in %.1fs: %s", delay, exc)
                attempt += 1
                await asyncio.sleep(delay)
            finally:
                await conn.close()

    async def resume_positions(self, consumer: Any, assigned: set[TP]) -> dict[TP, int]:
        """After an assignment: each family's incarnation, and where each partition resumes."""
        resumed: dict[TP, int] = {}
        for topic, family in self.families.items():
            mine = sorted(tp for tp in assigned if tp.topic == topic)
            if not mine:
                continue
            try:
                incarnation = await self.incarnation(consumer, topic)
            except Exception:  # the family's periodic check decides later
                log.exception("deciding the incarnation of %s failed; keeping the last", topic)
                incarnation = family.incarnation
            family.begin(incarnation)
            positions = await self.positions(incarnation, mine)
            resumed.update(positions)
            # In the background, but before the family's next write (Publisher.settled).
            family.receipts.track(
                asyncio.create_task(self.rederive_receipts(family, incarnation, positions))
            )
        return resumed

    async def rederive_receipts(
        self, family: _Family, incarnation: Incarnation, positions: Mapping[TP, int]
    ) -> None:
        """Publish again the receipts of each partition's last batch, from PostgreSQL: the
        worker that wrote it may have died before Kafka took them (streams/receipts.py)."""
        found = await receipts_.rederive_last_batches(
            self.settings,
            family.spec,
            incarnation=incarnation.number,
            positions={(tp.topic, tp.partition): offset for tp, offset in positions.items()},
        )
        if found is not None:
            metrics.RECEIPTS_REDERIVED.labels(family.topic).inc(sum(o.receipts for o in found[0]))
            await family.receipts.publish(*found)


def broker_credentials(settings: Settings) -> faust.SASLCredentials:
    """The workers' Kafka login (``CITYSTREAM_KAFKA_WORKER_PASSWORD``): SCRAM-SHA-512, over
    TLS when ``CITYSTREAM_KAFKA_SECURITY_PROTOCOL`` is SASL_SSL (faust's default mechanism
    would be PLAIN)."""
    context = None
    if settings.kafka_security_protocol == "SASL_SSL":
        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        context = ssl.create_default_context(cafile=cafile)
    return faust.SASLCredentials(
        username=WORKER,
        password=settings.kafka_password(WORKER).get_secret_value(),
        mechanism=SASL_MECHANISM,
        ssl_context=context,
    )


def create_app(settings: Settings, *, topic_ids: TopicIds) -> faust.App:
    """``topic_ids`` reads topic ids from the broker (``services.producer.TopicIds``, as the
    workers' principal): aiokafka's metadata requests predate them. Raises
    MissingCredentials without the workers' Kafka password."""
    (STACK_DIR / "faust").mkdir(parents=True, exist_ok=True)

    app = _App(
        settings.consumer_group,
        settings=settings,
        topic_ids=topic_ids,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=broker_credentials(settings),
        # faust would otherwise create and join an "<app>-__assignor-__leader" topic at start;
        # the workers' principal may create no topic, and the app needs no leader.
        topic_disable_leader=True,
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
    receipt_topics = {
        department: app.topic(
            settings.topic_name(receipts_topic(department)),
            key_serializer="raw",
            value_serializer="raw",
        )
        for department in DEPARTMENTS
    }

    for spec in ALL:
        family = _Family(app, settings, spec, deadletters, receipt_topics)
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
    # faust hands the timestamp over in seconds; the record's own milliseconds, whatever
    # they are (a CreateTime may be any 64-bit number), are judged later, never here.
    seconds = message.timestamp
    timestamp_type = LOG_APPEND_TIME if message.timestamp_type == LOG_APPEND_TIME else CREATE_TIME
    return Record(
        message.topic,
        message.partition,
        message.offset,
        message.value,
        None if seconds is None else round(seconds * 1000),
        timestamp_type,
    )


class _Family:
    """The batch loop of one event family (topic ``city.<family>.v1``).

    take a batch (``CITYSTREAM_BATCH_SIZE`` records, or what arrived within
    ``CITYSTREAM_BATCH_WAIT_S``) → ``prepare`` (decode, validate) → one PostgreSQL
    transaction (``streams.retry.BatchWriter``) → dead letters to their topic. One write at a
    time, in order: batch N+1 is decoded while batch N waits on PostgreSQL, and N+1's
    transaction starts after N's commit, so it sees N's rows (duplicates, corrections) and
    chain head. Every few seconds the family asks the broker whether its topic is still the
    one it reads; a re-created topic is handed to the fetch loop to restart from its start.
    """

    def __init__(
        self,
        app: _App,
        settings: Settings,
        spec: TopicSpec,
        deadletters: Any,
        receipt_topics: dict[str, Any],
    ) -> None:
        self.app = app
        self.settings = settings
        self.spec = spec
        self.deadletters = deadletters
        self.receipts = receipts_.Publisher(receipt_topics)
        self.topic = settings.topic_name(spec.name)
        # A few fetches ahead at most; beyond that the consumer waits (back-pressure).
        self.inbox: asyncio.Queue[tuple[int, list[Record]]] = asyncio.Queue(maxsize=4)
        # Bumped when partitions are revoked or the topic was reset: records read before
        # that are dropped unread (read again from the offsets PostgreSQL stored).
        self.epoch = 0
        self.incarnation = Incarnation(self.topic, 1, None)
        # A new incarnation found but not applied yet: the fetch loop seeks to its start
        # (between fetches) and calls begin(); until then every batch is dropped, its
        # records being the old positions' ones.
        self.pending_reset: Incarnation | None = None
        self._carry: tuple[int, list[Record]] = (0, [])
        self._writing: asyncio.Task[None] | None = None
        self._written: dict[TP, int] = {}
        self._writer = BatchWriter(settings)

    def begin(self, incarnation: Incarnation) -> None:
        """Read ``incarnation`` from now on; drop what was read before."""
        if incarnation.number != self.incarnation.number:
            self._drop_read()
        self.incarnation = incarnation

    async def run(self) -> None:
        await self._writer.open()
        checking = asyncio.create_task(self._watch_topic())
        try:
            while True:
                epoch, records = await self._take()
                if not records:
                    continue
                started = time.perf_counter()
                batch = self._prepare(records)
                prepare_s = time.perf_counter() - started
                if self._writing is not None:
                    await self._writing
                if epoch == self.epoch and self.pending_reset is None:
                    self._writing = asyncio.create_task(self._commit(batch, prepare_s))
        finally:
            checking.cancel()
            if self._writing is not None and not self._writing.done():
                # Stopping: a transaction cut short rolls back; its records are read
                # again from the offsets PostgreSQL stored.
                self._writing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._writing
            await self._writer.close()

    def _prepare(self, records: list[Record]) -> Batch:
        created = sum(1 for r in records if r.timestamp_type == CREATE_TIME)
        if created:
            metrics.CREATE_TIME_RECORDS.labels(self.topic).inc(created)
        return prepare(self.spec, records, incarnation=self.incarnation.number)

    async def _watch_topic(self) -> None:
        """Notice a topic deleted and created again although no write collided with the
        ledger: the consumer may simply go on from its old offsets in the new topic."""
        while True:
            await asyncio.sleep(TOPIC_CHECK_INTERVAL_S)
            if not self.app.consumer.assignment():
                continue
            try:
                await self._check_reset()
            except Exception:  # checked again at the next interval
                log.exception("checking topic %s for a reset failed", self.topic)

    async def _check_reset(self, *, until_known: bool = False) -> bool:
        """True if the topic is not the incarnation this family reads (then the fetch loop
        restarts it), False if it is. ``until_known``: ask until the broker and PostgreSQL
        answer (a write that collided with the ledger must not be judged without them)."""
        attempt = 0
        while self.pending_reset is None:
            try:
                found = await self.app.incarnation(
                    self.app.consumer, self.topic, require_id=until_known
                )
            except Exception as exc:
                if not until_known:
                    raise
                delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
                log.warning(
                    "checking %s for a reset failed, retrying in %.1fs: %s", self.topic, delay, exc
                )
                attempt += 1
                await asyncio.sleep(delay)
                continue
            if found.number == self.incarnation.number:
                return False
            self.pending_reset = found
        return True

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
        incarnation = batch.incarnation
        # At most one batch's receipts in flight: a crash loses no more than the receipts
        # a newly assigned worker re-derives (streams/receipts.py).
        await self.receipts.settled()
        results = await self._writer.write(
            batch,
            prepare=lambda records: prepare(self.spec, records, incarnation=incarnation),
            reset_check=lambda: self._check_reset(until_known=True),
        )
        if results is None:
            return  # the topic was reset: these records are read again in its new life
        for result in results:
            # After the commit: the deadletters table already holds these, so a crash here
            # loses at most the topic copy, never the record itself.
            for record, why in result.rejected:
                await _publish_deadletter(self.deadletters, record, why)
        await self._publish_receipts(batch, results)
        for (topic, partition), offset in batch.next_offsets.items():
            self._written[TP(topic, partition)] = offset
        try:
            _observe(self.app, self.spec, batch, results, prepare_s + time.perf_counter() - started)
        except Exception:  # the batch is committed; a metrics bug must not stop the family
            log.exception("observing a written batch failed")

    async def _publish_receipts(self, batch: Batch, results: list[SinkResult]) -> None:
        """Each record's receipt to its department, after the commit (streams/receipts.py)."""
        stored = None
        if not receipts_.all_stored(batch, results):
            try:
                conn = self._writer.connection
                async with conn.transaction():  # a read of its own, never left open
                    stored = await receipts_.stored_positions(conn, batch)
            except Exception as exc:  # then "stored" stands for "in the ledger" for all
                log.warning("which records were duplicates is unknown: %s", exc)
        try:
            await self.receipts.publish(*receipts_.build(self.spec, batch, results, stored))
        except Exception:  # the batch is committed; receipts must never stop the family
            log.exception("publishing the receipts of a written batch failed")
            metrics.RECEIPTS_FAILED.labels("").inc()
            self.receipts.lost("publishing failed")

    def on_revoked(self) -> asyncio.Task[None] | None:
        """Drop what was read but not written; return the write still in flight, which
        the revocation lets finish first, so that a partition's next owner starts after
        it (as faust waits for its own streams)."""
        self._drop_read()
        if self._writing is not None and not self._writing.done():
            return self._writing
        return None

    def _drop_read(self) -> None:
        self.epoch += 1
        while not self.inbox.empty():
            self.inbox.get_nowait()

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
    app: faust.App, spec: TopicSpec, batch: Batch, results: list[SinkResult], seconds: float
) -> None:
    """Metrics and one structured log line per batch; a warning per rejected record."""
    result = SinkResult(
        inserted=sum(r.inserted for r in results),
        inserted_by_type=dict(sum((Counter(r.inserted_by_type) for r in results), Counter[str]())),
        duplicates=sum(r.duplicates for r in results),
        rejected=[rejected for r in results for rejected in r.rejected],
    )
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

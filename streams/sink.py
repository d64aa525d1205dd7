"""The sink: a prepared batch written until it is done (retry what may pass later,
isolate what never will), then its dead letters published and its metrics observed.

A batch fails for one of three kinds of reason (:mod:`streams.db.ledger` says which):

- the moment (PostgreSQL away, a serialization failure, a lock or statement timeout, a
  server shutting down): the same batch is tried again, with a bounded back-off, on a new
  connection when the old one broke; nothing is acked meanwhile, so nothing is lost;
- a value in it (a date beyond year 9999, a number PostgreSQL cannot hold, …): it fails
  the same way on every try, so the batch is split in halves, each written on its own (in
  order, so chains and corrections see what came before), until the record that fails on
  its own is found; that record becomes a dead letter (``unprocessable``, with the
  database's message), every other record is stored;
- another event at one of its Kafka positions: the topic was deleted and created again;
  the caller checks, and drops the batch if so (its records are read again in the topic's
  new incarnation), or the record is isolated like any other that cannot be stored.

Nothing a record contains can make a family stop or the worker exit.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import faust
from faust.types import TP

from schemas.rejections import Rejection
from schemas.topics import TopicSpec
from streams import metrics
from streams.batch import Batch, Record, SinkResult, sink_rejection
from streams.db import DatabaseUnavailable, connect_async
from streams.db.batch_rows import ChainTip
from streams.db.ledger import RecordRefused, TopicReset, write_batch
from streams.settings import Settings

log = logging.getLogger("citystream.worker")

# Bounded back-off while PostgreSQL is away: nothing is acked meanwhile, so nothing is lost.
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)

# A sink statement running longer than this (stuck behind a lock, a server in trouble)
# fails, and the batch is retried on the same terms as any database error.
STATEMENT_TIMEOUT_S = 60.0

# Re-decodes a part of a batch (what a split writes) as the family's own batches are.
Prepare = Callable[[list[Record]], Batch]
# Awaited last in each transaction (the family's previous receipts).
BeforeCommit = Callable[[], Awaitable[None]]
# Asked when a batch collides with ledger rows at its Kafka positions: True if the topic
# was reset (the batch is then dropped), False if not (the record is isolated).
ResetCheck = Callable[[], Awaitable[bool]]


async def connect_with_retry(settings: Settings) -> Any:
    attempt = 0
    while True:
        try:
            return await connect_async(settings, statement_timeout_s=STATEMENT_TIMEOUT_S)
        except DatabaseUnavailable as exc:
            delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            log.warning("database unavailable, retrying in %.1fs: %s", delay, exc)
            attempt += 1
            await asyncio.sleep(delay)


class BatchWriter:
    """One family's connection and the rules above."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._conn: Any = None
        # Where this writer's chains end and when it last committed: what the family
        # prebuilds the next batch's rows from (streams.db.batch_rows).
        self.tip = ChainTip()
        # Set once the write in flight has built (or adopted) its rows.
        self._built = asyncio.Event()

    def track(self, write: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``write`` (the family's commit of one batch, which calls :meth:`write`) as
        the write in flight."""
        self._built.clear()
        return asyncio.create_task(write)

    async def built(self, writing: asyncio.Task[None]) -> None:
        """Until the write in flight (``writing``) has built its rows, or is done."""
        if self._built.is_set() or writing.done():
            return
        waiting = asyncio.create_task(self._built.wait())
        try:
            await asyncio.wait({waiting, writing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()

    async def open(self) -> None:
        self._conn = await connect_with_retry(self._settings)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def write(
        self,
        batch: Batch,
        *,
        prepare: Prepare,
        reset_check: ResetCheck,
        before_commit: BeforeCommit | None = None,
    ) -> list[SinkResult] | None:
        """The outcome of every part the batch was written in; None if it was dropped
        because its topic was reset. ``before_commit``: awaited inside each transaction,
        last (streams.db.ledger.write_batch); every part a split writes awaits it too, so
        no part commits before the previous batch's receipts were acknowledged."""
        try:
            return [await self._until_committed(batch, before_commit)]
        except RecordRefused as exc:
            return await self._isolate(batch, exc.rejection, prepare, reset_check, before_commit)
        except TopicReset as exc:
            if await reset_check():
                log.warning("batch dropped: its topic was reset", extra={"detail": str(exc)})
                return None
            why = sink_rejection(
                "unprocessable",
                "kafka_offset",
                None,
                "one event per Kafka position",
                zh="台账中该 Kafka 位置已有另一事件，而主题并未重建（台账被改动？）",
                en="another event is recorded at this Kafka position although the topic was "
                "not re-created (was the ledger changed?)",
            )
            return await self._isolate(batch, why, prepare, reset_check, before_commit)

    async def _isolate(
        self,
        batch: Batch,
        why: Rejection,
        prepare: Prepare,
        reset_check: ResetCheck,
        before_commit: BeforeCommit | None,
    ) -> list[SinkResult] | None:
        records = batch.records
        if len(records) == 1:
            (record,) = records
            log.error(
                "record cannot be stored; dead-lettered",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "reason": why.reason,
                    "detail": why.message,
                },
            )
            alone = Batch(
                records,
                batch.incarnation,
                rejected=[(record, why)],
                next_offsets={(record.topic, record.partition): record.offset + 1},
            )
            return [await self._until_committed(alone, before_commit, dead_letter=True)]
        metrics.BATCH_SPLITS.inc()
        middle = len(records) // 2
        results: list[SinkResult] = []
        for part in (records[:middle], records[middle:]):
            written = await self.write(
                prepare(part), prepare=prepare, reset_check=reset_check, before_commit=before_commit
            )
            if written is None:
                return None
            results.extend(written)
        return results

    async def _until_committed(
        self, batch: Batch, before_commit: BeforeCommit | None, *, dead_letter: bool = False
    ) -> SinkResult:
        """Write until it commits, retrying failures of the moment; a failure caused by the
        batch's values (or a topic reset) leaves to the caller, except for a dead letter
        alone, which nothing but the moment can stop."""
        attempt = 0
        while True:
            try:
                return await write_batch(
                    self._conn,
                    batch,
                    tip=self.tip,
                    built=self._built.set,
                    before_commit=before_commit,
                )
            except (RecordRefused, TopicReset):
                if not dead_letter:
                    raise
                log.exception("a dead letter alone could not be stored; retrying")
                exc: Exception | None = None
            except Exception as error:  # the moment's: retry, never kill the family
                exc = error
                if not isinstance(error, DatabaseUnavailable):
                    log.warning("batch not written: %s", error)
            metrics.SINK_RETRIES.inc()
            delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            log.warning("batch not written, retrying in %.1fs: %s", delay, exc)
            attempt += 1
            await asyncio.sleep(delay)
            if self._conn.closed or self._conn.broken or isinstance(exc, DatabaseUnavailable):
                await self._conn.close()
                self._conn = await connect_with_retry(self._settings)

    @property
    def connection(self) -> Any:
        return self._conn


# The topic copy of a dead letter stays well under Kafka's 1 MB request limit; a larger
# original is kept whole in the deadletters table, and the copy says so.
DEADLETTER_COPY_LIMIT = 512 * 1024


async def publish_deadletter(deadletters: Any, record: Record, why: Rejection) -> None:
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


def observe(
    app: faust.App, spec: TopicSpec, batch: Batch, results: list[SinkResult], seconds: float
) -> None:
    """Metrics and one structured log line per batch; a warning per rejected record."""
    result = SinkResult(
        inserted=sum(r.inserted for r in results),
        inserted_by_type=dict(sum((Counter(r.inserted_by_type) for r in results), Counter[str]())),
        duplicates=sum(r.duplicates for r in results),
        rejected=[rejected for r in results for rejected in r.rejected],
    )
    consumed = len(batch.accepted) + len(batch.rejected) + batch.repeated
    # A batch is one family's, read from its one topic: counted without a pass over it.
    metrics.CONSUMED.labels(batch.records[0].topic).inc(consumed)
    metrics.BATCH_SIZE.observe(consumed)
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

"""One event family's batch loop: read, prepare, write, publish, observe.

Reads what the fetch loop (``streams.consumer``) hands it, prepares batches
(``streams.batch``), writes them (``streams.sink.BatchWriter``), then publishes dead
letters and receipts (``streams.sink``, ``streams.receipts``) and the batch's metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from faust.types import TP

from schemas.topics import TopicSpec
from schemas.validation import CREATE_TIME
from streams import metrics
from streams import receipts as receipts_
from streams.batch import Batch, Record, SinkResult, batch_end, prepare, prepare_stepwise
from streams.db.batch_rows import prebuild
from streams.db.cursors import Incarnation
from streams.settings import Settings
from streams.sink import RETRY_DELAYS_S, BatchWriter, observe, publish_deadletter

if TYPE_CHECKING:
    from streams.app import WorkerFaustApp

log = logging.getLogger("citystream.worker")

# How often each family asks the broker whether its topic is still the one it reads.
TOPIC_CHECK_INTERVAL_S = 5.0


def _value_bytes(records: list[Record]) -> int:
    try:
        return sum(map(len, map(_value_of, records)))  # in C: ~0.05 µs a record
    except TypeError:  # a record without a value (a tombstone)
        return sum(len(record.value or b"") for record in records)


_value_of = attrgetter("value")


class FamilyLoop:
    """The batch loop of one event family (topic ``city.<family>.v1``).

    take a batch (``CITYSTREAM_BATCH_SIZE`` records, or what arrived within
    ``CITYSTREAM_BATCH_WAIT_S``) → ``prepare`` (decode, validate) → one PostgreSQL
    transaction (``streams.sink.BatchWriter``) → dead letters and receipts to their topics.
    One write at a time, in order: batch N+1 is decoded and its rows prebuilt while batch N
    waits on PostgreSQL, N's receipts travel while N+1 is written (N+1 commits only once
    they are acknowledged), and N+1's transaction starts after N's commit, so it sees N's
    rows (duplicates, corrections) and chain head. Every few seconds the family asks the
    broker whether its topic is still the one it reads; a re-created topic is handed to the
    fetch loop to restart from its start.
    """

    def __init__(
        self,
        app: WorkerFaustApp,
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
                batch = await self._prepare(records)
                if self._writing is not None:
                    # The rows are prebuilt once the batch in flight has built its own:
                    # from the heads its rows end on, stamped after them.
                    await self._writer.built(self._writing)
                await self._prebuild(batch)
                # Wall time, the write in flight's turns included: what the batch waited.
                prepare_s = time.perf_counter() - started
                if self._writing is not None:
                    await self._writing
                if epoch == self.epoch and self.pending_reset is None:
                    self._writing = self._writer.track(self._commit(batch, prepare_s))
                    # Its first statement goes out before the next batch is decoded.
                    await asyncio.sleep(0)
        finally:
            checking.cancel()
            if self._writing is not None and not self._writing.done():
                # Stopping: a transaction cut short rolls back; its records are read
                # again from the offsets PostgreSQL stored.
                self._writing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._writing
            await self._writer.close()

    async def _prepare(self, records: list[Record]) -> Batch:
        created = sum(1 for r in records if r.timestamp_type == CREATE_TIME)
        if created:
            metrics.CREATE_TIME_RECORDS.labels(self.topic).inc(created)
        return await prepare_stepwise(self.spec, records, incarnation=self.incarnation.number)

    async def _prebuild(self, batch: Batch) -> None:
        """The batch's rows, built while the batch before is written: its transaction then
        only checks them (streams.db.batch_rows)."""
        try:
            batch.prebuilt = await prebuild(
                batch.accepted, incarnation=batch.incarnation, tip=self._writer.tip
            )
        except Exception:  # a value no row can hold: the transaction finds it and isolates it
            log.debug("prebuilding the rows of a batch failed", exc_info=True)

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
        """Up to ``batch_size`` records (and ``batch_max_bytes``) of the current epoch, or
        what came within the wait.

        Records of an earlier epoch are dropped: the seek that follows every revocation
        moves each partition back to the offset PostgreSQL stored, which is at or before
        every record not yet written, so they are read again.
        """
        size, within = self.settings.batch_size, self.settings.batch_wait_s
        max_bytes = self.settings.batch_max_bytes
        loop = asyncio.get_running_loop()
        epoch, records = self._carry if self._carry[0] == self.epoch else (self.epoch, [])
        self._carry = (epoch, [])
        # Only the first ``size`` records can be in this batch: the bytes of the rest of a
        # large fetch are not counted (they were, again at every batch the fetch made).
        held = _value_bytes(records[:size])
        deadline = loop.time() + within
        while len(records) < size and held <= max_bytes:
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
                epoch, records, held = got, [], 0  # revoked while gathering: start over
            if not records:
                deadline = loop.time() + within
            held += _value_bytes(fetched[: max(0, size - len(records))])
            records.extend(fetched)
        end = (
            batch_end(records, size=size, max_bytes=max_bytes)
            if held > max_bytes
            else min(size, len(records))
        )
        self._carry = (epoch, records[end:])
        return epoch, records[:end]

    async def _commit(self, batch: Batch, prepare_s: float) -> None:
        started = time.perf_counter()
        incarnation = batch.incarnation
        results = await self._writer.write(
            batch,
            prepare=lambda records: prepare(self.spec, records, incarnation=incarnation),
            reset_check=lambda: self._check_reset(until_known=True),
            # At most one batch's receipts in flight: a crash loses no more than the
            # receipts a newly assigned worker re-derives (streams/receipts.py). Awaited
            # just before this batch commits, so they travel while it is written.
            before_commit=self.receipts.settled,
        )
        if results is None:
            return  # the topic was reset: these records are read again in its new life
        for (topic, partition), offset in batch.next_offsets.items():
            self._written[TP(topic, partition)] = offset
        if receipts_.all_stored(batch, results):
            # Dead letters and receipts go out while the next batch is written; its
            # commit waits for them (Publisher.settled).
            self.receipts.track(asyncio.create_task(self._publish(batch, results)))
        else:
            # Which records were duplicates is read on the writer's connection, which
            # the next batch's transaction would hold.
            await self._publish(batch, results)
        try:
            observe(self.app, self.spec, batch, results, prepare_s + time.perf_counter() - started)
        except Exception:  # the batch is committed; a metrics bug must not stop the family
            log.exception("observing a written batch failed")

    async def _publish(self, batch: Batch, results: list[SinkResult]) -> None:
        """A committed batch's dead letters to their topic, and each record's receipt to
        its department (streams/receipts.py)."""
        # The next batch's write starts first (the family loop wakes on this batch's commit
        # and starts it on its next turn): this then runs while it waits on PostgreSQL.
        for _ in range(2):
            await asyncio.sleep(0)
        for result in results:
            # After the commit: the deadletters table already holds these, so a crash here
            # loses at most the topic copy, never the record itself.
            for record, why in result.rejected:
                await publish_deadletter(self.deadletters, record, why)
        stored = None
        if not receipts_.all_stored(batch, results):
            try:
                conn = self._writer.connection
                async with conn.transaction():  # a read of its own, never left open
                    stored = await receipts_.stored_positions(conn, batch)
            except Exception as exc:  # then "stored" stands for "in the ledger" for all
                log.warning("which records were duplicates is unknown: %s", exc)
        try:
            await self.receipts.publish_settled(
                *await receipts_.build_stepwise(self.spec, batch, results, stored)
            )
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

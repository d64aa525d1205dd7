"""The seam between faust and the batch loops: faust's Kafka consumer, changed at the points
where faust itself decides them (pinned to faust-streaming 0.15.3 and aiokafka 0.14.0;
``tests/unit/test_pins.py`` checks every name overridden here still exists).

- where reading resumes: the offsets PostgreSQL stored, in the topic's current
  incarnation, replace Kafka's committed ones;
- how records reach the sink: each fetch goes to its family's inbox as one list of
  :class:`~streams.batch.Record` (no faust event, stream queue or per-record ack);
- what is read: only committed records (``isolation_level=read_committed``);
- when a re-created topic restarts: between fetches, so nothing fetched before the seek is
  handed on after it.

What the consumer needs of the app and its families is the two protocols below.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

from aiokafka.consumer import fetcher as aiokafka_fetcher
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from schemas.validation import CREATE_TIME, LOG_APPEND_TIME
from streams.batch import Record
from streams.db.cursors import Incarnation

log = logging.getLogger("citystream.worker")

# The longest the broker holds a fetch while nothing new arrived (aiokafka's
# fetch_max_wait_ms): what an idle worker costs it, ten requests a second.
FETCH_MAX_WAIT_MS = 100

# How often the offsets PostgreSQL stored are copied to the group's Kafka offsets.
KAFKA_COMMIT_INTERVAL_S = 2.0


class FamilyInbox(Protocol):
    """A family's batch loop, as the fetch loop hands records to it (streams.family)."""

    topic: str
    epoch: int
    inbox: asyncio.Queue[tuple[int, list[Record]]]
    pending_reset: Incarnation | None

    def begin(self, incarnation: Incarnation) -> None: ...

    def take_written(self) -> dict[TP, int]: ...


class WorkerApp(Protocol):
    """The faust app of the worker, as its consumer uses it (streams.app)."""

    families: Mapping[str, FamilyInbox]

    async def resume_positions(self, consumer: Any, assigned: set[TP]) -> dict[TP, int]: ...

    async def positions(self, incarnation: Incarnation, tps: Sequence[TP]) -> dict[TP, int]: ...


def _app(consumer: Any) -> WorkerApp:
    return cast(WorkerApp, consumer.app)


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
        stored = await _app(self).resume_positions(self, set(self.assignment()))
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
                fetched = await self._fetch(timeout=1.0)
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

    async def _fetch(self, timeout: float) -> dict[str, list[Record]]:
        """One fetch, as ``Record`` lists by topic: faust's ``getmany`` (pinned 0.15.3) with
        its checks made once per partition instead of once per record, and no faust
        message made per record. The same checks decide: a rebalance (flow stopped, a new
        generation) yields nothing more, and only records of active partitions are handed
        on. Per record they cost as much as decoding the record; and nothing can change
        between two records of one fetch, which are handed on with no await between them.
        """
        records, active = await self._wait_next_records(timeout)
        fetched: dict[str, list[Record]] = {}
        if records is None or self.should_stop:
            return fetched
        if not self.flow_active:
            # As faust's getmany: called while the flow is stopped, seek back (to the
            # offsets PostgreSQL stored: seek_to_committed).
            try:
                await self.perform_seek()
            except Exception as exc:
                log.warning("seeking while the flow is stopped failed: %s", exc)
            return fetched
        buffered = self._buffered_partitions
        track = self.app.monitor.track_tp_end_offset
        for tp, messages in records.items():
            if active is not None and tp not in active and tp not in buffered:
                continue
            track(tp, self.highwater(tp))
            # Records already (_PartitionRecords made them in the consumer thread).
            fetched.setdefault(tp.topic, []).extend(messages)
        return fetched

    async def _apply_resets(self) -> None:
        """Start reading each topic a family found re-created from its new beginning."""
        for family in _app(self).families.values():
            incarnation = family.pending_reset
            if incarnation is None:
                continue
            family.pending_reset = None
            mine = [tp for tp in self.assignment() if tp.topic == family.topic]
            family.begin(incarnation)
            if not mine:
                continue
            positions = await _app(self).positions(incarnation, mine)
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
        for family in _app(self).families.values():
            offsets.update(family.take_written())
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if offsets:
            await self._commit(offsets)

    async def _hand_over(self, fetched: dict[str, list[Record]]) -> None:
        families = _app(self).families
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
        # faust fixes 1.5 s: a fetch the broker holds that long for partitions with nothing
        # new delays the records that arrive meanwhile, and the first batch after every
        # assignment waited for one (a second of a worker's start, ``make bench``).
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        # Marks this consumer's fetched partitions as those to unpack into Records (read by
        # the fetcher it makes at start: _PartitionRecords).
        consumer._value_deserializer = _as_record
        # The fetcher makes them by this module name (any other consumer of the process
        # keeps aiokafka's records: it has no mark).
        aiokafka_fetcher.PartitionRecords = _PartitionRecords
        return consumer


class Transport(faust_aiokafka.Transport):
    Consumer = _BatchingConsumer


def _as_record(value: bytes | None) -> bytes | None:
    """The worker consumer's value deserializer: the value as it is. Only a mark (see
    _PartitionRecords): were it ever called, it would change nothing."""
    return value


class _PartitionRecords(aiokafka_fetcher.PartitionRecords):  # type: ignore[misc]  # untyped
    """aiokafka's unpacking of one partition's fetched records (pinned 0.14.0), making for
    the worker's consumer a :class:`~streams.batch.Record` of each record instead of
    aiokafka's ``ConsumerRecord``: an 11-field dataclass (key, sizes, checksum, headers the
    worker never reads) that the fetch loop then copied into a Record. Both ran per record
    with the GIL the batch loop needs, ~1 µs. What is unpacked is aiokafka's decision as
    before (CRCs, aborted transactions, control batches, the next fetch offset): only the
    object made of each record it yields changes. Another consumer's records (no mark) are
    aiokafka's own."""

    def _consumer_record(self, tp: Any, record: Any) -> Any:
        if self._value_deserializer is not _as_record:
            return super()._consumer_record(tp, record)
        # Its timestamp stays the record's own milliseconds, whatever they are (a CreateTime
        # may be any 64-bit number): judged later, never here.
        kind = LOG_APPEND_TIME if record.timestamp_type == LOG_APPEND_TIME else CREATE_TIME
        # tuple.__new__: the named tuple's own __new__ is a Python function (0.15 µs a record).
        return _new_record(
            Record, (tp.topic, tp.partition, record.offset, record.value, record.timestamp, kind)
        )


_new_record = tuple.__new__

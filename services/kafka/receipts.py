"""A department reads its receipts: what the worker decided about each record it sent.

Reads ``city.receipts.<department>.v1`` (plus ``CITYSTREAM_TOPIC_NAMESPACE``; format in
:mod:`schemas.receipts`) with kafka-python, group-less (nothing committed, any number of
readers). A department needs nothing but its own Kafka credentials for it: no database,
nothing of another department (the topic is per department so that it can be ACL'd so).

Three uses:

- :meth:`ReceiptReader.wait`: the outcome of records just sent, by their Kafka positions
  (``citystream import --wait``, ``emit --wait``);
- :meth:`ReceiptReader.since`: every receipt from a moment on (``citystream receipts``);
- :meth:`ReceiptReader.ledger`: what the ledger holds of some of the department's events
  (their stored JSON, the corrections applied to them, the correction references used):
  how the ledger import tells an unchanged row from a changed one.

What the reader makes of the receipts (:class:`Waiting`, :func:`fold`) is pure and lives in
:mod:`services.receipts.view`; ``citystream receipts-rebuild`` (operators, with database
access; :mod:`services.receipts.rebuild`) publishes a department's receipts again from
PostgreSQL: for a ledger older than receipts, or a receipts topic lost.

Env: ``CITYSTREAM_KAFKA_BOOTSTRAP``, ``CITYSTREAM_TOPIC_NAMESPACE``,
``CITYSTREAM_PRODUCER_TIMEOUT_S``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from schemas.errors import CityStreamError
from schemas.receipts import Mark, Receipt, decode_record
from schemas.topics import receipts_topic
from services.kafka.client import KafkaAuthenticationError, kafka_client
from services.receipts.view import LedgerView, Outcome, Position, Waiting, fold
from streams.settings import MissingCredentials, Settings

# How long a topic missing from the metadata is asked for again before it counts as missing.
TOPIC_WAIT_S = 3.0


class ReceiptsError(CityStreamError):
    """The receipts could not be read; the message says why and what to do."""


class ReceiptReader:
    """A group-less consumer of one department's receipts topic; a context manager."""

    def __init__(self, settings: Settings, department: str) -> None:
        self.topic = settings.topic_name(receipts_topic(department))
        self.department = department
        timeout_ms = int(settings.producer_timeout_s * 1000)
        try:
            # As the department itself: it may read its own receipts topic and no other.
            self._consumer = kafka_client(
                KafkaConsumer,
                settings,
                department,
                timeout_s=settings.producer_timeout_s,
                group_id=None,
                enable_auto_commit=False,
                client_id=f"citystream-receipts-{department}",
                max_partition_fetch_bytes=16 * 1024 * 1024,
                fetch_max_bytes=64 * 1024 * 1024,
                request_timeout_ms=timeout_ms + 5_000,
            )
        except (MissingCredentials, KafkaAuthenticationError) as exc:
            raise ReceiptsError(str(exc)) from exc
        except KafkaError as exc:
            raise ReceiptsError(
                f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}): start the local "
                "stack with 'citystream stack up' or set CITYSTREAM_KAFKA_BOOTSTRAP"
            ) from exc
        try:
            partitions = self._partitions(self.topic)
        except KafkaError as exc:
            self._consumer.close()
            raise ReceiptsError(f"reading the receipts topic {self.topic} failed: {exc}") from exc
        if not partitions:
            self._consumer.close()
            raise ReceiptsError(
                f"Kafka has no receipts topic {self.topic}; create it with 'citystream topics'"
            )
        self._tp = TopicPartition(self.topic, min(partitions))
        self._consumer.assign([self._tp])

    def __enter__(self) -> ReceiptReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._consumer.close()

    def _partitions(self, topic: str) -> set[int]:
        """The topic's partitions; asked again for a few seconds when the client's metadata
        does not have it yet (a topic created a moment ago, e.g. by `citystream topics`)."""
        deadline = time.monotonic() + TOPIC_WAIT_S
        while True:
            found = self._consumer.partitions_for_topic(topic)
            if found or time.monotonic() > deadline:
                return set(found or ())
            self._consumer.topics()  # a full metadata request: the cache is refreshed
            time.sleep(0.1)

    def has_topic(self, topic: str) -> bool:
        """Whether Kafka has ``topic`` (full name): asked on this reader's connection, whose
        metadata is already fetched (a new client waits ~0.1 s for its first)."""
        try:
            return bool(self._partitions(topic))
        except KafkaError as exc:
            raise ReceiptsError(f"asking Kafka for topic {topic} failed: {exc}") from exc

    def end(self) -> int:
        """The offset the next receipt will get: read from here to see only later ones."""
        return int(self._consumer.end_offsets([self._tp])[self._tp])

    def _records(
        self, start: int, stop: int | None, *, until: float | None = None
    ) -> Iterator[tuple[list[Receipt] | Mark, int]]:
        """Decoded records from ``start`` to ``stop`` (exclusive; None: keep reading until
        the monotonic deadline ``until``), each with its offset."""
        self._consumer.seek(self._tp, start)
        position = start
        while stop is None or position < stop:
            if until is not None and time.monotonic() > until:
                return
            try:
                polled = self._consumer.poll(timeout_ms=200)
            except KafkaError as exc:
                raise ReceiptsError(f"reading {self.topic} failed: {exc}") from exc
            for message in polled.get(self._tp, ()):
                if stop is not None and message.offset >= stop:
                    return
                position = message.offset + 1
                decoded = decode_record(message.value, message.timestamp)
                if decoded is not None:
                    yield decoded, message.offset
            if not polled:
                position = max(position, self._consumer.position(self._tp))
                if stop is not None and position >= stop:
                    return
                if stop is None and until is None:
                    return

    def wait(
        self,
        positions: Collection[Position],
        *,
        start: int,
        timeout_s: float,
        progress: Callable[[int], None] | None = None,
    ) -> dict[Position, Outcome]:
        """The outcome of each record at ``positions``, reading receipts from ``start`` (the
        receipts topic's end before they were sent) until every one is known or
        ``timeout_s`` passed (those are left ``pending``)."""
        waiting = Waiting(positions)
        if waiting.done:
            return waiting.outcomes
        deadline = time.monotonic() + timeout_s
        for decoded, _ in self._records(start, None, until=deadline):
            settled = waiting.take(decoded)
            if settled and progress:
                progress(settled)
            if waiting.done:
                break
        return waiting.outcomes

    def since(self, moment: datetime | None, until: datetime | None = None) -> list[Receipt]:
        """Every receipt the worker published from ``moment`` (its broker time) on, up to
        ``until``, the last copy of each (a receipt published again replaces itself)."""
        start = 0
        if moment is not None:
            found = self._consumer.offsets_for_times({self._tp: int(moment.timestamp() * 1000)})
            start = self.end() if found.get(self._tp) is None else int(found[self._tp].offset)
        stop = self.end()
        if until is not None:
            found = self._consumer.offsets_for_times({self._tp: int(until.timestamp() * 1000) + 1})
            stop = stop if found.get(self._tp) is None else int(found[self._tp].offset)
        latest: dict[tuple[str, int, int, int], Receipt] = {}
        for decoded, _ in self._records(start, stop):
            if isinstance(decoded, Mark):
                continue
            for receipt in decoded:
                key = (receipt.topic, receipt.incarnation, receipt.partition, receipt.offset)
                latest[key] = receipt
        return sorted(
            latest.values(),
            key=lambda r: (r.judged_at or datetime.min, r.topic, r.partition, r.offset),
        )

    def ledger(self, event_ids: Collection[str]) -> LedgerView:
        """What the ledger holds of the events ``event_ids``: the stored JSON of each, the
        corrections stored for them; and every correction reference of the department.
        Reads the whole topic (a department's history); only what is asked for is kept."""
        stop = self.end()
        if stop == 0:
            return LedgerView()
        return fold((decoded for decoded, _ in self._records(0, stop)), event_ids)


def publish_again(settings: Settings, topic: str, *waves: Sequence[tuple[bytes, bytes]]) -> None:
    """As the workers (the one principal that may write receipts): publish ``(key, value)``
    records to a receipts topic again, each wave acknowledged before the next is sent
    (receipts before the marks that vouch for them). Raises ReceiptsError."""
    try:
        producer = kafka_client(
            KafkaProducer,
            settings,
            "worker",
            timeout_s=settings.producer_timeout_s,
            acks="all",
            enable_idempotence=True,
            client_id="citystream-receipts-rebuild",
        )
    except (MissingCredentials, KafkaAuthenticationError, KafkaError) as exc:
        raise ReceiptsError(f"{exc} (receipts-rebuild writes as the workers)") from exc
    try:
        for wave in waves:
            for key, value in wave:
                producer.send(topic, value, key=key)
            producer.flush(timeout=settings.producer_timeout_s)
    except KafkaError as exc:
        raise ReceiptsError(f"publishing receipts failed: {exc}") from exc
    finally:
        producer.close()

"""Reading the city.* topics back for audit replay, with kafka-python's ``KafkaConsumer``.

Partitions are assigned by hand and the consumer has no group: nothing is committed and
no worker's consumer group is touched, so an audit can run beside the live workers.
Positions in time come from Kafka's time index (``offsets_for_times``).

Records may come in any codec a producer may use (gzip, snappy, lz4, zstd): kafka-python
decodes snappy and zstd only with ``python-snappy`` and ``zstandard`` installed, which
``pyproject.toml`` requires. Should a record still be undecodable here (a library missing
from this Python, a codec this kafka-python does not know), :class:`UndecodableRecordError`
says which codec and which record — not that Kafka is unreachable.

Every client here logs in as the ``auditor`` principal, which may read the city.* topics and
their configuration and nothing else (``services.kafka.access``).

Topics: whatever the caller names (full names, ``CITYSTREAM_TOPIC_NAMESPACE`` included).
Env: ``CITYSTREAM_KAFKA_BOOTSTRAP``, ``CITYSTREAM_KAFKA_AUDITOR_PASSWORD``.
"""

from __future__ import annotations

import heapq
import re
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError, UnsupportedCodecError

from schemas.errors import CityStreamError
from services.kafka.client import KafkaAuthenticationError, kafka_client, refusal
from streams.settings import MissingCredentials, Settings

TP = tuple[str, int]
# The principal every audit read runs as.
AUDITOR = "auditor"

# No record for this long from a partition that still owes some: give up, say which.
STALL_TIMEOUT_S = 60.0
# How long finding the record that cannot be decoded may take (one poll per partition).
LOCATE_TIMEOUT_S = 30.0


class KafkaReadError(CityStreamError):
    """Kafka could not be read as asked; the message says what and what to do."""


class UndecodableRecordError(KafkaReadError):
    """Kafka holds a record this installation cannot decode (its compression codec).

    Kafka was reached and the record is there: what is missing is on this side, so it is
    not reported as Kafka being unreachable. ``codec`` is kafka-python's name for it
    ("snappy", "zstd", …, or "type N" for an id it does not know); ``topic``,
    ``partition`` and ``offset`` are None when the record could not be located.
    """

    def __init__(
        self,
        message: str,
        *,
        codec: str,
        topic: str | None,
        partition: int | None,
        offset: int | None,
    ) -> None:
        super().__init__(message)
        self.codec = codec
        self.topic = topic
        self.partition = partition
        self.offset = offset


# kafka-python's two messages (kafka/record/default_records.py, legacy_records.py).
_MISSING_LIBRARY_RE = re.compile(r"Libraries for (\w+) compression codec not found")
_UNKNOWN_CODEC_RE = re.compile(r"Unrecognized compression type: (\S+)")
# What kafka/codec.py imports for each codec; gzip is Python's own.
CODEC_PACKAGES = {"snappy": "python-snappy", "lz4": "lz4", "zstd": "zstandard"}


def undecodable(
    exc: UnsupportedCodecError,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> UndecodableRecordError:
    """kafka-python's UnsupportedCodecError, which names neither the record nor what to
    do, as an error that says which codec, which record, and what to do."""
    detail = str(exc.args[0]) if exc.args else ""
    where = (
        f"the record at {topic}[{partition}] offset {offset}"
        if topic is not None and partition is not None and offset is not None
        else f"a record of {topic}"
        if topic is not None
        else "a record"
    )
    missing = _MISSING_LIBRARY_RE.search(detail)
    unknown = _UNKNOWN_CODEC_RE.search(detail)
    if missing is not None:
        codec = missing.group(1)
        package = CODEC_PACKAGES.get(codec, codec)
        why = (
            f"it is compressed with {codec}, and kafka-python finds no {codec} library in "
            f"this Python: install the package {package!r} (a dependency of CityStream; "
            "'make install' installs them all)"
        )
    elif unknown is not None:
        codec = f"type {unknown.group(1)}"
        why = (
            f"it is compressed with codec {codec}, which this kafka-python does not know "
            "(it reads gzip, snappy, lz4 and zstd): the producer used a newer codec"
        )
    else:
        codec = "unknown"
        why = f"kafka-python cannot decompress it ({detail or type(exc).__name__})"
    return UndecodableRecordError(
        f"cannot decode {where}: {why}",
        codec=codec,
        topic=topic,
        partition=partition,
        offset=offset,
    )


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    timestamp_ms: int
    # CreateTime 0 or LogAppendTime 1: judged as the worker judged it
    # (schemas.validation.record_clock).
    timestamp_type: int


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class TopicReader:
    """A group-less consumer over some topics; use as a context manager."""

    def __init__(self, settings: Settings, topics: Sequence[str]) -> None:
        self._settings = settings
        try:
            self._consumer = kafka_client(
                KafkaConsumer,
                settings,
                AUDITOR,
                timeout_s=settings.producer_timeout_s,
                group_id=None,
                enable_auto_commit=False,
                # As the workers read: the records of an aborted transaction never counted.
                isolation_level="read_committed",
                client_id="citystream-audit",
                # Large fetches: replay reads whole topics, the broker is the bottleneck
                # only if each round trip brings back little.
                max_partition_fetch_bytes=8 * 1024 * 1024,
                fetch_max_bytes=64 * 1024 * 1024,
                max_poll_records=20_000,
                request_timeout_ms=int(settings.producer_timeout_s * 1000) + 5_000,
            )
        except (KafkaAuthenticationError, MissingCredentials) as exc:
            raise KafkaReadError(str(exc)) from exc
        except KafkaError as exc:
            raise KafkaReadError(
                f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}): start the local "
                "stack with 'citystream stack up', set CITYSTREAM_KAFKA_BOOTSTRAP, or replay "
                "with --source ledger"
            ) from exc
        self._tps: list[TopicPartition] = []
        for topic in topics:
            partitions = self._consumer.partitions_for_topic(topic)
            if not partitions:
                self._consumer.close()
                raise KafkaReadError(f"topic {topic} does not exist (run 'citystream topics')")
            self._tps.extend(TopicPartition(topic, p) for p in sorted(partitions))

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._consumer.close()

    @property
    def partitions(self) -> list[TP]:
        return [(tp.topic, tp.partition) for tp in self._tps]

    def bounds(self, start: datetime | None, end: datetime | None) -> dict[TP, tuple[int, int]]:
        """Per partition, the offsets [first, past-last) of the records whose timestamp is
        at or after ``start`` (default: the earliest Kafka still holds) and at or before
        ``end`` (default: the end of the partition now)."""
        try:
            first = self._consumer.beginning_offsets(self._tps)
            last = self._consumer.end_offsets(self._tps)
            lo = dict(first)
            hi = dict(last)
            if start is not None:
                lo = self._offsets_at(_ms(start), last)
            if end is not None:
                # The first record after ``end`` (timestamps are whole milliseconds).
                hi = self._offsets_at(_ms(end) + 1, last)
        except KafkaError as exc:
            raise KafkaReadError(f"reading offsets from Kafka failed: {exc}") from exc
        return {
            (tp.topic, tp.partition): (max(lo[tp], first[tp]), max(hi[tp], first[tp]))
            for tp in self._tps
        }

    def _offsets_at(self, ms: int, last: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        found: dict[TopicPartition, Any] = self._consumer.offsets_for_times(
            {tp: ms for tp in self._tps}
        )
        # None: no record at or after that time, i.e. the partition's end.
        return {tp: last[tp] if found[tp] is None else found[tp].offset for tp in self._tps}

    def read(self, bounds: Mapping[TP, tuple[int, int]]) -> Iterator[KafkaRecord]:
        """The records inside ``bounds``, every partition in offset order, the partitions
        merged by record timestamp (ties by topic, partition, offset): the order in which
        the departments sent them, which is the order the sink judged them in."""
        wanted = [
            tp
            for tp in self._tps
            if bounds[(tp.topic, tp.partition)][0] < bounds[(tp.topic, tp.partition)][1]
        ]
        if not wanted:
            return
        index = {tp: i for i, tp in enumerate(wanted)}
        ends = [bounds[(tp.topic, tp.partition)][1] for tp in wanted]
        # Records wait here until every partition that may still hold an earlier one has
        # shown its next record. No back-pressure by pause(): kafka-python 3.0's poll() was
        # seen to block for good once partitions were paused, so a partition whose records
        # lie far ahead of the others' in time is held in memory until they catch up.
        buffers: list[deque[KafkaRecord]] = [deque() for _ in wanted]
        finished = [False] * len(wanted)
        consumer = self._consumer
        consumer.assign(wanted)
        for tp in wanted:
            consumer.seek(tp, bounds[(tp.topic, tp.partition)][0])
        # One heap entry per partition with buffered records: its head's sort key.
        heap: list[tuple[int, str, int, int, int]] = []
        # Partitions that may still bring a record earlier than anything buffered.
        waiting = set(range(len(wanted)))
        last_progress = time.monotonic()
        while heap or waiting:
            if waiting:
                try:
                    polled = consumer.poll(timeout_ms=500)
                except UnsupportedCodecError as exc:
                    found = self._locate(
                        [tp for i, tp in enumerate(wanted) if not finished[i]],
                        dict(zip(wanted, ends, strict=True)),
                    )
                    if found is None:
                        topics = {tp.topic for tp in wanted}
                        only = next(iter(topics)) if len(topics) == 1 else None
                        raise undecodable(exc, topic=only) from exc
                    tp, offset, again = found
                    raise undecodable(
                        again, topic=tp.topic, partition=tp.partition, offset=offset
                    ) from exc
                except KafkaError as exc:
                    raise KafkaReadError(f"reading from Kafka failed: {exc}") from exc
                for tp, records in polled.items():
                    i = index[tp]
                    buffer = buffers[i]
                    was_empty = not buffer
                    for r in records:
                        if r.offset >= ends[i]:
                            break
                        buffer.append(
                            KafkaRecord(
                                r.topic,
                                r.partition,
                                r.offset,
                                r.value,
                                r.timestamp,
                                r.timestamp_type,
                            )
                        )
                    if buffer:
                        last_progress = time.monotonic()
                        if was_empty:
                            head = buffer[0]
                            heapq.heappush(
                                heap,
                                (head.timestamp_ms, head.topic, head.partition, head.offset, i),
                            )
                            waiting.discard(i)
                for i in list(waiting):
                    # Past the end (also across gaps of offsets that hold no record).
                    if consumer.position(wanted[i]) >= ends[i]:
                        finished[i] = True
                        waiting.discard(i)
                if waiting and not heap and time.monotonic() - last_progress > STALL_TIMEOUT_S:
                    late = ", ".join(f"{wanted[i].topic}[{wanted[i].partition}]" for i in waiting)
                    raise KafkaReadError(
                        f"no records from {late} for {STALL_TIMEOUT_S:.0f} s although the "
                        "partition's offsets say there are more; is the broker healthy?"
                    )
            while heap and not waiting:
                _, _, _, _, i = heapq.heappop(heap)
                buffer = buffers[i]
                yield buffer.popleft()
                if buffer:
                    head = buffer[0]
                    heapq.heappush(
                        heap, (head.timestamp_ms, head.topic, head.partition, head.offset, i)
                    )
                elif not finished[i]:
                    if consumer.position(wanted[i]) >= ends[i]:
                        finished[i] = True
                    else:
                        waiting.add(i)
        consumer.unsubscribe()

    def _locate(
        self, candidates: Sequence[TopicPartition], ends: Mapping[TopicPartition, int]
    ) -> tuple[TopicPartition, int, UnsupportedCodecError] | None:
        """The partition and offset an UnsupportedCodecError of poll() is about, which it
        does not say: each partition that still owes records is read alone from its
        position (poll() has returned everything before the failing batch) until one fails
        the same way; None if none does within LOCATE_TIMEOUT_S.

        With a consumer of its own: kafka-python 3.0.12 keeps the failed partition's
        spent record iterator, and a later poll() of that partition spins forever."""
        settings = self._settings
        positions = {tp: self._consumer.position(tp) for tp in candidates}
        try:
            probe = kafka_client(
                KafkaConsumer,
                settings,
                AUDITOR,
                timeout_s=settings.producer_timeout_s,
                group_id=None,
                enable_auto_commit=False,
                client_id="citystream-audit-probe",
                # One batch per partition is all it looks at (Kafka sends at least one).
                max_partition_fetch_bytes=1024 * 1024,
                fetch_max_bytes=1024 * 1024,
                request_timeout_ms=int(settings.producer_timeout_s * 1000) + 5_000,
            )
        except (KafkaError, KafkaAuthenticationError):
            return None
        deadline = time.monotonic() + LOCATE_TIMEOUT_S
        try:
            for tp in candidates:
                if positions[tp] >= ends[tp]:
                    continue
                probe.assign([tp])
                probe.seek(tp, positions[tp])
                while time.monotonic() < deadline:
                    try:
                        polled = probe.poll(timeout_ms=500, max_records=1)
                    except UnsupportedCodecError as exc:
                        return tp, positions[tp], exc
                    except KafkaError:
                        break  # not a codec this partition lacks; try the next one
                    if polled:
                        break  # this partition decodes
        finally:
            probe.close()
        return None


def topic_retention(settings: Settings, topics: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Topic → (retention.ms, retention.bytes) as the broker applies them; -1 is unlimited.

    The audit record is the topic itself, so replay warns about any topic that keeps less.
    """
    try:
        admin = kafka_client(
            KafkaAdminClient,
            settings,
            AUDITOR,
            timeout_s=settings.producer_timeout_s,
            client_id="citystream-audit",
        )
    except (KafkaAuthenticationError, MissingCredentials) as exc:
        raise KafkaReadError(str(exc)) from exc
    except KafkaError as exc:
        raise KafkaReadError(f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc})") from exc
    try:
        found: dict[str, Any] = admin.describe_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, name, configs=["retention.ms", "retention.bytes"]
                )
                for name in topics
            ]
        )
    except KafkaError as exc:
        why = refusal(exc, principal=AUDITOR, what="read the topics' configuration")
        raise KafkaReadError(f"reading the topics' configuration failed: {why or exc}") from exc
    finally:
        admin.close()
    configs = found.get("topic", {})
    return {
        name: (
            int(configs[name]["retention.ms"]["value"]),
            int(configs[name]["retention.bytes"]["value"]),
        )
        for name in topics
        if name in configs
    }


def topic_ids(settings: Settings, topics: Sequence[str]) -> dict[str, uuid.UUID]:
    """Topic → the id the broker gave it at creation: which incarnation Kafka holds."""
    from services.kafka.topics import TopicIds

    lookup = TopicIds(settings, principal=AUDITOR, timeout_s=settings.producer_timeout_s)
    try:
        return dict(lookup(topics))
    except (KafkaError, OSError, KafkaAuthenticationError, MissingCredentials) as exc:
        raise KafkaReadError(f"reading the topics' ids failed: {exc}") from exc
    finally:
        lookup.close()


def checkpoint_documents(settings: Settings) -> list[tuple[int, bytes]]:
    """(offset, value) of every record on the checkpoint topic, oldest first."""
    from schemas.topics import CHECKPOINT_TOPIC

    topic = settings.topic_name(CHECKPOINT_TOPIC)
    found: list[tuple[int, bytes]] = []
    with TopicReader(settings, [topic]) as reader:
        bounds = reader.bounds(None, None)
        for record in reader.read(bounds):
            if record.value is not None:
                found.append((record.offset, record.value))
    return sorted(found)

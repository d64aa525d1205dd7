"""The only module that imports kafka-python: sending events, creating topics, probing
the broker.

Topics: ``city.<family>.v1``, ``city.deadletter.v1`` and each department's
``city.receipts.<department>.v1`` from :mod:`schemas.topics` (plus
``CITYSTREAM_TOPIC_NAMESPACE``).
Env: ``CITYSTREAM_KAFKA_BOOTSTRAP``, ``CITYSTREAM_PRODUCER_TIMEOUT_S``.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.envelope import DEPARTMENTS, Envelope
from schemas.topics import ALL, BY_EVENT_TYPE, DEADLETTER_TOPIC, receipts_topic
from services.settings import Settings

log = logging.getLogger("citystream.producer")


class DeliveryError(RuntimeError):
    """Kafka did not acknowledge an event within the configured time; it was not sent."""


@dataclass(frozen=True)
class Delivery:
    event_id: str
    topic: str
    partition: int
    offset: int


class Producer:
    """Sends validated events with ``acks=all`` and idempotence; flushes on exit."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        timeout_ms = int(settings.producer_timeout_s * 1000)
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap,
                acks="all",
                enable_idempotence=True,
                compression_type="lz4",
                # A few ms of lingering fills 256 KB batches under load, costs nothing when idle.
                linger_ms=15,
                batch_size=256 * 1024,
                max_in_flight_requests_per_connection=5,
                delivery_timeout_ms=timeout_ms,
                request_timeout_ms=min(timeout_ms // 2, 30_000),
                max_block_ms=timeout_ms,
                bootstrap_timeout_ms=timeout_ms,
                client_id="citystream-producer",
            )
        except KafkaError as exc:
            raise DeliveryError(
                f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}): start the local stack "
                "with 'citystream stack up' or set CITYSTREAM_KAFKA_BOOTSTRAP"
            ) from exc
        atexit.register(self.close)
        self._closed = False

    def send(self, event: Envelope) -> Any:
        """Queue one event; returns a future whose ``.get()`` gives the record metadata."""
        spec = BY_EVENT_TYPE[event.event_type_name]
        return self._producer.send(
            self._settings.topic_name(spec.name),
            key=event.partition_key(),
            value=event.model_dump_json().encode(),
            headers=[
                ("event_type", event.event_type_name.encode()),
                ("schema_version", str(event.schema_version).encode()),
                ("department", event.department.encode()),
            ],
        )

    def send_raw(
        self,
        topic_base: str,
        value: bytes | None,
        key: bytes | None = None,
        timestamp_ms: int | None = None,
    ) -> Any:
        """Send bytes as they are (tests, replays of dead letters); no validation."""
        return self._producer.send(
            self._settings.topic_name(topic_base), key=key, value=value, timestamp_ms=timestamp_ms
        )

    def send_all(self, events: Iterable[Envelope]) -> list[Delivery]:
        """Send and wait for every acknowledgement; raises DeliveryError on the first failure."""
        pending = [(event, self.send(event)) for event in events]
        self.flush()
        return [self._result(event, future) for event, future in pending]

    def _result(self, event: Envelope, future: Any) -> Delivery:
        try:
            meta = future.get(timeout=self._settings.producer_timeout_s)
        except KafkaError as exc:
            raise DeliveryError(f"event {event.event_id} was not delivered: {exc}") from exc
        return Delivery(str(event.event_id), meta.topic, meta.partition, meta.offset)

    def flush(self) -> None:
        try:
            self._producer.flush(timeout=self._settings.producer_timeout_s)
        except KafkaError as exc:
            raise DeliveryError(f"Kafka did not take the queued events: {exc}") from exc

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._producer.close(timeout=self._settings.producer_timeout_s)


def wait_for_broker(bootstrap: str, *, timeout_s: float) -> str:
    """Return the cluster id once a metadata request succeeds; TimeoutError otherwise."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=int(timeout_s * 1000),
            client_id="citystream-probe",
        )
    except (KafkaError, OSError) as exc:
        raise TimeoutError(str(exc)) from exc
    try:
        cluster: dict[str, Any] = admin.describe_cluster()
        return str(cluster["cluster_id"])
    except (KafkaError, OSError) as exc:
        raise TimeoutError(str(exc)) from exc
    finally:
        admin.close()


# The broker stamps every record of a city.* topic as it appends it: "in the future" is then
# judged against a clock the sending department does not control (schemas.validation).
TOPIC_CONFIGS = {
    "retention.ms": "-1",
    "retention.bytes": "-1",
    "message.timestamp.type": "LogAppendTime",
}
# A department's receipts (schemas/receipts.py): one partition, because a mark must follow
# the receipts it vouches for; compacted, because a receipt published again (a worker
# crashed before its receipts were acknowledged) repeats its key. Nothing else is ever
# removed: every key is one record's position, so the topic keeps every receipt.
RECEIPT_TOPIC_CONFIGS = {
    "cleanup.policy": "compact",
    "message.timestamp.type": "LogAppendTime",
}
# Set on topics that exist already (made before it was, or changed since); retention is
# left as the operator set it (`audit replay` warns when it is not unlimited).
ENFORCED_CONFIGS = ("message.timestamp.type",)


@dataclass(frozen=True)
class TopicsReport:
    created: list[str]
    # Existing topics whose settings were changed back: name → "key: old → new".
    fixed: dict[str, list[str]]


def ensure_topics(settings: Settings, *, wait_s: float = 0.0) -> TopicsReport:
    """Create the city.* topics that are missing and set ``ENFORCED_CONFIGS`` on those that
    exist.

    Retention is unlimited: the topics are the audit record that replay re-reads.
    ``wait_s``: how long to keep retrying while the broker is unreachable (a worker started
    during a Kafka outage waits for it instead of exiting).
    """
    deadline = time.monotonic() + wait_s
    delay = 0.5
    while True:
        try:
            return _ensure_topics(settings)
        except KafkaError as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("Kafka unreachable (%s); retrying in %.1f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _ensure_topics(settings: Settings) -> TopicsReport:
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="citystream-admin"
    )
    try:
        existing = set(admin.list_topics())
        wanted = [settings.topic_name(spec.name) for spec in ALL]
        wanted.append(settings.topic_name(DEADLETTER_TOPIC))
        receipts = {settings.topic_name(receipts_topic(d)) for d in DEPARTMENTS}
        wanted.extend(sorted(receipts))
        created = []
        for name in wanted:
            if name in existing:
                continue
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            name,
                            num_partitions=1 if name in receipts else settings.topic_partitions,
                            replication_factor=settings.topic_replication_factor,
                            topic_configs=dict(
                                RECEIPT_TOPIC_CONFIGS if name in receipts else TOPIC_CONFIGS
                            ),
                        )
                    ],
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # another process created it meanwhile
        fixed = _enforce_configs(admin, [name for name in wanted if name not in created])
        for name, changes in fixed.items():
            log.warning("topic %s reconfigured: %s", name, "; ".join(changes))
        return TopicsReport(created, fixed)
    finally:
        admin.close()


def _enforce_configs(admin: KafkaAdminClient, names: list[str]) -> dict[str, list[str]]:
    if not names:
        return {}
    found: dict[str, Any] = admin.describe_configs(
        [
            ConfigResource(ConfigResourceType.TOPIC, name, configs=list(ENFORCED_CONFIGS))
            for name in names
        ]
    ).get("topic", {})
    fixed: dict[str, list[str]] = {}
    for name in names:
        current = found.get(name, {})
        changes = {
            key: TOPIC_CONFIGS[key]
            for key in ENFORCED_CONFIGS
            if current.get(key, {}).get("value") != TOPIC_CONFIGS[key]
        }
        if not changes:
            continue
        # Incremental (KIP-339): only these keys change, the topic's others stay as they are.
        result = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs=changes)]
        )
        outcome = result.get("topic", {}).get(name)
        if outcome != "OK":
            raise KafkaError(f"setting {', '.join(changes)} on {name} failed: {outcome}")
        fixed[name] = [
            f"{key}: {current.get(key, {}).get('value')} → {value}"
            for key, value in changes.items()
        ]
    return fixed


class TopicIds:
    """Topic name → the id the broker gave it at creation (Kafka ≥ 2.8): a topic deleted and
    created again under the same name has a new one. For the worker's reset check, which
    calls it from a thread; one admin connection, kept open between calls."""

    def __init__(self, settings: Settings, *, timeout_s: float = 5.0) -> None:
        self._settings = settings
        self._timeout_ms = int(timeout_s * 1000)
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()

    def __call__(self, topics: Sequence[str]) -> dict[str, uuid.UUID]:
        with self._lock:
            try:
                if self._admin is None:
                    self._admin = KafkaAdminClient(
                        bootstrap_servers=self._settings.kafka_bootstrap,
                        client_id="citystream-topic-ids",
                        request_timeout_ms=self._timeout_ms,
                        bootstrap_timeout_ms=self._timeout_ms,
                    )
                described: list[dict[str, Any]] = self._admin.describe_topics(list(topics))
            except (KafkaError, OSError):
                self.close()
                raise
        return {
            str(topic["name"]): uuid.UUID(str(topic["topic_id"]))
            for topic in described
            if topic.get("error_code") == 0 and topic.get("topic_id")
        }

    def close(self) -> None:
        if self._admin is not None:
            admin, self._admin = self._admin, None
            admin.close()


def end_offsets(settings: Settings, topic_base: str) -> dict[int, int]:
    """Partition → offset of the next record to be written, for one city.* topic."""
    from kafka import KafkaConsumer, TopicPartition

    name = settings.topic_name(topic_base)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, client_id="citystream-offsets"
    )
    try:
        partitions = consumer.partitions_for_topic(name) or set()
        tps = [TopicPartition(name, p) for p in sorted(partitions)]
        return {tp.partition: int(offset) for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()

"""Sending: a department's :class:`Producer` writes its events to ``city.<family>.v1``
(:mod:`schemas.topics`, plus ``CITYSTREAM_TOPIC_NAMESPACE``) as that department;
:func:`publish_checkpoint` appends the auditor's signed checkpoints to
``city.audit-checkpoints.v1``.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import (
    KafkaError,
)

from schemas.envelope import Envelope
from schemas.topics import ALL, BY_EVENT_TYPE, CHECKPOINT_TOPIC
from services.kafka.client import DeliveryError, KafkaAuthenticationError, kafka_client, refusal
from streams.settings import DEPARTMENTS, MissingCredentials, Settings


@dataclass(frozen=True)
class Delivery:
    event_id: str
    topic: str
    partition: int
    offset: int


class Producer:
    """Sends validated events with ``acks=all`` and idempotence; flushes on exit.

    Each record is sent as the department whose family's topic it goes to, over that
    department's own authenticated connection (opened on first use): the broker lets each
    department write only its own topic, and the worker refuses a ``department`` field that
    is not the topic's. ``department`` pins the producer to one department (a department's
    own machine holds only its password): it connects at once, refuses another family's
    events before sending, and ``send_raw`` writes any topic as that department — the
    broker then decides.
    """

    def __init__(self, settings: Settings, *, department: str | None = None) -> None:
        if department is not None and department not in DEPARTMENTS:
            raise DeliveryError(
                f"unknown department {department!r}; one of {', '.join(DEPARTMENTS)}"
            )
        self._settings = settings
        self._department = department
        self._producers: dict[str, KafkaProducer] = {}
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)
        if department is not None:
            self._client(department)

    def _client(self, department: str) -> KafkaProducer:
        with self._lock:
            producer = self._producers.get(department)
            if producer is not None:
                return producer
            settings = self._settings
            timeout_ms = int(settings.producer_timeout_s * 1000)
            try:
                producer = kafka_client(
                    KafkaProducer,
                    settings,
                    department,
                    timeout_s=settings.producer_timeout_s,
                    acks="all",
                    enable_idempotence=True,
                    compression_type="lz4",
                    # A few ms of lingering fills 256 KB batches under load, costs nothing idle.
                    linger_ms=15,
                    batch_size=256 * 1024,
                    max_in_flight_requests_per_connection=5,
                    delivery_timeout_ms=timeout_ms,
                    request_timeout_ms=min(timeout_ms // 2, 30_000),
                    max_block_ms=timeout_ms,
                    client_id=f"citystream-producer-{department}",
                )
            except (MissingCredentials, KafkaAuthenticationError) as exc:
                raise DeliveryError(str(exc)) from exc
            except KafkaError as exc:
                raise DeliveryError(
                    f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}): start the local "
                    "stack with 'citystream stack up' or set CITYSTREAM_KAFKA_BOOTSTRAP"
                ) from exc
            self._producers[department] = producer
            return producer

    def _sender(self, topic_base: str) -> tuple[str, KafkaProducer]:
        department = self._department or _owner(topic_base)
        return department, self._client(department)

    def send(self, event: Envelope) -> Any:
        """Queue one event; returns a future whose ``.get()`` gives the record metadata."""
        spec = BY_EVENT_TYPE[event.event_type_name]
        if self._department is not None and self._department not in spec.departments:
            raise DeliveryError(
                f"this producer sends as department {self._department!r}, which may not send "
                f"{event.event_type_name} (topic {spec.name}); nothing was sent"
            )
        _, producer = self._sender(spec.name)
        return producer.send(
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
        _, producer = self._sender(topic_base)
        return producer.send(
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
            topic = self._settings.topic_name(BY_EVENT_TYPE[event.event_type_name].name)
            department = self._department or _owner(BY_EVENT_TYPE[event.event_type_name].name)
            why = refusal(exc, principal=department, what=f"write {topic}")
            raise DeliveryError(f"event {event.event_id} was not delivered: {why or exc}") from exc
        return Delivery(str(event.event_id), meta.topic, meta.partition, meta.offset)

    def flush(self) -> None:
        for producer in list(self._producers.values()):
            try:
                producer.flush(timeout=self._settings.producer_timeout_s)
            except KafkaError as exc:
                raise DeliveryError(f"Kafka did not take the queued events: {exc}") from exc

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for producer in list(self._producers.values()):
                producer.close(timeout=self._settings.producer_timeout_s)


def _owner(topic_base: str) -> str:
    """The department that writes ``topic_base`` (a family's topic)."""
    for spec in ALL:
        if spec.name == topic_base:
            return sorted(spec.departments)[0]
    raise DeliveryError(
        f"{topic_base} is no department's topic: give the producer a department to send as"
    )


def publish_checkpoint(settings: Settings, key: bytes, value: bytes) -> tuple[int, int]:
    """As the auditor: append one signed checkpoint to its topic; (partition, offset)."""
    producer = kafka_client(
        KafkaProducer,
        settings,
        "auditor",
        timeout_s=settings.producer_timeout_s,
        acks="all",
        enable_idempotence=True,
        max_block_ms=int(settings.producer_timeout_s * 1000),
        client_id="citystream-audit-checkpoint",
    )
    try:
        meta = producer.send(settings.topic_name(CHECKPOINT_TOPIC), key=key, value=value).get(
            timeout=settings.producer_timeout_s
        )
        return int(meta.partition), int(meta.offset)
    except KafkaError as exc:
        why = refusal(exc, principal="auditor", what="write the checkpoint topic")
        raise DeliveryError(f"the checkpoint was not published: {why or exc}") from exc
    finally:
        producer.close(timeout=settings.producer_timeout_s)

"""The topics: creating them with their settings and ACLs (as the admin,
``citystream topics``), and reading their metadata (which exist, their ids, their end
offsets) as any principal.

Topics: ``city.<family>.v1`` from :mod:`schemas.topics` (plus ``CITYSTREAM_TOPIC_NAMESPACE``),
``city.deadletter.v1``, ``city.audit-checkpoints.v1`` and each department's
``city.receipts.<department>.v1``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import (
    ConfigResource,
    ConfigResourceType,
    NewTopic,
)
from kafka.errors import (
    KafkaError,
    TopicAlreadyExistsError,
)

from schemas.errors import CityStreamError
from schemas.topics import ALL, CHECKPOINT_TOPIC, DEADLETTER_TOPIC, receipts_topic
from services.kafka.access import Grant, grants
from services.kafka.acls import create_acls
from services.kafka.client import KafkaAuthenticationError, admin_client, kafka_client
from streams.settings import DEPARTMENTS, MissingCredentials, Settings

log = logging.getLogger("citystream.kafka")


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


def topic_names(settings: Settings) -> list[str]:
    """Every topic CityStream uses, full names: the families', dead letters, checkpoints,
    and each department's receipts."""
    bases = [spec.name for spec in ALL] + [DEADLETTER_TOPIC, CHECKPOINT_TOPIC]
    bases += [receipts_topic(department) for department in DEPARTMENTS]
    return [settings.topic_name(base) for base in bases]


@dataclass(frozen=True)
class TopicsReport:
    created: list[str]
    # Existing topics whose settings were changed back: name → "key: old → new".
    fixed: dict[str, list[str]]
    # ACL bindings in force for these topics and the workers' group (services.kafka.access).
    grants: list[Grant]


def ensure_topics(settings: Settings, *, wait_s: float = 0.0) -> TopicsReport:
    """As the admin: create the CityStream topics that are missing, set ``ENFORCED_CONFIGS``
    on those that exist, and grant every principal its ACLs on them (``services.kafka.access``).

    Retention is unlimited: the topics are the audit record that replay re-reads.
    ``wait_s``: how long to keep retrying while the broker is unreachable.
    """
    deadline = time.monotonic() + wait_s
    delay = 0.5
    while True:
        try:
            return _ensure_topics(settings)
        except (KafkaAuthenticationError, MissingCredentials):
            raise  # waiting does not fix a password
        except KafkaError as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("Kafka unreachable (%s); retrying in %.1f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _ensure_topics(settings: Settings) -> TopicsReport:
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        wanted = topic_names(settings)
        receipts = {settings.topic_name(receipts_topic(d)) for d in DEPARTMENTS}
        created = []
        for name in wanted:
            if name in existing:
                continue
            single = name == settings.topic_name(CHECKPOINT_TOPIC)
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            name,
                            # Checkpoints and receipts keep their order in one partition.
                            num_partitions=1
                            if single or name in receipts
                            else settings.topic_partitions,
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
        granted = grants(settings)
        create_acls(admin, granted)
        return TopicsReport(created, fixed, granted)
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


# --------------------------------------------------------------------------- reading metadata


def missing_topics(settings: Settings, bases: Iterable[str], *, principal: str) -> list[str]:
    """The full names of the topics among ``bases`` that do not exist (or that ``principal``
    may not see: the broker answers both alike)."""
    consumer = kafka_client(
        KafkaConsumer,
        settings,
        principal,
        timeout_s=settings.producer_timeout_s,
        client_id="citystream-topics-check",
    )
    try:
        names = [settings.topic_name(base) for base in bases]
        return [name for name in names if not consumer.partitions_for_topic(name)]
    finally:
        consumer.close()


class MissingTopics(CityStreamError, LookupError):
    """A topic the worker needs does not exist (or its principal may not see it)."""


def wait_for_topics(settings: Settings, *, principal: str) -> None:
    """Block until the broker answers; then fail unless every topic a worker reads and
    writes exists. A worker started during a Kafka outage (or before the broker, in
    compose) waits instead of exiting; a worker may not create topics (only the admin may:
    ``citystream topics``), so a missing one is an error that says so."""
    bases = [spec.name for spec in ALL] + [DEADLETTER_TOPIC]
    delay = 0.5
    while True:
        try:
            missing = missing_topics(settings, bases, principal=principal)
            break
        except (KafkaAuthenticationError, MissingCredentials):
            raise
        except KafkaError as exc:
            log.warning("Kafka unreachable (%s); retrying in %.1f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    if missing:
        raise MissingTopics(
            f"topic(s) {', '.join(missing)} do not exist (or principal {principal!r} may not "
            "see them): create them and their ACLs with 'citystream topics' (as the admin)"
        )


class TopicIds:
    """Topic name → the id the broker gave it at creation (Kafka ≥ 2.8): a topic deleted and
    created again under the same name has a new one. For the worker's reset check, which
    calls it from a thread; one admin connection (as ``principal``: DESCRIBE on the topics
    suffices), kept open between calls."""

    def __init__(self, settings: Settings, *, principal: str, timeout_s: float = 5.0) -> None:
        self._settings = settings
        self._principal = principal
        self._timeout_s = timeout_s
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()

    def __call__(self, topics: Sequence[str]) -> dict[str, uuid.UUID]:
        with self._lock:
            try:
                if self._admin is None:
                    self._admin = kafka_client(
                        KafkaAdminClient,
                        self._settings,
                        self._principal,
                        timeout_s=self._timeout_s,
                        client_id="citystream-topic-ids",
                        request_timeout_ms=int(self._timeout_s * 1000),
                    )
                described: list[dict[str, Any]] = self._admin.describe_topics(list(topics))
            except (KafkaError, OSError, KafkaAuthenticationError):
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


def end_offsets(settings: Settings, topic_base: str, *, principal: str) -> dict[int, int]:
    """Partition → offset of the next record to be written, for one CityStream topic, asked
    as ``principal`` (DESCRIBE on the topic suffices)."""
    name = settings.topic_name(topic_base)
    consumer = kafka_client(
        KafkaConsumer,
        settings,
        principal,
        timeout_s=settings.producer_timeout_s,
        client_id="citystream-offsets",
    )
    try:
        partitions = consumer.partitions_for_topic(name) or set()
        tps = [TopicPartition(name, p) for p in sorted(partitions)]
        return {tp.partition: int(offset) for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()

"""Who may do what on Kafka: the ACLs of every CityStream principal, as data.

``services.kafka.topics.ensure_topics`` (``citystream topics``, the compose ``migrate`` step,
the tests for their own topic namespaces) creates exactly these bindings as the admin; the
README's security section prints the same table. Nothing here opens a connection.

Every binding is LITERAL on one full topic name (``CITYSTREAM_TOPIC_NAMESPACE`` included)
or one consumer group: no prefix a principal could grow into. The one exception is a
department's transactional ids (a department's own producer may write in transactions,
which the readers honour with read_committed): PREFIXED on ``<namespace><department>-``, so
that no department can use, and so fence, another's. Kafka's own implications
apply: READ, WRITE, DELETE and ALTER each imply DESCRIBE, so DESCRIBE is listed only where
it is all a principal gets. The broker runs ``StandardAuthorizer`` with
``allow.everyone.if.no.acl.found=false``: whatever is not granted here is refused, except
to the super users ``admin`` and ``broker``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.topics import ALL, CHECKPOINT_TOPIC, DEADLETTER_TOPIC, receipts_topic
from streams.settings import DEPARTMENTS, Settings

Operation = Literal["READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS"]
Resource = Literal["topic", "group", "transactional_id"]
# Super users (broker config ``super.users``): the admin and the broker itself.
SUPER_USERS = ("admin", "broker")


@dataclass(frozen=True, order=True)
class Grant:
    """ALLOW ``operation`` on one resource to ``User:<principal>`` from any host."""

    principal: str
    resource: Resource
    name: str
    operation: Operation
    # "prefixed": every name that starts with ``name`` (only a department's own
    # transactional ids); everything else is one literal name.
    pattern: Literal["literal", "prefixed"] = "literal"

    @property
    def kafka_principal(self) -> str:
        return f"User:{self.principal}"


def department_topic(department: str) -> str:
    """The base name of the only topic ``department`` may write."""
    for spec in ALL:
        if department in spec.departments:
            return spec.name
    raise ValueError(f"{department!r} is not a department of schemas/topics.py")


def grants(settings: Settings) -> list[Grant]:
    """Every ACL binding the principals need for the topics and group of ``settings``."""
    name = settings.topic_name
    families = [name(spec.name) for spec in ALL]
    found: list[Grant] = []
    for department in DEPARTMENTS:
        # WRITE alone also lets an idempotent producer initialise (Kafka 3.9, KIP-679).
        found.append(Grant(department, "topic", name(department_topic(department)), "WRITE"))
        found.append(
            Grant(department, "transactional_id", name(f"{department}-"), "WRITE", "prefixed")
        )
        # What the worker did with its records, and nobody else's (schemas/receipts.py).
        found.append(Grant(department, "topic", name(receipts_topic(department)), "READ"))
        found.append(Grant("worker", "topic", name(receipts_topic(department)), "WRITE"))
    for topic in families:
        found.append(Grant("worker", "topic", topic, "READ"))
    found.append(Grant("worker", "topic", name(DEADLETTER_TOPIC), "WRITE"))
    # READ on a group lets its members join it and commit (and so alter) its offsets.
    found.append(Grant("worker", "group", settings.consumer_group, "READ"))
    for topic in families:
        found.append(Grant("auditor", "topic", topic, "READ"))
        # replay --source kafka warns when a topic's retention is not unlimited.
        found.append(Grant("auditor", "topic", topic, "DESCRIBE_CONFIGS"))
    found.append(Grant("auditor", "topic", name(CHECKPOINT_TOPIC), "READ"))
    found.append(Grant("auditor", "topic", name(CHECKPOINT_TOPIC), "WRITE"))
    return sorted(found)

"""The only module that imports kafka-python for writing: sending events, creating topics,
ACLs and users, probing the broker. ``services.kafka_reader`` reads with the same
connection helper (:func:`kafka_client`).

Every client authenticates (SASL/SCRAM-SHA-512) as one principal of
``streams.settings.PRINCIPALS``: a department's ``Producer`` as that department, topic and
ACL administration as ``admin``, the worker's topic checks as ``worker``, audits as
``auditor``. A wrong password is reported as "authentication failed" after ``AUTH_PROBE_S``
(kafka-python itself keeps retrying until its bootstrap timeout, and mostly loses the
broker's SASL error; see ``AUTH_PROBE_S``).

Topics: ``city.<family>.v1`` from :mod:`schemas.topics` (plus ``CITYSTREAM_TOPIC_NAMESPACE``),
``city.deadletter.v1``, ``city.audit-checkpoints.v1`` and each department's
``city.receipts.<department>.v1``.
Env: ``CITYSTREAM_KAFKA_BOOTSTRAP``, ``CITYSTREAM_PRODUCER_TIMEOUT_S``,
``CITYSTREAM_KAFKA_SECURITY_PROTOCOL``, ``CITYSTREAM_KAFKA_<PRINCIPAL>_PASSWORD``.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import errors as aiokafka_errors
from aiokafka.client import AIOKafkaClient
from aiokafka.helpers import create_ssl_context
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ConfigResource,
    ConfigResourceType,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from kafka.errors import (
    AuthorizationError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    TopicAlreadyExistsError,
)

from schemas.envelope import Envelope
from schemas.errors import CityStreamError
from schemas.topics import ALL, BY_EVENT_TYPE, CHECKPOINT_TOPIC, DEADLETTER_TOPIC, receipts_topic
from services.access import Grant, grants
from streams.settings import DEPARTMENTS, MissingCredentials, Settings, password_variable

log = logging.getLogger("citystream.producer")
# kafka-python warns "Exchanging credentials in the clear" for every SCRAM login over
# SASL_PLAINTEXT. SCRAM never sends the password (a salted proof only), and SASL_PLAINTEXT
# is used on loopback alone (compose: SASL_SSL), so the warning says nothing true here.
logging.getLogger("kafka.net.sasl.scram").setLevel(logging.ERROR)

# A client's first bootstrap attempt lasts this long, the second twice as long, the third
# the rest of the caller's timeout. kafka-python answers a refused SCRAM login only by
# retrying until its bootstrap timeout, and most often does not even log the refusal:
# the broker sends its SASL error and closes the connection right behind it, and
# kafka-python 3.0 reads the close first and drops the reply ("socket disconnected";
# 21 of 22 refusals measured). So an attempt that ends without a logged refusal is
# followed by one aiokafka login (:func:`_sasl_refusal`), which reads the reply before the
# close: a wrong password is reported after one attempt (~3.3 s), every time; an
# unreachable broker still gets the caller's whole timeout. A healthy local broker
# bootstraps in well under 0.1 s. (Each failed attempt of an admin client or consumer
# leaves kafka-python's idle IO thread behind, hence few attempts.)
AUTH_PROBE_S = 3.0


class KafkaAuthenticationError(CityStreamError):
    """The broker refused this principal's credentials (SASL authentication failed)."""


class DeliveryError(CityStreamError):
    """Kafka did not acknowledge an event within the configured time; it was not sent."""


class _AuthFailures(logging.Handler):
    """Remembers the SASL authentication failures a client library logs (kafka-python and
    aiokafka raise none: they log the refusal and go on to "unable to bootstrap")."""

    def __init__(self, *kinds: type[BaseException]) -> None:
        super().__init__(logging.WARNING)
        self.kinds = kinds or (SaslAuthenticationFailedError,)
        self.failures: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.failures.extend(arg for arg in args if isinstance(arg, self.kinds))


def _sasl_refusal(settings: Settings, principal: str) -> BaseException | None:
    """The broker's SASL refusal of ``principal``, asked for with one aiokafka login (see
    ``AUTH_PROBE_S``); None when it logs in, or the broker cannot be reached. Runs its event
    loop in a thread of its own, so that callers inside one (the worker) may call it too."""
    options = settings.kafka_client_options(principal)
    context = None
    if options["security_protocol"] == "SASL_SSL":
        context = create_ssl_context(cafile=options.get("ssl_cafile"))
    watcher = _AuthFailures(aiokafka_errors.SaslAuthenticationFailed)

    async def log_in() -> None:
        client = AIOKafkaClient(
            bootstrap_servers=settings.kafka_bootstrap,
            security_protocol=options["security_protocol"],
            sasl_mechanism=options["sasl_mechanism"],
            sasl_plain_username=options["sasl_plain_username"],
            sasl_plain_password=options["sasl_plain_password"],
            ssl_context=context,
            request_timeout_ms=int(AUTH_PROBE_S * 1000),
        )
        try:
            await asyncio.wait_for(client.bootstrap(), AUTH_PROBE_S)
        except (aiokafka_errors.KafkaError, OSError, TimeoutError):
            pass  # the refusal, if it was one, is in the log
        finally:
            await client.close()

    aiokafka_log = logging.getLogger("aiokafka")
    aiokafka_log.addHandler(watcher)
    try:
        probe = threading.Thread(target=asyncio.run, args=(log_in(),), name="sasl-probe")
        probe.start()
        probe.join()
    finally:
        aiokafka_log.removeHandler(watcher)
    return watcher.failures[-1] if watcher.failures else None


_Client = TypeVar("_Client")


def kafka_client(
    factory: Callable[..., _Client],
    settings: Settings,
    principal: str,
    *,
    timeout_s: float,
    **kwargs: Any,
) -> _Client:
    """A kafka-python client (``KafkaProducer``, ``KafkaConsumer``, ``KafkaAdminClient``)
    authenticated as ``principal``.

    Raises MissingCredentials when this process has no password for it,
    KafkaAuthenticationError when the broker refuses the password (after ``AUTH_PROBE_S``
    and one more login, ~3.3 s),
    and kafka-python's KafkaTimeoutError when the broker cannot be
    reached within ``timeout_s``.
    """
    options = settings.kafka_client_options(principal)
    watcher = _AuthFailures()
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(watcher)
    started = time.monotonic()
    try:
        attempts = []
        left = timeout_s
        for slice_s in (AUTH_PROBE_S, 2 * AUTH_PROBE_S):
            if left <= slice_s:
                break
            attempts.append(slice_s)
            left -= slice_s
        attempts.append(left)
        for i, attempt_s in enumerate(attempts):
            try:
                return factory(
                    bootstrap_servers=settings.kafka_bootstrap,
                    bootstrap_timeout_ms=max(100, int(attempt_s * 1000)),
                    **options,
                    **kwargs,
                )
            except KafkaTimeoutError as exc:
                failure = (
                    watcher.failures[-1] if watcher.failures else _sasl_refusal(settings, principal)
                )
                if failure is not None:
                    raise KafkaAuthenticationError(
                        f"Kafka at {settings.kafka_bootstrap} refused the credentials of "
                        f"principal {principal!r}: authentication failed "
                        f"({failure}) after {time.monotonic() - started:.1f} s; "
                        f"check {password_variable(principal)}"
                    ) from exc
                if i == len(attempts) - 1:
                    raise
        raise AssertionError("unreachable")  # the loop returns or raises
    finally:
        kafka_log.removeHandler(watcher)


def refusal(exc: BaseException, *, principal: str, what: str) -> str | None:
    """A sentence for an authorisation refusal (no ACL), None for any other error."""
    if isinstance(exc, AuthorizationError) or (
        isinstance(exc, type) and issubclass(exc, AuthorizationError)
    ):
        name = exc.__name__ if isinstance(exc, type) else type(exc).__name__
        return (
            f"Kafka refused principal {principal!r} to {what} ({name}): it has no ACL for "
            "that; see README > Security for what each principal may do"
        )
    return None


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


def wait_for_broker(settings: Settings, *, principal: str, timeout_s: float) -> str:
    """Return the cluster id once ``principal`` is logged in and a metadata request succeeds.

    TimeoutError when the broker cannot be reached within ``timeout_s``;
    KafkaAuthenticationError when it refuses the credentials; MissingCredentials when this
    process has none for ``principal``.
    """
    try:
        admin = kafka_client(
            KafkaAdminClient,
            settings,
            principal,
            timeout_s=timeout_s,
            request_timeout_ms=int(timeout_s * 1000),
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
    # ACL bindings in force for these topics and the workers' group (services.access).
    grants: list[Grant]


def ensure_topics(settings: Settings, *, wait_s: float = 0.0) -> TopicsReport:
    """As the admin: create the CityStream topics that are missing, set ``ENFORCED_CONFIGS``
    on those that exist, and grant every principal its ACLs on them (``services.access``).

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


def _admin(settings: Settings, *, timeout_s: float | None = None) -> KafkaAdminClient:
    return kafka_client(
        KafkaAdminClient,
        settings,
        "admin",
        timeout_s=timeout_s or settings.producer_timeout_s,
        client_id="citystream-admin",
    )


def _ensure_topics(settings: Settings) -> TopicsReport:
    admin = _admin(settings)
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
        _create_acls(admin, granted)
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


# --------------------------------------------------------------------------- ACLs, users

_RESOURCE = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
}
_PATTERN = {"literal": ACLResourcePatternType.LITERAL, "prefixed": ACLResourcePatternType.PREFIXED}
# How long ACLs just created may take to show in describe_acls (they did lag, once).
ACL_VISIBLE_S = 10.0


def _acl(grant: Grant) -> ACL:
    return ACL(
        principal=grant.kafka_principal,
        host="*",
        operation=ACLOperation[grant.operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(
            _RESOURCE[grant.resource], grant.name, _PATTERN[grant.pattern]
        ),
    )


def _resource_acls(
    admin: KafkaAdminClient, resource: str, name: str, pattern: str
) -> set[tuple[str, str]]:
    """(principal, operation) of the ALLOW bindings on one resource pattern."""
    acls, _ = admin.describe_acls(
        ACLFilter(
            principal=None,
            host="*",
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(_RESOURCE[resource], name, _PATTERN[pattern]),
        )
    )
    return {
        (acl.principal, acl.operation.name)
        for acl in acls
        if acl.permission_type == ACLPermissionType.ALLOW
    }


def _create_acls(admin: KafkaAdminClient, wanted: Sequence[Grant]) -> None:
    """Create ``wanted`` (creating an existing binding changes nothing), check each result
    (kafka-python returns errors instead of raising them), then wait until the broker's
    authorizer shows every one: a client started right after must not be refused."""
    result: dict[str, list[Any]] = admin.create_acls([_acl(grant) for grant in wanted])
    if result.get("failed"):
        raise KafkaError(f"creating ACLs failed: {result['failed']}")
    resources = sorted({(grant.resource, grant.name, grant.pattern) for grant in wanted})
    deadline = time.monotonic() + ACL_VISIBLE_S
    while True:
        seen = {
            (resource, name, pattern, principal, operation)
            for resource, name, pattern in resources
            for principal, operation in _resource_acls(admin, resource, name, pattern)
        }
        missing = [
            grant
            for grant in wanted
            if (grant.resource, grant.name, grant.pattern, grant.kafka_principal, grant.operation)
            not in seen
        ]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise KafkaError(
                f"ACLs created but not in force after {ACL_VISIBLE_S:.0f} s: {missing}"
            )
        time.sleep(0.1)


def grant_access(settings: Settings) -> list[Grant]:
    """As the admin: create the ACLs of ``grants(settings)`` (topics need not exist yet)."""
    admin = _admin(settings)
    try:
        granted = grants(settings)
        _create_acls(admin, granted)
        return granted
    finally:
        admin.close()


def remove_grants(settings: Settings) -> int:
    """Delete the ACL bindings ``grants(settings)`` made (a test's namespace when it ends);
    returns how many were deleted."""
    admin = _admin(settings)
    try:
        filters = [
            ACLFilter(
                principal=None,
                host="*",
                operation=ACLOperation.ANY,
                permission_type=ACLPermissionType.ANY,
                resource_pattern=ResourcePatternFilter(
                    _RESOURCE[resource], name, _PATTERN[pattern]
                ),
            )
            for resource, name, pattern in sorted(
                {(g.resource, g.name, g.pattern) for g in grants(settings)}
            )
        ]
        results = admin.delete_acls(filters)
        return sum(len(matched) for _, matched, _ in results)
    finally:
        admin.close()


def set_passwords(settings: Settings, passwords: Mapping[str, str]) -> None:
    """As the admin: create or replace the SCRAM-SHA-512 credentials of these users
    (user name → password). Connections already logged in stay; new ones need the new
    password."""
    if not passwords:
        return
    admin = _admin(settings)
    try:
        outcome: dict[str, str | None] = admin.alter_user_scram_credentials(
            [
                UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, password)
                for user, password in sorted(passwords.items())
            ]
        )
    finally:
        admin.close()
    failed = {user: error for user, error in outcome.items() if error}
    if failed:
        raise KafkaError(f"setting SCRAM credentials failed: {failed}")


def scram_users(settings: Settings) -> set[str]:
    """The users the broker holds SCRAM credentials for."""
    admin = _admin(settings)
    try:
        found: dict[str, Any] = admin.describe_user_scram_credentials()
    finally:
        admin.close()
    return {user for user, info in found.items() if not info.get("error")}


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
        raise LookupError(
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

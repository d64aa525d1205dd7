"""Who may do what on the real broker (SASL/SCRAM-SHA-512, StandardAuthorizer, the ACLs of
``services.kafka.access``): each principal is refused everything beyond its job, promptly and
with an error that says so, and a wrong password fails clearly instead of hanging.

Every test runs in its own topic namespace, whose topics and ACLs the admin made exactly as
for production (``tests.conftest.isolated_schema``)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
)
from kafka.structs import OffsetAndMetadata
from pydantic import SecretStr

from schemas.topics import DEPARTMENTS, HEATING, HOUSING
from services.kafka.client import DeliveryError
from services.kafka.producer import Producer
from services.ledger_import import ImportRequest, LedgerError, sender
from streams.db import connect
from streams.settings import STACK_ENV_FILE, Settings
from tests.conftest import (
    ROOT,
    WorkerProcess,
    kafka_options,
    settings_env,
    wait_until,
)
from tests.integration.helpers import heating_events

pytestmark = pytest.mark.integration


def _housing_event() -> bytes:
    now = datetime.now(UTC).isoformat()
    return orjson.dumps(
        {
            "event_type": "housing.units_completed",
            "event_id": str(uuid.uuid4()),
            "department": "housing",
            "district": "gouzhao",
            "occurred_at": now,
            "reported_at": now,
            "project": "沟赵安置区二期",
            "area_m2": "83600",
            "units": 960,
        }
    )


def test_heating_cannot_write_the_housing_topic_and_is_told_at_once(isolated: Settings) -> None:
    producer = Producer(isolated, department="heating")
    try:
        started = time.monotonic()
        future = producer.send_raw(HOUSING.name, _housing_event(), key=b"gouzhao")
        with pytest.raises(TopicAuthorizationFailedError) as refused:
            future.get(timeout=30)
        seconds = time.monotonic() - started
        # Measured on the project's 2-core machine: ~0.1 s — the broker refuses the
        # metadata request; no delivery timeout is waited out.
        print(f"\nheating → {HOUSING.name}: {type(refused.value).__name__} after {seconds:.3f} s")
        assert seconds < 2.0
        assert isolated.topic_name(HOUSING.name) in str(refused.value)
        # A housing event given to a producer that sends as heating is refused before
        # anything is sent, saying why.
        from schemas.housing import HousingUnitsCompleted

        event = HousingUnitsCompleted.model_validate_json(_housing_event())
        with pytest.raises(DeliveryError, match="sends as department 'heating'"):
            producer.send(event)
        # Its own topic it may write.
        (delivery,) = producer.send_all(heating_events(1, seed=3))
        assert delivery.topic == isolated.topic_name(HEATING.name)
    finally:
        producer.close()


def test_heating_cannot_create_or_delete_topics(isolated: Settings) -> None:
    admin = KafkaAdminClient(**kafka_options(isolated, "heating"))
    try:
        started = time.monotonic()
        with pytest.raises(TopicAuthorizationFailedError):
            admin.delete_topics([isolated.topic_name(HOUSING.name)])
        with pytest.raises(TopicAuthorizationFailedError):
            admin.delete_topics([isolated.topic_name(HEATING.name)])  # not even its own
        with pytest.raises(TopicAuthorizationFailedError):
            admin.create_topics([NewTopic(isolated.topic_name("city.fake.v1"), 1, 1)])
        assert time.monotonic() - started < 2.0
    finally:
        admin.close()
    consumer = KafkaConsumer(**kafka_options(isolated, "admin"))
    try:
        assert consumer.partitions_for_topic(isolated.topic_name(HOUSING.name))
        assert consumer.partitions_for_topic(isolated.topic_name(HEATING.name))
        assert not consumer.partitions_for_topic(isolated.topic_name("city.fake.v1"))
    finally:
        consumer.close()


def test_heating_cannot_touch_the_workers_group_offsets(
    isolated: Settings, worker: WorkerProcess
) -> None:
    producer = Producer(isolated)
    producer.send_all(heating_events(30, seed=4))
    producer.close()
    worker.start()
    wait_until(_stored_all(isolated, 30), timeout_s=90, what="the worker", context=worker.logs)
    worker.stop()
    topic = isolated.topic_name(HEATING.name)
    tps = [TopicPartition(topic, p) for p in range(isolated.topic_partitions)]
    # An admin API call and a consumer posing as a group member: both refused.
    admin = KafkaAdminClient(**kafka_options(isolated, "heating"))
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            admin.alter_group_offsets(
                isolated.consumer_group, {tp: OffsetAndMetadata(0, "", -1) for tp in tps}
            )
        with pytest.raises(GroupAuthorizationFailedError):
            admin.delete_groups([isolated.consumer_group])
    finally:
        admin.close()
    consumer = KafkaConsumer(
        **kafka_options(isolated, "heating"),
        group_id=isolated.consumer_group,
        enable_auto_commit=False,
    )
    try:
        with pytest.raises((GroupAuthorizationFailedError, TopicAuthorizationFailedError)):
            consumer.commit({tp: OffsetAndMetadata(0, "", -1) for tp in tps})
    finally:
        consumer.close()


def test_each_principal_is_held_to_its_job(isolated: Settings) -> None:
    """The workers and the auditors may not write a department's topic; the auditors may
    not join a group; a department may not read even its own topic back."""
    heating = isolated.topic_name(HEATING.name)
    for principal in ("worker", "auditor"):
        producer = KafkaProducer(**kafka_options(isolated, principal))
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                producer.send(heating, b"{}").get(timeout=30)
        finally:
            producer.close()
    auditor = KafkaConsumer(
        heating, **kafka_options(isolated, "auditor"), group_id=isolated.consumer_group
    )
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            auditor.poll(timeout_ms=5000)
    finally:
        auditor.close()
    department = KafkaConsumer(**kafka_options(isolated, "heating"))
    try:
        department.assign([TopicPartition(heating, 0)])
        with pytest.raises(TopicAuthorizationFailedError):
            department.poll(timeout_ms=5000)
    finally:
        department.close()


def test_a_wrong_password_fails_clearly_and_promptly(isolated: Settings, tmp_path: Path) -> None:
    wrong = isolated.model_copy(update={"kafka_heating_password": SecretStr("not-the-password")})
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="authentication failed") as refused:
        Producer(wrong, department="heating")
    seconds = time.monotonic() - started
    print(f"\nwrong password refused after {seconds:.1f} s: {refused.value}")
    assert "CITYSTREAM_KAFKA_HEATING_PASSWORD" in str(refused.value)
    # AUTH_PROBE_S (3 s) and one aiokafka login: ~3.3 s; never kafka-python's 30 s timeout
    assert seconds < 12

    # The worker too: it exits at once, saying so, instead of retrying forever.
    env = settings_env(
        isolated.model_copy(update={"kafka_worker_password": SecretStr("not-the-password")})
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "worker"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "authentication failed" in " ".join(result.stderr.split())
    # ~4 s here (imports + the probe); the bound leaves room for a loaded CI machine and
    # still fails the old behaviour (the 30 s bootstrap timeout, then retries).
    assert time.monotonic() - started < 25


def test_a_record_claiming_another_department_is_refused_by_the_worker(
    isolated: Settings, worker: WorkerProcess
) -> None:
    """The heating principal may write city.heating.v1 — but a record there whose
    ``department`` says housing is dead-lettered: the department is who may write the
    topic, not what the record claims."""
    (good,) = heating_events(1, seed=9)
    claimed = orjson.loads(good.model_dump_json())
    claimed.update(event_id=str(uuid.uuid4()), department="housing")
    producer = Producer(isolated, department="heating")
    producer.send_raw(HEATING.name, orjson.dumps(claimed)).get(timeout=30)
    producer.send_all([good])
    producer.close()
    worker.start()
    wait_until(
        _stored_all(isolated, 1, letters=1), timeout_s=90, what="the worker", context=worker.logs
    )
    with connect(isolated) as conn:
        letters = conn.execute("SELECT reason, field FROM deadletters").fetchall()
        ids = [str(r[0]) for r in conn.execute("SELECT event_id FROM events").fetchall()]
    assert letters == [("department_not_allowed", "department")]
    assert ids == [str(good.event_id)]


def test_import_cannot_choose_another_department(isolated: Settings, tmp_path: Path) -> None:
    """A machine holding the heating department's password cannot send a ledger as housing:
    --department must match the credentials."""
    only_heating = isolated.model_copy(
        update={f"kafka_{d}_password": None for d in DEPARTMENTS if d != "heating"}
    )
    ledger = ROOT / "seeds" / "samples" / "housing_2024.xlsx"
    with pytest.raises(LedgerError, match="no Kafka credentials for housing"):
        sender(ImportRequest(path=ledger, department="housing"), only_heating)
    with pytest.raises(LedgerError, match="no Kafka credentials for housing"):
        sender(ImportRequest(path=ledger, event_type="housing.units_completed"), only_heating)
    # Without an option, the credentials decide.
    assert sender(ImportRequest(path=ledger), only_heating) == "heating"


def test_the_stack_keeps_its_secrets_to_itself(stack_settings: Settings) -> None:
    for path in (STACK_ENV_FILE, STACK_ENV_FILE.parent / "kafka" / "server.properties"):
        if path.exists():  # the stack's own broker (not an external one)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def _stored_all(settings: Settings, events: int, *, letters: int = 0) -> Callable[[], bool]:
    def done() -> bool:
        with connect(settings) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deadletters)"
            ).fetchone()
        return row is not None and row[0] >= events and row[1] >= letters

    return done

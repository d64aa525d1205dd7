"""The ACL table (services.kafka.access): least privilege, literal names, namespaces kept apart.
Opens no socket."""

from __future__ import annotations

from services.kafka.access import grants
from streams.settings import DEPARTMENTS, Settings


def _settings(namespace: str = "", group: str = "citystream") -> Settings:
    return Settings(_env_file=None, topic_namespace=namespace, consumer_group=group)  # type: ignore[call-arg]


def test_each_department_writes_only_its_own_topic_and_reads_only_its_receipts() -> None:
    table = grants(_settings())
    for department in DEPARTMENTS:
        mine = [g for g in table if g.principal == department]
        topics = {(g.name, g.operation) for g in mine if g.resource == "topic"}
        assert topics == {
            (f"city.{department}.v1", "WRITE"),
            (f"city.receipts.{department}.v1", "READ"),
        }
        (txn,) = [g for g in mine if g.resource == "transactional_id"]
        assert (txn.name, txn.pattern, txn.operation) == (f"{department}-", "prefixed", "WRITE")
        assert not [g for g in mine if g.resource == "group"]


def test_workers_read_families_and_their_group_write_dead_letters_and_receipts_only() -> None:
    worker = [g for g in grants(_settings(group="g1")) if g.principal == "worker"]
    writes = {g.name for g in worker if g.operation == "WRITE"}
    assert writes == {"city.deadletter.v1"} | {f"city.receipts.{d}.v1" for d in DEPARTMENTS}
    reads = {g.name for g in worker if g.operation == "READ" and g.resource == "topic"}
    assert reads == {f"city.{d}.v1" for d in DEPARTMENTS}
    assert [(g.resource, g.name) for g in worker if g.resource == "group"] == [("group", "g1")]


def test_auditors_read_and_write_only_the_checkpoints() -> None:
    auditor = [g for g in grants(_settings()) if g.principal == "auditor"]
    assert {g.name for g in auditor if g.operation == "WRITE"} == {"city.audit-checkpoints.v1"}
    assert not [g for g in auditor if g.resource != "topic"]  # no group: nothing committed


def test_everything_is_literal_except_transactional_ids_and_namespaced() -> None:
    table = grants(_settings(namespace="t1.", group="citystream-t1"))
    assert {g.pattern for g in table if g.resource != "transactional_id"} == {"literal"}
    assert all(g.name.startswith("t1.") for g in table if g.resource != "group")
    # No binding of one namespace names another's resource.
    other = {(g.resource, g.name) for g in grants(_settings(namespace="t2.", group="g-t2"))}
    assert not other & {(g.resource, g.name) for g in table}

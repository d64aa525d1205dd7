"""The Kafka Connect peer: a Connect 3.9.1 standalone worker running the Debezium JDBC sink
3.1.2.Final (``insert.mode=upsert`` on ``event_id``, ``batch.size=2000``), one task.

Debezium's JDBC sink needs records that carry their schema, so with Connect's
``JsonConverter`` (``schemas.enable=true``) each event travels wrapped as
``{"schema": …, "payload": <the event>}`` (:func:`wrap`): its own topic holds the wrapped
form of the same events. Timestamps are typed ``io.debezium.time.ZonedTimestamp`` (→
timestamptz); ``stringtype=unspecified`` on the JDBC URL lets PostgreSQL type the other
strings from the table's columns (uuid, numeric).

The worker logs in as the workers' principal (SASL/SCRAM-SHA-512) for its own admin calls
and its sink consumer, in the consumer group the namespace's ACLs allow
(``consumer.override.group.id``); it writes PostgreSQL as the workers' role. Its two
property files hold those passwords: written mode 600 into a run folder under
``.bench/connect``, deleted with it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import orjson
from psycopg.conninfo import conninfo_to_dict

from schemas.topics import HEATING
from streams.settings import SASL_MECHANISM, Settings
from tests.bench import pipeline
from tests.bench.peers.install import CONNECT, CONNECT_LIBS, CONNECT_PLUGINS, ROOT

LOG4J = ROOT / "deploy" / "local" / "log4j.properties"
NAME = "citystream-bench-debezium-jdbc"
BATCH_SIZE = 2000
# Every field of a benchmark event (tests/bench/workload.py), in its order.
FIELDS = (
    "event_type",
    "event_id",
    "department",
    "district",
    "occurred_at",
    "reported_at",
    "project",
    "source_ref",
    "area_m2",
)
TIMESTAMPS = {"occurred_at", "reported_at"}
SCHEMA: dict[str, Any] = {
    "type": "struct",
    "name": "city.heating.v1.AreaConnected",
    "optional": False,
    "fields": [
        {"field": name, "type": "string", "optional": False}
        | ({"name": "io.debezium.time.ZonedTimestamp", "version": 1} if name in TIMESTAMPS else {})
        for name in FIELDS
    ],
}
# connect-standalone.sh's JVM settings (KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS).
JVM = (
    "-Xms256m",
    "-Xmx2g",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)


def wrap(records: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The same (key, value) records, each value as ``{"schema": …, "payload": <value>}``."""
    head = b'{"schema":' + orjson.dumps(SCHEMA) + b',"payload":'
    # The event's own bytes become the payload as they are: same fields, same order.
    return [(key, head + value + b"}") for key, value in records]


def _properties(values: dict[str, str | int]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


class ConnectPeer:
    """One standalone Connect worker draining ``settings``' heating topic into ``table``."""

    def __init__(self, settings: Settings, *, schema: str, table: str, log: Path) -> None:
        self.run_dir = CONNECT / f"run-{settings.consumer_group}"
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir.mkdir(mode=0o700, parents=True)
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="worker" password="{settings.kafka_password("worker").get_secret_value()}";'
        )
        login: dict[str, str | int] = {
            "security.protocol": settings.kafka_security_protocol,
            "sasl.mechanism": SASL_MECHANISM,
            "sasl.jaas.config": jaas,
        }
        worker: dict[str, str | int] = {
            "bootstrap.servers": settings.kafka_bootstrap,
            **login,
            # The sink task's consumer takes the "consumer." ones.
            **{f"consumer.{key}": value for key, value in login.items()},
            "key.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "true",
            "offset.storage.file.filename": str(self.run_dir / "offsets"),
            # Offsets committed every second, like the quixstreams peer (default: 60 s).
            "offset.flush.interval.ms": 1000,
            "plugin.path": str(CONNECT_PLUGINS),
            # Plugins found through their service manifests: no 5-9 s classpath scan.
            "plugin.discovery": "service_load",
            "listeners": "http://127.0.0.1:0",
            # Lets the connector name its consumer group (the one the ACLs allow).
            "connector.client.config.override.policy": "All",
        }
        db = conninfo_to_dict(settings.database_url.get_secret_value())
        connector: dict[str, str | int] = {
            "name": NAME,
            "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
            "tasks.max": 1,
            "topics": settings.topic_name(HEATING.name),
            "connection.url": (
                f"jdbc:postgresql://{db.get('host', '127.0.0.1')}:{db.get('port', 5432)}/"
                f"{db['dbname']}?stringtype=unspecified"
            ),
            "connection.username": str(db["user"]),
            "connection.password": str(db.get("password", "")),
            "insert.mode": "upsert",
            "primary.key.mode": "record_value",
            "primary.key.fields": "event_id",
            # The table is made beforehand, typed from the event: no DDL from the sink.
            "schema.evolution": "none",
            "collection.name.format": f"{schema}.{table}",
            "batch.size": BATCH_SIZE,
            "consumer.override.group.id": settings.consumer_group,
            "consumer.override.max.poll.records": BATCH_SIZE,
        }
        worker_file = self.run_dir / "worker.properties"
        connector_file = self.run_dir / "connector.properties"
        _write_private(worker_file, _properties(worker))
        _write_private(connector_file, _properties(connector))
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("'java' not found: install Debian's 'default-jre-headless'")
        argv = [
            java,
            *JVM,
            f"-Dlog4j.configuration=file:{LOG4J}",
            "-cp",
            f"{CONNECT_LIBS}/*",
            "org.apache.kafka.connect.cli.ConnectStandalone",
            str(worker_file),
            str(connector_file),
        ]
        self.log = log
        self.proc = pipeline.start_child(argv, log)

    def stop(self) -> None:
        pipeline.stop_child(self.proc, timeout_s=60)
        shutil.rmtree(self.run_dir, ignore_errors=True)

"""What authentication costs: the stack's broker (SASL/SCRAM-SHA-512 and ACLs, as always)
against a twin without either, started here from the same jars for this comparison only —
loopback, a throw-away folder under ``.stack/``, stopped by its PID at the end. Nothing
else ever talks to the twin.

Two figures, each the median of alternating runs on both brokers:
- producer throughput: ``events`` heating records (~300 B) sent as fast as kafka-python
  can with the settings of ``services.kafka.producer.Producer`` (acks=all, idempotence, lz4,
  15 ms linger, 256 KB batches), from the first send to the last acknowledgement;
- a new connection: a client constructed until it has bootstrapped (TCP, API versions,
  and on the stack's broker the SCRAM exchange: two more round trips and 4,096 PBKDF2
  iterations on the client) plus one metadata request, then closed.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from schemas.topics import HEATING
from services.stack import kafka as stack_kafka
from services.stack.state import free_port, stop_pid
from streams.settings import STACK_DIR, Settings
from tests.bench import pipeline

PLAIN_PROPERTIES = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{broker}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
"""


@contextmanager
def plain_broker() -> Iterator[str]:
    """A broker without authentication or ACLs, for this comparison only; its address."""
    home = (STACK_DIR / "bench-plain-kafka").resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    broker, controller = free_port(), free_port()
    properties = home / "server.properties"
    properties.write_text(
        PLAIN_PROPERTIES.format(broker=broker, controller=controller, data=home / "data")
    )
    java = stack_kafka._java  # the stack's own launcher: same jars, same JVM flags
    cluster = subprocess.run(
        java("kafka.tools.StorageTool", "random-uuid"), capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    subprocess.run(
        java("kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(properties)),
        capture_output=True,
        check=True,
    )
    log = (home / "broker.log").open("wb")
    proc = subprocess.Popen(
        java(stack_kafka.MAIN_CLASS, str(properties), heap=("-Xms256m", "-Xmx1g")),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"127.0.0.1:{broker}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                KafkaAdminClient(bootstrap_servers=address, bootstrap_timeout_ms=2000).close()
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the comparison broker did not start; see {home}") from None
                time.sleep(0.3)
        yield address
    finally:
        stop_pid(proc.pid, str(properties))
        proc.wait(timeout=60)
        shutil.rmtree(home, ignore_errors=True)


def _producer_rate(
    options: dict[str, Any], topic: str, records: Sequence[tuple[bytes, bytes]]
) -> float:
    producer = KafkaProducer(
        **options,
        acks="all",
        enable_idempotence=True,
        compression_type="lz4",
        linger_ms=15,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=5,
    )
    try:
        producer.send(topic, b"warm-up").get(timeout=30)  # connections and metadata first
        started = time.perf_counter()
        futures = [producer.send(topic, value, key) for key, value in records]
        producer.flush(timeout=300)
        seconds = time.perf_counter() - started
    finally:
        producer.close()
    failed = sum(1 for future in futures if future.failed())
    if failed:
        raise AssertionError(f"{failed} records were not delivered")
    return len(records) / seconds


def _connect_ms(options: dict[str, Any], samples: int) -> float:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        admin = KafkaAdminClient(**options, bootstrap_timeout_ms=10_000)
        admin.describe_cluster()
        times.append((time.perf_counter() - started) * 1000)
        admin.close()
    return statistics.median(times)


def measure(
    base: Settings, records: Sequence[tuple[bytes, bytes]], *, runs: int = 3, connects: int = 20
) -> dict[str, Any]:
    settings = pipeline.isolated(base, "auth")
    secured = {
        "bootstrap_servers": settings.kafka_bootstrap,
        **settings.kafka_client_options("heating"),
    }
    secured_topic = settings.topic_name(HEATING.name)
    rates: dict[str, list[float]] = {"sasl_scram": [], "none": []}
    connect: dict[str, float] = {}
    try:
        with plain_broker() as address:
            plain = {"bootstrap_servers": address}
            admin = KafkaAdminClient(**plain)
            admin.create_topics([NewTopic(HEATING.name, settings.topic_partitions, 1)])
            admin.close()
            for _ in range(runs):  # alternating, so that drift on the machine hits both
                rates["sasl_scram"].append(_producer_rate(secured, secured_topic, records))
                rates["none"].append(_producer_rate(plain, HEATING.name, records))
            connect["sasl_scram"] = _connect_ms(secured, connects)
            connect["none"] = _connect_ms(plain, connects)
    finally:
        pipeline.drop(settings)
    with_auth, without = statistics.median(rates["sasl_scram"]), statistics.median(rates["none"])
    return {
        "events": len(records),
        "runs": runs,
        "producer_events_per_s": {k: [round(r) for r in v] for k, v in rates.items()},
        "producer_median_with_auth": round(with_auth),
        "producer_median_without": round(without),
        "throughput_change_pct": round((with_auth / without - 1) * 100, 1),
        "connect_ms_median": {k: round(v, 2) for k, v in connect.items()},
        "connect_extra_ms": round(connect["sasl_scram"] - connect["none"], 2),
    }

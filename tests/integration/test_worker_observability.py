"""Dead letters, Prometheus metrics and JSON logs of a running worker."""

from __future__ import annotations

import socket
import urllib.request

import orjson
import pytest

from schemas.topics import DEADLETTER_TOPIC, HEATING
from services.kafka.producer import Producer
from streams.settings import Settings
from tests.conftest import WorkerProcess, kafka_options, wait_until
from tests.integration.helpers import consumed_everything, heating_events, scalar

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _metrics(port: int) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in body.splitlines():
        if line.startswith("citystream_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_bad_records_go_to_dead_letters_and_good_ones_beside_them_land(
    isolated: Settings, worker: WorkerProcess
) -> None:
    port = _free_port()
    good = heating_events(200, seed=11)
    producer = Producer(isolated)
    for event in good[:100]:
        producer.send(event)
    wrong_department = heating_events(1, seed=12)[0].model_copy(update={"department": "parking"})
    bad_values = [b"{not json", b"\xff\xfe not utf-8", wrong_department.model_dump_json().encode()]
    for value in bad_values:
        producer.send_raw(HEATING.name, value)
    for event in good[100:]:
        producer.send(event)
    producer.flush()

    worker.start(metrics_port=port, worker_loglevel="info")
    wait_until(
        lambda: consumed_everything(isolated),
        timeout_s=90,
        what="all 203 records",
        context=worker.logs,
    )

    assert scalar(isolated, "SELECT count(*) FROM events") == 200
    from streams.db import connect

    with connect(isolated) as conn:
        rows = conn.execute(
            "SELECT reason, field FROM deadletters ORDER BY kafka_offset"
        ).fetchall()
    reasons = sorted(r[0] for r in rows)
    assert len(rows) == 3
    assert "department_not_allowed" in reasons
    assert {"department"} <= {r[1] for r in rows}

    metrics = _metrics(port)
    accepted = metrics['citystream_events_accepted_total{event_type="heating.area_connected"}']
    assert accepted == 200
    rejected = sum(
        v for k, v in metrics.items() if k.startswith("citystream_events_rejected_total")
    )
    assert rejected == 3
    # Every record read counts once, accepted or not.
    topic = isolated.topic_name(HEATING.name)
    assert metrics[f'citystream_events_consumed_total{{topic="{topic}"}}'] == 203
    assert worker.alive()

    # The dead-letter topic carries the original bytes with the reason in its headers.
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        isolated.topic_name(DEADLETTER_TOPIC),
        # Nobody but the admin reads dead letters from Kafka (the table holds them all).
        **kafka_options(isolated, "admin"),
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    letters = [m for _, m in zip(range(3), consumer, strict=False)]
    consumer.close()
    assert sorted(m.value for m in letters) == sorted(bad_values)
    assert sorted(dict(m.headers)["reason"].decode() for m in letters) == reasons

    producer.close()
    worker.stop()
    lines = [
        orjson.loads(line) for line in worker.logs(tail=None).splitlines() if line.startswith("{")
    ]
    batches = [line for line in lines if line.get("msg") == "batch written"]
    assert batches and all("offsets" in b and "inserted" in b for b in batches)
    assert any(line.get("msg") == "record rejected" and line.get("reason") for line in lines)

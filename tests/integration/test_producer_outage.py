"""A Kafka outage reaches the department as a clear error after bounded retries."""

from __future__ import annotations

import socket
import time

import pytest

from services.kafka.client import DeliveryError
from services.kafka.producer import Producer
from streams.settings import Settings
from tests.integration.helpers import heating_events

pytestmark = pytest.mark.integration


def test_unreachable_kafka_is_a_clear_error_within_the_timeout(stack_settings: Settings) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = stack_settings.model_copy(
        update={"kafka_bootstrap": f"127.0.0.1:{port}", "producer_timeout_s": 3.0}
    )
    started = time.monotonic()
    with pytest.raises(DeliveryError, match=f"127.0.0.1:{port}|not delivered|did not take"):
        producer = Producer(settings)
        producer.send_all(heating_events(3, seed=1))
    assert time.monotonic() - started < 20

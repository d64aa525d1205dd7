"""Every codec a producer may legally use (gzip, snappy, lz4, zstd), on the real stack:
records a department's own kafka-python producer compressed are stored once by a real
worker (aiokafka) and re-read by `audit replay --source kafka` (kafka-python) with no
difference. Without a codec's library, replay says which codec and which record, with its
own exit code — not that Kafka could not be reached (issue 12, item 7)."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict

import pytest
from kafka import KafkaProducer

from schemas.topics import HEATING
from services.audit.replay import replay_from_kafka, replay_from_ledger
from streams.settings import Settings
from tests.conftest import ROOT, WorkerProcess, kafka_options, settings_env, wait_until
from tests.integration.helpers import (
    chain_breaks,
    consumed_everything,
    expected_rollup,
    heating_events,
    rollup_rows,
    scalar,
)

pytestmark = pytest.mark.integration

CODECS = ("gzip", "snappy", "lz4", "zstd")
# Per codec: five records on each of the test topic's three partitions, in one batch each
# (a batch is compressed only when that makes it smaller, which several events do).
PER_CODEC = 15
# What `import NAME` finds for a package that is not installed, set before anything
# imports kafka-python: an installation without that codec's library, as before this fix.
WITHOUT = (
    "import sys\n"
    "for name in sys.argv.pop(1).split(','):\n"
    "    sys.modules[name] = None\n"
    "from services.cli import main\n"
    "main()\n"
)
LIBRARIES = {"snappy": "snappy", "lz4": "lz4,lz4f,lz4framed", "zstd": "zstandard"}


def _replay_cli(settings: Settings, *, without: str = "") -> subprocess.CompletedProcess[str]:
    args = ["audit", "replay", "--source", "kafka", "--topics", "heating"]
    command = [sys.executable, "-c", WITHOUT, without, *args] if without else [
        sys.executable, "-m", "services.cli", *args,
    ]  # fmt: skip
    return subprocess.run(
        command,
        env=settings_env(settings) | {"COLUMNS": "250"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_codec_is_stored_once_and_replayed_without_difference(
    isolated: Settings, worker: WorkerProcess
) -> None:
    topic = isolated.topic_name(HEATING.name)
    partitions = isolated.topic_partitions
    events = heating_events(PER_CODEC * len(CODECS), seed=7)
    worker.start()

    # codec → partition → offsets it was written at
    written: dict[str, dict[int, list[int]]] = {}
    for n, codec in enumerate(CODECS):
        producer = KafkaProducer(
            **kafka_options(isolated, "heating"),
            compression_type=codec,
            acks="all",
            linger_ms=200,
            client_id=f"codec-test-{codec}",
        )
        futures = [
            producer.send(
                topic,
                key=event.partition_key(),
                value=event.model_dump_json().encode(),
                partition=i % partitions,
            )
            for i, event in enumerate(events[n * PER_CODEC : (n + 1) * PER_CODEC])
        ]
        producer.flush(timeout=30)
        offsets: dict[int, list[int]] = defaultdict(list)
        for future in futures:
            meta = future.get(timeout=30)
            offsets[meta.partition].append(meta.offset)
        producer.close(timeout=30)
        written[codec] = dict(offsets)
        assert sorted(written[codec]) == list(range(partitions))

    wait_until(
        lambda: consumed_everything(isolated),
        timeout_s=90,
        what=f"the {len(events)} compressed records",
        context=worker.logs,
    )

    # The worker stored every event once, and nothing was refused.
    assert scalar(isolated, "SELECT count(*) FROM events") == len(events), worker.logs()
    assert scalar(isolated, "SELECT count(DISTINCT event_id) FROM events") == len(events)
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0
    assert rollup_rows(isolated) == expected_rollup(events)
    assert chain_breaks(isolated) == []
    assert worker.alive()

    # The auditors' reader decodes the same records and finds what the worker found.
    from_kafka = replay_from_kafka(isolated)
    assert from_kafka.differences() == []
    assert (from_kafka.events_read, from_kafka.accepted) == (len(events), len(events))
    assert (from_kafka.duplicates, sum(from_kafka.rejected.values())) == (0, 0)
    assert replay_from_ledger(isolated).differences() == []
    cli = _replay_cli(isolated)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "no differences" in cli.stdout

    # Where a codec's library is missing, replay names the codec and the first record of
    # that codec on the partition it reached, and exits 4 (not 3, "could not be reached").
    # This also shows that each codec's records really were compressed with it.
    for codec, libraries in LIBRARIES.items():
        result = _replay_cli(isolated, without=libraries)
        said = " ".join(result.stderr.split())
        assert result.returncode == 4, f"{codec}: {result.stdout}{result.stderr}"
        firsts = [
            f"cannot decode the record at {topic}[{partition}] offset {min(offsets)}: "
            f"it is compressed with {codec}"
            for partition, offsets in written[codec].items()
        ]
        assert any(first in said for first in firsts), f"{codec}: {said}"
        assert "nothing was checked" in said
        assert "reach" not in said

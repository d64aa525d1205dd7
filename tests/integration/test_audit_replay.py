"""``audit replay`` after a simulated year through a real worker: Kafka and the ledger give
the same rollups and both equal metric_daily; a window replays part of the history on top
of the ledger's state; a manual edit of one rollup row is reported exactly."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from rich.console import Console

from schemas.heating import CONNECTED_AREA_M2, HeatingAreaConnected, HeatingCorrection
from schemas.topics import HEATING
from services.audit.replay import Difference, Replay, replay_from_kafka, replay_from_ledger
from services.audit.verify import verify
from services.kafka.producer import Producer
from services.progress import caught_up
from services.simulator.plan import plan
from services.simulator.run import send
from streams.db import connect
from streams.settings import Settings
from tests.conftest import ROOT, WorkerProcess, kafka_options, settings_env, wait_until
from tests.integration.helpers import rollup_rows

pytestmark = pytest.mark.integration

LATE_2022 = datetime(2022, 12, 20, 3, tzinfo=UTC)


def _same(a: Replay, b: Replay) -> None:
    assert {k: (v.total, v.events) for k, v in a.totals.items()} == {
        k: (v.total, v.events) for k, v in b.totals.items()
    }


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "audit", "replay", *args],
        env=settings_env(settings) | {"COLUMNS": "200"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_replay_of_a_simulated_year_matches_and_finds_an_edited_rollup(
    isolated: Settings, worker: WorkerProcess
) -> None:
    year = plan(2022)
    worker.start()
    report = send(year, isolated, Console(file=io.StringIO(), width=120))
    assert report.failed == 0
    wait_until(lambda: caught_up(isolated), timeout_s=75, what="the 2022 year", context=worker.logs)
    middle = datetime.now(UTC)

    # A second round after `middle`: new events, a redelivery and a correction of events of
    # the first round (judged against the first round's state), a reused id, bad bytes.
    corrected = {c.corrects for c in year.corrections}
    first_round = [
        e
        for e in year.events
        if isinstance(e, HeatingAreaConnected) and e.event_id not in corrected
    ]
    target, redelivered = first_round[0], first_round[1]
    new = [
        HeatingAreaConnected(
            event_id=uuid.uuid4(),
            department="heating",
            district="shifo",
            occurred_at=LATE_2022,
            reported_at=LATE_2022,
            project=f"补报项目 {n}",
            area_m2=Decimal(f"{1200 + n}.25"),
        )
        for n in range(3)
    ]
    correction = HeatingCorrection.model_validate(
        {
            "event_id": uuid.uuid4(),
            "department": "heating",
            "district": target.district,
            "occurred_at": target.occurred_at,
            "reported_at": LATE_2022,
            "project": target.project,
            "corrects": target.event_id,
            "metric": CONNECTED_AREA_M2,
            "delta": "-10.5",
            "reason": "复核面积",
            "approved_by": "王科长",
            "source_ref": "审批单 2023-017",
        }
    )
    reused = redelivered.model_copy(update={"area_m2": redelivered.area_m2 + 1})
    producer = Producer(isolated)
    producer.send_all([*new, correction, redelivered, reused])
    producer.send_raw(HEATING.name, b'{"event_type": "heating.area_connected", ')
    producer.flush()
    producer.close()
    wait_until(lambda: caught_up(isolated), timeout_s=60, what="the second round")
    second_round = 7

    assert verify(isolated).ok
    kafka = replay_from_kafka(isolated)
    ledger = replay_from_ledger(isolated)
    for replay in (kafka, ledger):
        assert replay.differences() == [], replay.differences()[:5]
        assert replay.refused_in_ledger == []
    _same(kafka, ledger)
    assert kafka.events_read == len(year.records) + second_round
    assert kafka.accepted == len(year.events) + 4
    assert kafka.duplicates == len(year.duplicates) + 1
    assert kafka.rejected["duplicate_event_id"] == 1
    assert sum(kafka.rejected.values()) == len(year.invalid) + 2
    assert ledger.events_read == ledger.accepted == len(year.events) + 4
    assert len(kafka.live) == len(rollup_rows(isolated))
    # Topics made by ensure_topics keep everything: nothing for replay to warn about.
    assert (kafka.limited_retention, kafka.unconsumed) == ({}, 0)

    # From `middle`: the first round comes from the ledger, only the second is re-read —
    # and the redelivery, the reused id and the correction are still judged right.
    since = replay_from_kafka(isolated, start=middle)
    assert (since.events_read, since.baseline_rows) == (second_round, len(year.events))
    assert (since.accepted, since.duplicates, sum(since.rejected.values())) == (4, 1, 2)
    assert since.differences() == []
    _same(since, kafka)
    ledger_since = replay_from_ledger(isolated, start=middle)
    assert (ledger_since.events_read, ledger_since.differences()) == (4, [])
    # Up to `middle`: the second round is taken out of the live rollups instead.
    until = replay_from_kafka(isolated, end=middle, topics=["heating"])
    assert (until.after_rows, until.differences()) == (4, [])
    assert until.topics == (isolated.topic_name(HEATING.name),)

    cli = _cli(isolated, "--source", "kafka", "--from", middle.isoformat())
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "no differences" in cli.stdout

    # Someone edits one rollup row by hand: exactly that row is reported, from both sources.
    key = next(k for k in sorted(kafka.live) if k[2] == CONNECTED_AREA_M2)
    before = kafka.live[key]
    with connect(isolated) as conn:
        conn.execute(
            "UPDATE metric_daily SET total = total + 7.5 "
            "WHERE day = %s AND district = %s AND metric = %s",
            key,
        )
        conn.commit()
    expected = [Difference(*key, before[0] + Decimal("7.5"), before[0], before[1], before[1])]
    assert replay_from_ledger(isolated).differences() == expected
    assert replay_from_kafka(isolated).differences() == expected
    cli = _cli(isolated, "--source", "ledger")
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "1 rollup row(s) differ" in cli.stdout
    assert f"{key[0].isoformat()} │ {key[1]}" in cli.stdout and "7.5" in cli.stdout

    # Records no worker has stored yet are not replayed (the live rollups cannot have
    # them), only counted; a topic with a finite retention is named.
    worker.stop()
    late = Producer(isolated)
    late.send_all(new[:1])  # a redelivery: stored or not, it changes nothing
    late.send_all([new[0].model_copy(update={"event_id": uuid.uuid4()})])
    late.close()
    admin = KafkaAdminClient(**kafka_options(isolated, "admin"))
    heating_topic = isolated.topic_name(HEATING.name)
    admin.alter_configs(
        [
            ConfigResource(
                ConfigResourceType.TOPIC, heating_topic, configs={"retention.ms": "604800000"}
            )
        ]
    )
    admin.close()
    pending = replay_from_kafka(isolated, topics=["heating"])
    assert pending.unconsumed == 2
    assert pending.limited_retention == {heating_topic: (604800000, -1)}
    assert pending.differences() == expected

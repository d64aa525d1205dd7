"""Exactly once in effect, whatever crashes: the chaos suite.

A producer sends a known set of events — with 5% duplicates (the same event sent again)
and 1% invalid records — while, on a private stack (tests/chaos/stack.py):

- the worker is SIGKILLed three times at random points and restarted;
- the Kafka broker is stopped and restarted once;
- PostgreSQL is stopped for 10 seconds and restarted once;
- a second worker joins the consumer group and later leaves it (two rebalances).

Then every metric's total equals the sum over the unique valid events, the dead-letter
table holds exactly the invalid records, every ledger row is one unique valid event, and
every partition's hash chain is unbroken. The figures are printed and written to
``out/chaos.json``.

Size: ``CITYSTREAM_CHAOS_EVENTS`` (``make test``: 6,000; ``make chaos``: 60,000) sent over
``CITYSTREAM_CHAOS_SECONDS``; ``CITYSTREAM_CHAOS_SEED`` repeats a run (the seed is printed).
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console
from rich.table import Table
from uuid6 import uuid7

from schemas.districts import SUBDISTRICTS
from schemas.envelope import Envelope
from schemas.heating import HeatingAreaConnected
from schemas.parking import ParkingSpacesOpened
from schemas.topics import HEATING, PARKING
from services.audit.replay import replay_from_kafka, replay_from_ledger
from services.kafka.producer import Producer
from services.kafka.topics import ensure_topics
from services.progress import caught_up
from streams.db import connect
from streams.db.migrate import migrate
from streams.rollup import rollup
from streams.settings import Settings
from tests.chaos.stack import ROOT, PrivateStack
from tests.conftest import WorkerProcess, wait_until
from tests.integration.helpers import chain_breaks

pytestmark = pytest.mark.chaos

EVENTS = int(os.environ.get("CITYSTREAM_CHAOS_EVENTS", "6000"))
SECONDS = float(os.environ.get("CITYSTREAM_CHAOS_SECONDS", "60"))
SEED = int(os.environ.get("CITYSTREAM_CHAOS_SEED", str(random.SystemRandom().randrange(1 << 31))))
DUPLICATE_SHARE = 0.05
INVALID_SHARE = 0.01
PG_OUTAGE_S = 10.0


@dataclass
class Workload:
    # (topic base name, value, key) in sending order
    records: list[tuple[str, bytes, bytes | None]] = field(default_factory=list)
    valid: dict[uuid.UUID, Envelope] = field(default_factory=dict)
    invalid: list[bytes] = field(default_factory=list)
    duplicates: int = 0


def _event(rng: random.Random) -> Envelope:
    occurred = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 200 * 1440))
    common: dict[str, Any] = {
        "event_id": uuid7(),
        "district": rng.choice(SUBDISTRICTS),
        "occurred_at": occurred,
        "reported_at": occurred + timedelta(hours=rng.randrange(1, 72)),
        "project": f"chaos site {rng.randrange(1, 400)}",
        "source_ref": f"chaos-ledger#{rng.randrange(1, 10**6)}",
    }
    if rng.random() < 0.7:
        return HeatingAreaConnected(
            department="heating", area_m2=Decimal(rng.randrange(100, 2_000_000)) / 100, **common
        )
    return ParkingSpacesOpened(
        department="parking",
        kind=rng.choice(("temporary", "permanent")),
        spaces=rng.randrange(1, 300),
        **common,
    )


def _invalid(rng: random.Random, event: Envelope) -> bytes:
    """A record a department could really send; each one distinct (it carries a new id)."""
    body = orjson.loads(event.model_dump_json())
    body["event_id"] = str(uuid7())
    flaw = rng.randrange(4)
    if flaw == 0:
        return orjson.dumps(body)[:-7]  # cut off mid-record
    if flaw == 1:
        body["district"] = "须水街道"  # not a subdistrict of the zone
    elif flaw == 2:
        del body["occurred_at"]
    else:
        key = "area_m2" if "area_m2" in body else "spaces"
        body[key] = -5
    return orjson.dumps(body)


def build_workload(count: int, rng: random.Random) -> Workload:
    work = Workload()
    sent: list[Envelope] = []
    while len(work.valid) < count:
        roll = rng.random()
        if sent and roll < DUPLICATE_SHARE:
            again = rng.choice(sent)  # a department re-sending what it already sent
            work.records.append((_topic(again), again.model_dump_json().encode(), None))
            work.duplicates += 1
        elif sent and roll < DUPLICATE_SHARE + INVALID_SHARE:
            raw = _invalid(rng, rng.choice(sent))
            work.records.append((_topic(sent[-1]), raw, None))
            work.invalid.append(raw)
        else:
            event = _event(rng)
            sent.append(event)
            work.valid[event.event_id] = event
            work.records.append((_topic(event), event.model_dump_json().encode(), None))
    return work


def _topic(event: Envelope) -> str:
    return HEATING.name if isinstance(event, HeatingAreaConnected) else PARKING.name


class PacedProducer(threading.Thread):
    """Sends the workload in chunks spread over ``seconds``; pauses while Kafka is down
    (a department's producer waits for the broker rather than guessing what got through)."""

    CHUNK = 100

    def __init__(self, settings: Settings, work: Workload, seconds: float) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.work = work
        self.seconds = seconds
        self.may_send = threading.Event()
        self.may_send.set()
        self.sending = threading.Lock()
        self.sent = 0
        self.error: BaseException | None = None

    def pause(self) -> None:
        """Return once no chunk is in flight and none will start until ``resume``."""
        self.may_send.clear()
        with self.sending:
            pass

    def resume(self) -> None:
        self.may_send.set()

    def run(self) -> None:
        try:
            producer = Producer(self.settings)
            records = self.work.records
            chunks = range(0, len(records), self.CHUNK)
            pace = self.seconds / max(1, len(chunks))
            for start in chunks:
                began = time.monotonic()
                while True:
                    self.may_send.wait()
                    with self.sending:
                        if not self.may_send.is_set():
                            continue
                        futures = [
                            producer.send_raw(topic, value, key)
                            for topic, value, key in records[start : start + self.CHUNK]
                        ]
                        producer.flush()
                        for future in futures:
                            future.get(timeout=self.settings.producer_timeout_s)
                        self.sent += len(futures)
                        break
                time.sleep(max(0.0, pace - (time.monotonic() - began)))
            producer.close()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateStack]:
    stack = PrivateStack(tmp_path_factory.mktemp("chaos-stack"))
    stack.prepare()
    stack.up()
    yield stack
    stack.down()
    stack.remove()


def _db_figures(settings: Settings) -> dict[str, Any]:
    with connect(settings) as conn:
        totals = {
            metric: Decimal(total)
            for metric, total in conn.execute(
                "SELECT metric, sum(total) FROM metric_daily GROUP BY metric"
            )
        }
        rollups = {
            (day, district, metric): (Decimal(total), int(events))
            for day, district, metric, total, events in conn.execute(
                "SELECT day, district, metric, total, events FROM metric_daily"
            )
        }
        ids = [row[0] for row in conn.execute("SELECT event_id FROM events")]
        dead = [bytes(row[0]) for row in conn.execute("SELECT raw FROM deadletters")]
    return {"totals": totals, "rollups": rollups, "ids": ids, "dead": dead}


def test_exactly_once_through_crashes_outages_and_rebalances(
    private_stack: PrivateStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(SEED)
    settings = private_stack.settings(
        db_schema="chaos",
        topic_namespace="chaos.",
        consumer_group="citystream-chaos",
        topic_partitions=6,
        metrics_port=0,
        batch_size=500,
        # a short session so the group notices a SIGKILLed member within seconds
        session_timeout_s=6.0,
        producer_timeout_s=30.0,
        worker_loglevel="info",  # the timeline below reads "batch written" and "resuming"
    )
    list(migrate(settings))
    ensure_topics(settings)
    work = build_workload(EVENTS, rng)
    log: list[str] = []

    def note(what: str) -> None:
        log.append(f"{time.monotonic() - began:6.1f}s {what}")

    first = WorkerProcess(settings, tmp_path / "w1")
    second = WorkerProcess(settings, tmp_path / "w2")
    (tmp_path / "w1").mkdir()
    (tmp_path / "w2").mkdir()
    producer = PacedProducer(settings, work, SECONDS)
    began = time.monotonic()
    first.start()
    producer.start()
    try:
        # Three SIGKILLs at random moments while the worker is writing batches.
        for kill in range(3):
            wait_until(
                lambda: '"batch written"' in _current_log(first),
                timeout_s=120,
                what="the restarted worker to write a batch",
                context=lambda: first.logs(tail=4000),
            )
            time.sleep(rng.uniform(0.5, 3.0))
            first.kill()
            note(f"worker SIGKILLed ({kill + 1}/3), {producer.sent} records sent so far")
            first.start()

        # Scale-out: a second worker joins, takes over partitions, writes, then leaves.
        second.start()
        note("a second worker joins the group")
        wait_until(
            lambda: '"batch written"' in _current_log(second),
            timeout_s=120,
            what="the second worker to write a batch of its partitions",
            context=lambda: second.logs(tail=4000),
        )
        time.sleep(rng.uniform(0.5, 2.0))
        second.stop()
        note("the second worker wrote batches and left the group")

        producer.pause()
        private_stack.down("kafka")
        note("Kafka broker stopped")
        time.sleep(3)
        private_stack.up()
        note("Kafka broker restarted")
        producer.resume()

        time.sleep(rng.uniform(1.0, 3.0))
        private_stack.down("postgres")
        note("PostgreSQL stopped")
        time.sleep(PG_OUTAGE_S)
        private_stack.up()
        note(f"PostgreSQL restarted after {PG_OUTAGE_S:.0f} s")

        producer.join(timeout=SECONDS * 4 + 120)
        assert producer.error is None, f"the producer failed: {producer.error!r}"
        assert not producer.is_alive(), "the producer did not finish"
        note(f"producer done: {producer.sent} records")
        wait_until(
            lambda: caught_up(settings, [HEATING.name, PARKING.name]),
            timeout_s=240,
            what="the worker to consume every record",
            context=lambda: first.logs(tail=4000),
        )
        note("worker caught up")
        assert first.alive(), f"the worker died:\n{first.logs()}"
    finally:
        producer.resume()
        first.stop()
        second.stop()

    figures = _db_figures(settings)
    valid = list(work.valid.values())
    expected_rollups = {
        key: (t.total, t.events)
        for key, t in rollup((e.occurred_at, str(e.district), e.measures()) for e in valid).items()
    }
    expected_totals: Counter[str] = Counter()
    for event in valid:
        for metric, quantity in event.measures().items():
            expected_totals[metric] += quantity  # type: ignore[assignment]
    breaks = chain_breaks(settings)
    # What an auditor gets for the same run: every rollup recomputed from Kafka and from
    # the ledger with the workers' own code, compared with the live table.
    replays = {
        source: replay(settings, topics=[HEATING.family, PARKING.family])
        for source, replay in (("kafka", replay_from_kafka), ("ledger", replay_from_ledger))
    }
    logs = first.logs(tail=None) + second.logs(tail=None)
    resumed = logs.count("resuming at the offsets stored in PostgreSQL")
    outcome = {
        "seed": SEED,
        "records_sent": len(work.records),
        "unique_valid_events": len(work.valid),
        "duplicates_sent": work.duplicates,
        "invalid_sent": len(work.invalid),
        "ledger_rows": len(figures["ids"]),
        "deadletters": len(figures["dead"]),
        "chain_breaks": len(breaks),
        "replay_kafka_differences": len(replays["kafka"].differences()),
        "replay_ledger_differences": len(replays["ledger"].differences()),
        "sink_retries_logged": logs.count("batch not written, retrying"),
        "resumed_from_postgres_logged": resumed,
        "totals": {
            m: {"expected": str(expected_totals[m]), "platform": str(figures["totals"].get(m))}
            for m in sorted(expected_totals)
        },
        "timeline": log,
    }
    with capsys.disabled():  # the figures are the point of the run: show them
        _print(outcome)

    assert sorted(figures["ids"]) == sorted(work.valid), "ledger rows ≠ the unique valid events"
    assert figures["totals"] == dict(expected_totals)
    assert figures["rollups"] == expected_rollups
    assert Counter(figures["dead"]) == Counter(work.invalid), "dead letters ≠ the invalid records"
    assert breaks == []
    for source, replayed in replays.items():
        assert replayed.differences() == [], f"replay from {source} differs from the rollups"
        assert replayed.accepted == len(work.valid), f"replay from {source} accepted another set"
    # The disruptions really happened: three kills, and the worker resumed each time from
    # the offsets PostgreSQL stored.
    assert first.starts == 4
    assert resumed >= 3
    assert '"batch written"' in second.logs(tail=None)


def _current_log(worker: WorkerProcess) -> str:
    return (worker.log_dir / f"worker-{worker.starts}.log").read_text(errors="replace")


def _print(outcome: dict[str, Any]) -> None:
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    (out / "chaos.json").write_bytes(orjson.dumps(outcome, option=orjson.OPT_INDENT_2))
    table = Table(title=f"chaos run (seed {outcome['seed']})", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in (
        "records_sent",
        "unique_valid_events",
        "duplicates_sent",
        "invalid_sent",
        "ledger_rows",
        "deadletters",
        "chain_breaks",
        "replay_kafka_differences",
        "replay_ledger_differences",
        "sink_retries_logged",
        "resumed_from_postgres_logged",
    ):
        table.add_row(key.replace("_", " "), f"{outcome[key]:,}")
    for metric, pair in outcome["totals"].items():
        same = "=" if pair["expected"] == pair["platform"] else "≠"
        table.add_row(metric, f"{pair['expected']} {same} {pair['platform']}")
    Console(width=110).print(table, *outcome["timeline"], sep="\n")

"""A simulated 2022 through Kafka into a real worker: the rollups reach every reported
achievement exactly, the invalid records are exactly the dead letters, duplicates count
once and the corrections restate what was over-reported."""

from __future__ import annotations

import io
import time
import uuid
from decimal import Decimal

import pytest
from rich.console import Console

from schemas.catalogue import LEVEL_METRICS
from schemas.seeds import load_catalogue
from services.demo import achievement_checks
from services.progress import caught_up
from services.simulator.plan import expected_totals, plan
from services.simulator.run import send
from streams.db import connect
from streams.settings import Settings
from tests.conftest import WorkerProcess, wait_until
from tests.integration.helpers import scalar

pytestmark = pytest.mark.integration


def _caught_up(settings: Settings, rows: int) -> bool:
    """Every planned row is in PostgreSQL and the stored offsets reach the end of every
    topic, so the duplicates sent last have been read too."""
    written = scalar(settings, "SELECT count(*) FROM events") + scalar(
        settings, "SELECT count(*) FROM deadletters"
    )
    if written < rows:
        return False
    return caught_up(settings)


def _progress(settings: Settings, worker: WorkerProcess) -> str:
    events = scalar(settings, "SELECT count(*) FROM events")
    letters = scalar(settings, "SELECT count(*) FROM deadletters")
    return f"events {events}, dead letters {letters}\n{worker.logs()}"


def test_simulated_2022_reaches_every_reported_achievement(
    isolated: Settings, worker: WorkerProcess
) -> None:
    catalogue = load_catalogue()
    year = plan(2022, catalogue=catalogue)
    worker.start()

    started = time.monotonic()
    report = send(year, isolated, Console(file=io.StringIO(), width=120))
    sent_s = time.monotonic() - started
    assert report.sent == len(year.records) and report.failed == 0

    rows = len(year.events) + len(year.invalid)
    wait_until(
        lambda: _caught_up(isolated, rows),
        timeout_s=75,
        what=f"{rows} ledger rows and dead letters",
        context=lambda: _progress(isolated, worker),
    )
    processed_s = time.monotonic() - started
    print(
        f"\n2022: {len(year.records)} records sent in {sent_s:.2f} s, "
        f"in PostgreSQL {processed_s:.1f} s after the first was sent"
    )

    with connect(isolated) as conn:
        totals = {
            metric: Decimal(total)
            for metric, total in conn.execute(
                "SELECT metric, sum(total) FROM metric_daily GROUP BY metric"
            ).fetchall()
        }
        letters = conn.execute("SELECT topic, reason, field, raw FROM deadletters").fetchall()
        counted: dict[uuid.UUID, int] = dict(
            conn.execute(
                "SELECT event_id, count(*) FROM events WHERE event_id = ANY(%s) GROUP BY 1",
                ([e.event_id for e in year.duplicates],),
            ).fetchall()
        )
        corrections = conn.execute(
            "SELECT count(*) FROM events WHERE corrects IS NOT NULL"
        ).fetchone()
        checks, unchecked = achievement_checks(conn, catalogue, year=2022)

    # Every 2022 achievement an event family produces, exactly: a sum from the rollups, a
    # level (the move-back rate) as the year's latest reading.
    assert {c.achievement.id: c.platform for c in checks} == {
        a.id: a.value for a in catalogue.achievements_for(2022) if a not in unchecked
    }
    assert any(catalogue.metric(c.achievement.metric).aggregation == "level" for c in checks)
    for achievement in catalogue.achievements_for(2022):
        if (
            catalogue.metric(achievement.metric).aggregation == "sum"
            and achievement not in unchecked
        ):
            assert totals.get(achievement.metric) == achievement.value, achievement.id
    assert totals == expected_totals(year)

    # The invalid records, and nothing else, are the dead letters, with the planned reasons.
    assert sorted((t, r, f, bytes(raw)) for t, r, f, raw in letters) == sorted(
        (isolated.topic_name(i.topic), i.reason, i.field, i.value) for i in year.invalid
    )

    # Duplicates were read and counted once; corrections were accepted.
    assert len(year.duplicates) >= 1
    assert counted == {e.event_id: 1 for e in year.duplicates}
    assert scalar(isolated, "SELECT count(*) FROM events") == len(year.events)
    assert scalar(isolated, "SELECT sum(events) FROM metric_daily") == sum(
        len(set(e.measures()) - LEVEL_METRICS) for e in year.events
    )
    assert corrections == (len(year.corrections),)
    assert worker.alive()

"""The families that make every 2024 pledge measurable, end to end.

Every event type added for them — project milestones and level reports — produced as raw
records by its own department's principal, through a real worker: the valid record lands
with its measures, an invalid one ends as a dead letter naming its field, and a correction
restates it. Then a level pledge (the move-back rate) over a year of reports — a late
report, two reports of one moment, a corrected report — read live in Python and in SQL,
as of a past moment, and explained line by line.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from schemas.catalogue import LEVEL_METRICS
from schemas.housing import HousingCorrection, HousingReturnRateReported
from schemas.seeds import load_catalogue
from schemas.topics import BY_EVENT_TYPE, FAMILY_OF, HOUSING
from services.audit.as_of import progress_as_of
from services.audit.explain import explain
from services.pledges.reads import progress, progress_from_sql
from services.pledges.rules import PledgeProgress, Status
from services.pledges.store import load
from services.progress import caught_up
from streams.db import connect
from streams.settings import Settings
from tests.conftest import WorkerProcess, kafka_options, wait_until
from tests.integration.audit_support import sink
from tests.integration.helpers import chain_breaks, scalar
from tests.unit.bad_inputs import event

pytestmark = pytest.mark.integration

NEW_FAMILIES = ("construction", "renewal", "urban_management", "health", "medical_insurance")
NEW_IN_OLD_FAMILIES = (
    "housing.preliminary_works_started",
    "housing.return_rate_reported",
    "education.school_construction",
    "education.inclusive_rate_reported",
)
NEW_TYPES = (
    tuple(kind.name for name in NEW_FAMILIES for kind in FAMILY_OF[name].events)
    + NEW_IN_OLD_FAMILIES
)

# What makes each event type's record invalid, and the (reason, field) of its dead letter.
BROKEN: dict[str, tuple[dict[str, Any], tuple[str, str]]] = {
    "construction.main_laid": ({"length_km": "0"}, ("out_of_range", "length_km")),
    "urban_management.area_greened": ({"area_m2": "600000"}, ("out_of_range", "area_m2")),
    "housing.return_rate_reported": (
        {"numerator": 10001, "denominator": 10000},
        ("out_of_range", "numerator"),
    ),
    "education.inclusive_rate_reported": ({"level_pct": "99.99"}, ("out_of_range", "level_pct")),
}
# Milestone types: a milestone their projects do not go through.
WRONG_MILESTONE = ({"milestone": "demolished"}, ("invalid_field", "milestone"))


def _record(event_type: str, **changes: Any) -> dict[str, Any]:
    return event(
        event_type,
        event_id=str(uuid.uuid4()),
        occurred_at="2024-06-03T10:00:00+08:00",
        reported_at="2024-06-04T09:00:00+08:00",
        **changes,
    )


def test_every_new_event_type_through_a_real_worker(
    isolated: Settings, worker: WorkerProcess
) -> None:
    assert set(NEW_TYPES) >= set(BROKEN)
    sent: dict[str, list[dict[str, Any]]] = {}
    expected_dead: dict[str, tuple[str, str]] = {}
    corrections: dict[str, dict[str, Any]] = {}
    for event_type in NEW_TYPES:
        family = FAMILY_OF[event_type.partition(".")[0]]
        good = _record(event_type)
        changes, dead = BROKEN.get(event_type, WRONG_MILESTONE)
        bad = _record(event_type, **changes)
        sent.setdefault(family.name, []).extend([good, bad])
        expected_dead[bad["event_id"]] = dead
        if family.name not in corrections:
            metric = family.correction_example["metric"]
            model = BY_EVENT_TYPE[event_type].by_type[event_type]
            measured = model.model_validate(good).measures()
            if metric in measured:  # the family's example correction fits this event
                fix = event(
                    family.correction_type,
                    event_id=str(uuid.uuid4()),
                    corrects=good["event_id"],
                    project=good.get("project"),
                    occurred_at="2024-06-20T10:00:00+08:00",
                    reported_at="2024-06-20T10:00:00+08:00",
                    source_ref=f"审批单 {event_type}",
                )
                corrections[family.name] = fix
    assert set(corrections) >= set(NEW_FAMILIES), "every new family's correction is exercised"

    worker.start()
    for department, records in sent.items():
        producer = KafkaProducer(**kafka_options(isolated, department))
        topic = isolated.topic_name(FAMILY_OF[department].topic)
        for record in records:
            producer.send(topic, orjson.dumps(record))
        if department in corrections:
            producer.flush()  # the correction after its original
            producer.send(topic, orjson.dumps(corrections[department]))
        producer.flush()
        producer.close()
    wait_until(
        lambda: caught_up(isolated, [FAMILY_OF[d].topic for d in sent]),
        timeout_s=120,
        what="every new family's records",
        context=worker.logs,
    )

    good_ids = {
        r["event_id"]
        for records in sent.values()
        for r in records
        if r["event_id"] not in expected_dead
    } | {c["event_id"] for c in corrections.values()}
    with connect(isolated) as conn:
        stored = {
            str(row[0]): (row[1], row[2])
            for row in conn.execute("SELECT event_id, event_type, measures FROM events")
        }
        letters = {
            orjson.loads(row[0])["event_id"]: (row[1], row[2])
            for row in conn.execute("SELECT raw, reason, field FROM deadletters")
        }
        rollups = {
            row[0]: Decimal(row[1])
            for row in conn.execute("SELECT metric, sum(total) FROM metric_daily GROUP BY metric")
        }
    assert set(stored) == good_ids, worker.logs()
    assert letters == expected_dead, worker.logs()

    # The rollups hold every summed measure, net of the corrections; levels stay out.
    expected: dict[str, Decimal] = {}
    for _, measures in stored.values():
        for metric, amount in measures.items():
            if metric not in LEVEL_METRICS:
                expected[metric] = expected.get(metric, Decimal(0)) + Decimal(amount)
    assert rollups == expected
    assert not LEVEL_METRICS & set(rollups)
    for name, fix in corrections.items():
        metric = FAMILY_OF[name].correction_example["metric"]
        assert stored[fix["event_id"]][1] == {metric: fix["delta"]}
    assert chain_breaks(isolated) == []
    assert worker.alive()


# --- a level pledge over a year ---------------------------------------------------------------

RETURN = "2024-housing-return-before-national-day"


def _moment(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def _report(
    measured: datetime, returned: int, *, reported: datetime | None = None
) -> HousingReturnRateReported:
    return HousingReturnRateReported.model_validate(
        {
            "event_id": uuid.uuid4(),
            "department": "housing",
            "district": "zone",
            "occurred_at": measured,
            "reported_at": reported or measured,
            "source_ref": f"回迁率月报 {measured:%Y-%m-%d} {uuid.uuid4().hex[:4]}",
            "numerator": returned,
            "denominator": 10000,
        }
    )


def _by_id(rows: list[PledgeProgress]) -> dict[str, PledgeProgress]:
    return {row.pledge_id: row for row in rows}


def _both(settings: Settings, on: date) -> tuple[PledgeProgress, PledgeProgress]:
    catalogue = load_catalogue()
    with connect(settings) as conn:
        python = _by_id(progress(conn, on=on, year=2024, catalogue=catalogue))[RETURN]
        in_sql = _by_id(progress_from_sql(conn, on=on, year=2024))[RETURN]
    return python, in_sql


def test_a_level_pledge_over_a_year_live_in_sql_as_of_and_explained(isolated: Settings) -> None:
    catalogue = load_catalogue()
    with connect(isolated) as conn:
        load(conn, catalogue=catalogue, year=2024)
        conn.commit()
    first = [
        _report(_moment(1, 31), 9240),
        _report(_moment(2, 29), 9310),
        _report(_moment(3, 31), 9380),
        _report(_moment(5, 31), 9530),
    ]
    assert sink(isolated, HOUSING, first).inserted == 4
    t1 = datetime.now(UTC)
    with connect(isolated) as conn:
        shown_at_t1 = _by_id(progress(conn, on=date(2024, 8, 31), year=2024, catalogue=catalogue))

    # After T1: April's report arrives late, a second report of 31 May (sent later, so it
    # wins), and March's report corrected down 1.3 points.
    late = _report(_moment(4, 30), 9470, reported=_moment(6, 20))
    again = _report(_moment(5, 31), 9560, reported=_moment(6, 2))
    fix = HousingCorrection.model_validate(
        {
            "event_id": uuid.uuid4(),
            "department": "housing",
            "district": "zone",
            "occurred_at": _moment(4, 10),
            "reported_at": _moment(6, 21),
            "corrects": first[2].event_id,
            "metric": "housing.return_rate_pct",
            "delta": "-1.30",
            "reason": "3月重复统计了一个村的回迁户",
            "approved_by": "张主任",
            "source_ref": "审批单 2024-077",
        }
    )
    assert sink(isolated, HOUSING, [late, again, fix]).inserted == 3

    expected = {
        # Until 30 September the baseline (92%) is due; above it, the trend decides.
        date(2024, 1, 30): (Decimal(0), Status.BEHIND),  # no reading yet: below the baseline
        date(2024, 1, 31): (Decimal("92.40"), Status.ON_TRACK),  # one reading, no trend
        date(2024, 3, 31): (Decimal("93.80"), Status.AT_RISK),  # +1.4 in 60 days: 2024-12-22
        date(2024, 4, 10): (Decimal("92.50"), Status.AT_RISK),  # the correction's day
        date(2024, 4, 30): (Decimal("94.70"), Status.AT_RISK),  # the late report counts
        date(2024, 5, 31): (Decimal("95.60"), Status.AT_RISK),  # trend: 14 November
        date(2024, 8, 31): (Decimal("95.60"), Status.AT_RISK),
        date(2024, 10, 1): (Decimal("95.60"), Status.OVERDUE),
    }
    for on, (level, status) in expected.items():
        python, in_sql = _both(isolated, on)
        assert python == in_sql, on
        assert (python.actual_to_date, python.status) == (level, status), on
    python, _ = _both(isolated, date(2024, 8, 31))
    assert python.projected_completion == date(2024, 11, 14)
    assert python.gap_units == Decimal("3.60")  # above the 92% baseline due until 30 Sept

    # As of T1 the pledge stood at the first May report, with its own trend.
    then = shown_at_t1[RETURN]
    assert then.actual_to_date == Decimal("95.30")
    with connect(isolated) as conn:
        as_of = _by_id(
            progress_as_of(conn, at=t1, on=date(2024, 8, 31), year=2024, catalogue=catalogue)
        )
        assert as_of[RETURN] == then
        now = _by_id(
            progress_as_of(
                conn, at=datetime.now(UTC), on=date(2024, 8, 31), year=2024, catalogue=catalogue
            )
        )
        assert now[RETURN] == python

        # explain: every report listed, only the latest counted; adds up then and now.
        pledge = catalogue.pledge(RETURN)
        live = explain(conn, pledge, catalogue, on=date(2024, 8, 31))
        past = explain(conn, pledge, catalogue, at=t1, on=date(2024, 8, 31))
        april = explain(conn, pledge, catalogue, on=date(2024, 4, 20))
    assert live.adds_up and live.figure == Decimal("95.60")
    assert [line.kind for line in live.lines].count("event") == 6
    assert [line.item for line in live.lines if line.counted] == ["latest"]
    assert past.adds_up and past.figure == Decimal("95.30")
    assert april.adds_up and april.figure == Decimal("92.50")
    assert [line.kind for line in april.lines if line.item == "latest"] == [
        "event",
        "correction",
    ]
    assert scalar(isolated, "SELECT count(*) FROM metric_daily") == 0

"""Pledge progress from SQL (pledge_progress view, pledge_progress_at) equals the Python API
(services.pledges.progress) for every pledge and date; loading is idempotent and versioned.

Rollup and ledger rows are written with plain INSERTs: this tests the view, not the sink.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest

from schemas.catalogue import Catalogue, Pledge
from schemas.districts import District
from schemas.seeds import load_catalogue
from services.pledges.reads import local_today, progress, progress_from_sql
from services.pledges.rules import PledgeProgress, Status
from services.pledges.store import load, validated_catalogue
from streams.db import connect
from streams.settings import Settings
from tests.conftest import ROOT, settings_env

pytestmark = pytest.mark.integration

HOUSING_DONE = "2024-housing-completed-area"
HEATING = "2024-heating-integration-area"
DRAINAGE = "2024-drainage-waterlogging-points"
SCHOOL = "2024-education-foreign-language-school-opened"

DATES = [
    date(2023, 12, 15),  # before every start
    date(2024, 1, 1),
    date(2024, 3, 31),
    date(2024, 5, 31),
    date(2024, 6, 5),
    date(2024, 8, 31),
    date(2024, 9, 1),
    date(2024, 9, 30),
    date(2024, 12, 31),
    date(2025, 2, 1),  # after every deadline
]

# day, district, metric, total: January to early October 2024, plus rows outside the year.
ROLLUPS: list[tuple[date, str, str, Decimal]] = [
    (date(2023, 12, 31), "shifo", "housing.completed_area_m2", Decimal(500000)),
    *[
        (date(2024, month, 15), district, "housing.completed_area_m2", Decimal(amount))
        for month, district, amount in [
            (1, "shifo", "30000"),
            (2, "gouzhao", "25000.5"),
            (3, "shifo", "20000"),
            (4, "fengyang", "90000"),
            (5, "shifo", "110000.25"),
            (6, "wutong", "60000"),
            (7, "shifo", "150000"),
            (8, "shuangqiao", "150000"),
            (9, "shifo", "120000"),
            (10, "shifo", "3000"),
        ]
    ],
    (date(2024, 3, 20), "shifo", "housing.started_area_m2", Decimal("17900")),
    (date(2024, 6, 10), "zone", "housing.started_area_m2", Decimal("150000.125")),
    *[
        (date(2024, 3, 16) + timedelta(days=10 * n), "fengyang", "heating.connected_area_m2", a)
        for n, a in enumerate(Decimal(40000 + 1000 * n) + Decimal("0.5") for n in range(22))
    ],
    (date(2024, 7, 2), "fengyang", "heating.connected_area_m2", Decimal("-1200.5")),
    (date(2024, 8, 28), "wutong", "education.school_places", Decimal(1200)),
    (date(2024, 9, 1), "wutong", "education.school_places", Decimal(900)),
    (date(2024, 9, 1), "wutong", "education.schools_opened", Decimal(1)),
    (date(2024, 4, 10), "shifo", "drainage.points_repaired", Decimal(2)),
    (date(2024, 5, 20), "wutong", "drainage.points_repaired", Decimal(1)),
    (date(2024, 6, 5), "wutong", "drainage.points_repaired", Decimal(-1)),
]


@pytest.fixture
def conn(isolated: Settings) -> Iterator[psycopg.Connection[Any]]:
    with connect(isolated) as connection:
        yield connection


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return validated_catalogue()


def _insert_rollups(conn: psycopg.Connection[Any]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO metric_daily (day, district, metric, total, events) "
            "VALUES (%s, %s, %s, %s, 1)",
            ROLLUPS,
        )
    conn.commit()


def _insert_event(
    conn: psycopg.Connection[Any],
    *,
    event_type: str,
    district: str,
    occurred_at: datetime,
    project: str | None,
    measures: dict[str, str],
    corrects: uuid.UUID | None = None,
) -> uuid.UUID:
    event_id = uuid.uuid4()
    family = event_type.partition(".")[0]
    offset = conn.execute("SELECT count(*) FROM events").fetchone()
    assert offset is not None
    digest = hashlib.sha256(event_id.bytes).digest()
    conn.execute(
        """INSERT INTO events (event_id, event_type, schema_version, department, district,
               occurred_at, reported_at, ingested_at, project, source_ref, measures, payload,
               topic, partition, kafka_offset, prev_hash, hash, corrects)
           VALUES (%s, %s, 1, %s, %s, %s, %s, %s, %s, NULL, %s, %s, %s, 0, %s, %s, %s, %s)""",
        (
            event_id,
            event_type,
            family,
            district,
            occurred_at,
            occurred_at,
            occurred_at,
            project,
            orjson.dumps(measures).decode(),
            orjson.dumps({"event_type": event_type}).decode(),
            f"city.{family}.v1",
            offset[0],
            b"\0" * 32,
            digest,
            corrects,
        ),
    )
    conn.commit()
    return event_id


def _insert_events(conn: psycopg.Connection[Any]) -> None:
    points = {"drainage.points_repaired": "1"}
    _insert_event(  # before the pledge started: does not count
        conn,
        event_type="drainage.point_repaired",
        district="shifo",
        occurred_at=datetime(2023, 12, 20, 3, tzinfo=UTC),
        project="kexue-avenue",
        measures=points,
    )
    for hour in (2, 5):  # reported twice on one day: one item
        _insert_event(
            conn,
            event_type="drainage.point_repaired",
            district="shifo",
            occurred_at=datetime(2024, 4, 10, hour, tzinfo=UTC),
            project="kexue-avenue",
            measures=points,
        )
    west = _insert_event(
        conn,
        event_type="drainage.point_repaired",
        district="wutong",
        occurred_at=datetime(2024, 5, 19, 20, tzinfo=UTC),  # 20 May, 04:00 local
        project="west-3rd-ring-north-extension",
        measures=points,
    )
    _insert_event(  # the west-ring report turns out wrong: corrected away on 5 June
        conn,
        event_type="drainage.correction",
        district="wutong",
        occurred_at=datetime(2024, 6, 5, 1, tzinfo=UTC),
        project="west-3rd-ring-north-extension",
        measures={"drainage.points_repaired": "-1"},
        corrects=west,
    )
    _insert_event(  # another point, not one the pledge names
        conn,
        event_type="drainage.point_repaired",
        district="wutong",
        occurred_at=datetime(2024, 5, 2, 1, tzinfo=UTC),
        project="changchun-road",
        measures=points,
    )
    # Level pledges: the latest reading counts, net of its corrections.
    rate = "housing.return_rate_pct"
    march = None
    for month, day, level in ((1, 31, "92.4"), (3, 31, "94.1"), (6, 30, "97.2"), (9, 29, "99.5")):
        reading = _insert_event(
            conn,
            event_type="housing.return_rate_reported",
            district="zone",
            occurred_at=datetime(2024, month, day, 8, tzinfo=UTC),
            project=None,
            measures={rate: level},
        )
        march = reading if month == 3 else march
    _insert_event(  # March's reading corrected on 5 April
        conn,
        event_type="housing.correction",
        district="zone",
        occurred_at=datetime(2024, 4, 5, 2, tzinfo=UTC),
        project=None,
        measures={rate: "-0.8"},
        corrects=march,
    )
    for month, level in ((2, "90.8"), (5, "91.9"), (8, "92.6")):
        _insert_event(
            conn,
            event_type="education.inclusive_rate_reported",
            district="zone",
            occurred_at=datetime(2024, month, 28, 8, tzinfo=UTC),
            project=None,
            measures={"education.kindergarten_inclusive_rate_pct": level},
        )
    _insert_event(  # 31 August 17:00 UTC is 1 September, 01:00 in Zhengzhou
        conn,
        event_type="education.school_opened",
        district="wutong",
        occurred_at=datetime(2024, 8, 31, 17, tzinfo=UTC),
        project="foreign-language-experimental-primary",
        measures={"education.schools_opened": "1"},
    )


def _by_id(rows: list[PledgeProgress]) -> dict[str, PledgeProgress]:
    return {row.pledge_id: row for row in rows}


def _assert_same(
    conn: psycopg.Connection[Any], catalogue: Catalogue, on: date
) -> dict[str, PledgeProgress]:
    python = progress(conn, on=on, year=2024, catalogue=catalogue)
    sql = progress_from_sql(conn, on=on, year=2024)
    assert [row.pledge_id for row in sql] == [row.pledge_id for row in python]
    for in_python, in_sql in zip(python, sql, strict=True):
        assert in_sql == in_python, f"{in_python.pledge_id} on {on}"
        # Exact decimals on both sides (no float crept in), equal as exact values.
        for name in ("target", "expected_to_date", "actual_to_date", "gap_units"):
            a, b = getattr(in_python, name), getattr(in_sql, name)
            assert (a is None) == (b is None), f"{in_python.pledge_id}.{name} on {on}"
            assert a is None or (type(a) is type(b) is Decimal and a == b)
    return _by_id(python)


def test_sql_and_python_agree_for_every_pledge_and_date(
    conn: psycopg.Connection[Any], catalogue: Catalogue
) -> None:
    report = load(conn, catalogue=catalogue, year=2024)
    assert sorted(report.added) == sorted(p.id for p in catalogue.pledges_for(2024))
    _insert_rollups(conn)
    _insert_events(conn)

    seen: dict[date, dict[str, PledgeProgress]] = {}
    for on in DATES:
        seen[on] = _assert_same(conn, catalogue, on)

    # The comparisons are about real numbers, not zeros on both sides.
    may = seen[date(2024, 5, 31)]
    assert may[HOUSING_DONE].actual_to_date == Decimal("275000.75")
    assert may[HOUSING_DONE].expected_to_date > 0
    assert may[DRAINAGE].actual_to_date == 2 and may[DRAINAGE].status is Status.ACHIEVED
    assert seen[date(2024, 6, 5)][DRAINAGE].actual_to_date == 1  # corrected away
    assert seen[date(2024, 3, 31)][DRAINAGE].actual_to_date == 0
    assert seen[date(2024, 8, 31)][SCHOOL].actual_to_date == 0
    assert seen[date(2024, 9, 1)][SCHOOL].status is Status.ACHIEVED
    assert seen[date(2025, 2, 1)][HOUSING_DONE].status is Status.OVERDUE
    assert seen[date(2023, 12, 15)][HOUSING_DONE].actual_to_date == 0
    statuses = {row.status for rows in seen.values() for row in rows.values()}
    assert statuses >= {
        Status.ACHIEVED,
        Status.OVERDUE,
        Status.BEHIND,
        Status.AT_RISK,
        Status.ON_TRACK,
    }
    rate = "2024-housing-return-before-national-day"
    assert seen[date(2024, 3, 31)][rate].actual_to_date == Decimal("94.1")
    assert seen[date(2024, 5, 31)][rate].actual_to_date == Decimal("93.3")  # corrected
    assert seen[date(2024, 9, 30)][rate].actual_to_date == Decimal("99.5")
    assert seen[date(2024, 8, 31)][rate].projected_completion is not None
    assert seen[date(2024, 12, 31)][rate].status is Status.OVERDUE
    assert any(row.gap_days and row.gap_days > 0 for rows in seen.values() for row in rows.values())
    assert any(
        row.projected_completion is not None for rows in seen.values() for row in rows.values()
    )

    # The view is the function at today's local date.
    for _ in range(3):
        today = local_today()
        view = progress_from_sql(conn, on=None, year=2024)
        if local_today() == today:
            break
    assert view == progress(conn, on=today, year=2024, catalogue=catalogue)
    assert {row.on for row in view} == {today}


def _table_state(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM pledges), (SELECT max(loaded_at) FROM pledges), "
        "(SELECT count(*) FROM pledge_schedule), "
        "(SELECT string_agg(id || ':' || version || ':' || content_hash, ',' ORDER BY id, version)"
        " FROM pledges)"
    ).fetchone()
    assert row is not None
    conn.commit()
    return tuple(row)


def _replace(catalogue: Catalogue, pledge_id: str, **changes: Any) -> tuple[Catalogue, Pledge]:
    changed = catalogue.pledge(pledge_id).model_copy(update=changes)
    pledges = tuple(changed if p.id == pledge_id else p for p in catalogue.pledges)
    return catalogue.model_copy(update={"pledges": pledges}), changed


def test_loading_twice_changes_nothing(conn: psycopg.Connection[Any], catalogue: Catalogue) -> None:
    load(conn, catalogue=catalogue)
    before = _table_state(conn)
    assert before[0] == len(catalogue.pledges)
    assert before[2] == sum((p.deadline - p.start).days + 1 for p in catalogue.pledges)
    report = load(conn, catalogue=load_catalogue())  # read from seeds/ afresh
    assert (report.added, report.revised) == ([], [])
    assert sorted(report.unchanged) == sorted(p.id for p in catalogue.pledges)
    assert _table_state(conn) == before


def test_a_changed_pledge_is_a_new_version_and_the_view_uses_it(
    conn: psycopg.Connection[Any], catalogue: Catalogue
) -> None:
    load(conn, catalogue=catalogue, year=2024)
    _insert_rollups(conn)
    on = date(2024, 9, 30)
    old = _by_id(progress_from_sql(conn, on=on))[HEATING]

    raised, _ = _replace(catalogue, HEATING, target=Decimal(1500000))
    report = load(conn, catalogue=raised, year=2024)
    assert report.revised == [(HEATING, 2)]
    assert report.added == []
    new = _assert_same(conn, raised, on)[HEATING]
    assert new.target == 1500000 and old.target == 1420000
    assert new.expected_to_date > old.expected_to_date
    assert new.actual_to_date == old.actual_to_date
    versions = conn.execute(
        "SELECT version, target FROM pledges WHERE id = %s ORDER BY version", (HEATING,)
    ).fetchall()
    assert versions == [(1, Decimal(1420000)), (2, Decimal(1500000))]  # the old row is kept
    rows = conn.execute(
        "SELECT version, count(*) FROM pledge_schedule WHERE pledge_id = %s GROUP BY version",
        (HEATING,),
    ).fetchall()
    assert sorted(rows) == [(1, 366), (2, 366)]
    conn.commit()

    # Scoped to one subdistrict: another version, counting that subdistrict only.
    scoped, _ = _replace(raised, HOUSING_DONE, district=District.SHIFO)
    assert load(conn, catalogue=scoped, year=2024).revised == [(HOUSING_DONE, 2)]
    housing = _assert_same(conn, scoped, on)[HOUSING_DONE]
    assert housing.district == "shifo"
    assert housing.actual_to_date == Decimal(30000 + 20000 + Decimal("110000.25") + 150000 + 120000)

    # Back to the original definition: a third version, not a return to version 1.
    assert load(conn, catalogue=catalogue, year=2024).revised == [(HEATING, 3), (HOUSING_DONE, 3)]
    _assert_same(conn, catalogue, on)


def test_stored_pledges_are_never_updated_in_place(
    conn: psycopg.Connection[Any], catalogue: Catalogue, isolated: Settings
) -> None:
    load(conn, catalogue=catalogue, year=2024)
    statements = (
        "UPDATE pledges SET target = target + 1",
        "DELETE FROM pledges",
        "UPDATE pledge_schedule SET expected = 0",
    )
    # The application role has no right to; and a superuser, whom privileges do not stop,
    # meets the trigger.
    for statement in statements:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.encode())
        conn.rollback()
    with connect(isolated, admin=True) as admin:
        for statement in statements:
            with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="never updated"):
                admin.execute(statement.encode())
            admin.rollback()


def test_the_pledges_commands(isolated: Settings) -> None:
    env = settings_env(isolated) | {"COLUMNS": "200"}

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "pledges", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "added: 17" in run("load", "--year", "2024")
    assert "added: 0  unchanged: 17" in run("load")
    out = run("status", "--year", "2024", "--on", "2024-06-30")
    assert "安置房全年新建成75.9万平方米" in out and "Complete 759,000 m²" in out
    assert "力争十一前实现群众回迁安置" in out and "年底学前教育普惠率93%以上" in out
    assert "2024-06-30" in out

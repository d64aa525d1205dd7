"""``audit as-of`` and ``audit explain`` against the ledger the sink writes: figures taken
at T1 are reproduced exactly after more events and corrections arrive, while the live
figures move on; the events listed for a figure add up to it exactly; the CLI's exit codes."""

from __future__ import annotations

import csv
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from schemas.catalogue import Catalogue
from schemas.drainage import POINTS_REPAIRED, DrainageCorrection
from schemas.heating import CONNECTED_AREA_M2, HeatingCorrection
from schemas.seeds import load_catalogue
from schemas.topics import DRAINAGE, HEATING
from services.audit.as_of import progress_as_of
from services.audit.explain import explain
from services.pledges.reads import progress
from services.pledges.rules import PledgeProgress
from streams.db import connect
from streams.settings import Settings
from tests.conftest import ROOT, settings_env
from tests.integration.audit_support import drainage_point, heating, sink

pytestmark = pytest.mark.integration

HEAT = "2024-heating-integration-area"  # a metric pledge, the whole zone
POINTS = "2024-drainage-waterlogging-points"  # an item pledge: two named points
ON = date(2024, 10, 31)


def _at(month: int, day: int) -> datetime:
    return datetime(2024, month, day, 2, tzinfo=UTC)


def _live(settings: Settings, catalogue: Catalogue) -> dict[str, PledgeProgress]:
    with connect(settings) as conn:
        return {p.pledge_id: p for p in progress(conn, on=ON, year=2024, catalogue=catalogue)}


def _as_of(settings: Settings, catalogue: Catalogue, at: datetime) -> dict[str, PledgeProgress]:
    with connect(settings) as conn:
        rows = progress_as_of(conn, at=at, on=ON, year=2024, catalogue=catalogue)
    return {p.pledge_id: p for p in rows}


def _cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "audit", *args],
        env=settings_env(settings) | {"COLUMNS": "200"} | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _actual(row: PledgeProgress) -> Decimal:
    assert row.actual_to_date is not None
    return row.actual_to_date


def test_as_of_reproduces_the_figures_shown_then_and_explain_adds_up(
    isolated: Settings, tmp_path: Path
) -> None:
    catalogue = load_catalogue()
    connected = [
        heating(_at(5, 20), "12000.50", district="fengyang", project="枫杨佳苑"),
        heating(_at(7, 2), "8400", district="shifo", project="西史赵安置区一期"),
        heating(_at(9, 15), "30250.25", district="wutong", project="梧桐小区"),
    ]
    kexue = drainage_point(_at(4, 10), "kexue-avenue")
    west = drainage_point(_at(5, 2), "west-3rd-ring-north-extension", district="wutong")
    other = drainage_point(_at(5, 3), "changchun-road", district="wutong")
    assert sink(isolated, HEATING, connected).inserted == 3
    assert sink(isolated, DRAINAGE, [kexue, west, other]).inserted == 3
    t1 = datetime.now(UTC)
    shown_at_t1 = _live(isolated, catalogue)

    # After T1: a late report of an earlier day, a new event, and two corrections (one
    # taking the west ring point back), all ingested after T1.
    later = [
        heating(_at(6, 11), "5000", district="gouzhao", project="沟赵安置区二期"),
        heating(_at(10, 9), "700", district="fengyang", project="枫杨佳苑"),
    ]
    cut = HeatingCorrection.model_validate(
        {
            "event_id": uuid.uuid4(),
            "department": "heating",
            "district": "fengyang",
            "occurred_at": _at(5, 20),
            "reported_at": _at(10, 20),
            "project": "枫杨佳苑",
            "corrects": connected[0].event_id,
            "metric": CONNECTED_AREA_M2,
            "delta": "-500.25",
            "reason": "面积重复计入",
            "approved_by": "王科长",
            "source_ref": "审批单 2024-031",
        }
    )
    undone = DrainageCorrection.model_validate(
        {
            "event_id": uuid.uuid4(),
            "department": "drainage",
            "district": "wutong",
            "occurred_at": _at(6, 5),
            "reported_at": _at(10, 20),
            "project": west.project,
            "corrects": west.event_id,
            "metric": POINTS_REPAIRED,
            "delta": "-1",
            "reason": "验收未通过",
            "approved_by": "李科长",
            "source_ref": "审批单 2024-032",
        }
    )
    assert sink(isolated, HEATING, [*later, cut]).inserted == 3
    assert sink(isolated, DRAINAGE, [undone]).inserted == 1
    live = _live(isolated, catalogue)

    # The live view moved on; as-of T1 is exactly what was shown at T1, row for row.
    assert _actual(shown_at_t1[HEAT]) == Decimal("50650.75")
    assert _actual(live[HEAT]) == Decimal("55850.50")
    assert (_actual(shown_at_t1[POINTS]), _actual(live[POINTS])) == (2, 1)
    assert _as_of(isolated, catalogue, t1) == shown_at_t1
    assert _as_of(isolated, catalogue, datetime.now(UTC)) == live

    # explain: the lines add up to the figure shown, then and now.
    with connect(isolated) as conn:
        heat_then = explain(conn, catalogue.pledge(HEAT), catalogue, at=t1, on=ON)
        heat_now = explain(conn, catalogue.pledge(HEAT), catalogue, on=ON)
        points_then = explain(conn, catalogue.pledge(POINTS), catalogue, at=t1, on=ON)
        points_now = explain(conn, catalogue.pledge(POINTS), catalogue, on=ON)
    assert (heat_then.figure, heat_then.total) == (_actual(shown_at_t1[HEAT]),) * 2
    assert {line.event.event_id for line in heat_then.lines if line.event} == {
        e.event_id for e in connected
    }
    assert (heat_now.figure, heat_now.total) == (_actual(live[HEAT]),) * 2
    kinds = {line.event.event_id: line for line in heat_now.lines if line.event}
    assert kinds[cut.event_id].kind == "correction" and kinds[cut.event_id].counted == Decimal(
        "-500.25"
    )
    assert [c.event_id for c in kinds[connected[0].event_id].corrected_by] == [cut.event_id]
    assert (points_then.figure, points_then.total) == (2, 2)
    assert (points_now.figure, points_now.total) == (1, 1)
    items = {line.item: line.counted for line in points_now.lines if line.kind == "item"}
    assert items == {"kexue-avenue": 1, "west-3rd-ring-north-extension": 0}

    # The commands: as-of, explain to CSV and XLSX, and the exit codes.
    as_of = _cli(isolated, "as-of", t1.isoformat(), "--on", ON.isoformat(), "--year", "2024")
    assert as_of.returncode == 0, as_of.stdout + as_of.stderr
    assert "6 ledger rows had been ingested" in as_of.stdout
    csv_path = tmp_path / "heat.csv"
    run = _cli(
        isolated,
        "explain",
        HEAT,
        "--as-of",
        t1.isoformat(),
        "--on",
        ON.isoformat(),
        "--out",
        str(csv_path),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == 3
    assert sum(Decimal(line["counted"]) for line in lines) == _actual(shown_at_t1[HEAT])
    xlsx_path = tmp_path / "points.xlsx"
    run = _cli(isolated, "explain", POINTS, "--on", ON.isoformat(), "--out", str(xlsx_path))
    assert run.returncode == 0, run.stdout + run.stderr
    sheet = load_workbook(xlsx_path, read_only=True)["events"]
    header, *rows = list(sheet.iter_rows(values_only=True))
    counted = header.index("counted")
    assert sum(row[counted] for row in rows) == 1
    assert {row[header.index("kind")] for row in rows} == {"event", "correction", "item"}

    # A rollup edited by hand: the live figure no longer adds up from the ledger.
    with connect(isolated) as conn:
        conn.execute(
            "UPDATE metric_daily SET total = total + 1 WHERE metric = %s AND day = %s",
            (CONNECTED_AREA_M2, date(2024, 7, 2)),
        )
        conn.commit()
    run = _cli(isolated, "explain", HEAT, "--on", ON.isoformat())
    assert run.returncode == 1, run.stdout + run.stderr
    assert "does not add up" in run.stdout

    bad = _cli(isolated, "as-of", "2024-06-30")
    assert bad.returncode == 2 and "date without a time" in bad.stderr
    unknown = _cli(isolated, "explain", "2024-no-such-pledge")
    assert unknown.returncode == 2 and "not in the catalogue" in unknown.stderr
    # The audit commands connect as the auditors' role: its address is what must answer.
    down = _cli(
        isolated, "verify", CITYSTREAM_AUDIT_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none"
    )
    assert down.returncode == 3 and "nothing was checked" in down.stderr

"""`citystream import` end to end: a 10,000-row XLSX heating ledger with Chinese headers and
3% bad rows → the real producer → Kafka → worker → PostgreSQL; then the same file again."""

from __future__ import annotations

import csv
import random
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from schemas.districts import LABELS, SUBDISTRICTS
from schemas.heating import CONNECTED_AREA_M2
from services.ledger_import import REJECTS_COLUMNS
from streams.db import connect
from streams.settings import Settings
from tests.conftest import ROOT, WorkerProcess, settings_env, wait_until
from tests.integration.helpers import consumed_everything, scalar

pytestmark = pytest.mark.integration

ROWS = 10_000
BAD = 300  # 3%
HEADERS = ["序号", "台账编号", "项目名称", "所属街道", "完成日期", "面积（㎡）"]

# Each kind of bad row: the cells it changes, and the reason the rejects file must give.
BAD_KINDS: list[tuple[str, dict[int, object]]] = [
    ("unknown_district", {3: "火星街道"}),
    ("missing_field", {3: None}),
    ("out_of_range", {5: 0}),
    ("out_of_range", {5: 6_500_000}),
    ("too_precise", {5: 1200.125}),
    ("invalid_field", {5: "约1200"}),
    ("invalid_field", {4: "2024-02-30"}),
    ("in_future", {4: datetime(2099, 11, 1)}),
]


def make_ledger(path: Path, *, seed: int) -> tuple[dict[str, Decimal], dict[int, str]]:
    """Write the ledger; return the good rows' area per district and {sheet row: reason}."""
    rng = random.Random(seed)
    bad_rows = dict(zip(sorted(rng.sample(range(ROWS), BAD)), range(BAD), strict=True))
    wb = Workbook(write_only=True)  # streamed out, as a big departmental export would be
    ws = wb.create_sheet("供热台账")
    ws.append(["郑州高新区2024年供热入网面积台账"])  # a title row: the header is row 2
    ws.append(HEADERS)
    expected: dict[str, Decimal] = defaultdict(Decimal)
    reasons: dict[int, str] = {}
    start = datetime(2024, 10, 1)
    for i in range(ROWS):
        district = SUBDISTRICTS[i % len(SUBDISTRICTS)]
        zh = LABELS[district][0]
        area = Decimal(rng.randrange(1_000, 20_000_000)) / 100  # to the cent
        row: list[object] = [
            i + 1,
            f"GR-2024-{i:05d}",
            f"安置区{i // 40 + 1:03d}期",
            zh if i % 2 else zh.removesuffix("街道"),  # 石佛街道 and 石佛 alike
            start + timedelta(minutes=rng.randrange(0, 60 * 24 * 60)),
            float(area),
        ]
        if i in bad_rows:
            reason, cells = BAD_KINDS[bad_rows[i] % len(BAD_KINDS)]
            for index, value in cells.items():
                row[index] = value
            reasons[i + 3] = reason  # title row 1, header row 2: data row i is sheet row i + 3
        else:
            expected[district.value] += area
        ws.append(row)
    wb.save(path)
    return dict(expected), reasons


def run_import(settings: Settings, path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "import",
            str(path),
            "--type",
            "heating.area_connected",
        ],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, time.monotonic() - started


def area_by_district(settings: Settings) -> dict[str, Decimal]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT district, sum(total) FROM metric_daily WHERE metric = %s GROUP BY district",
            (CONNECTED_AREA_M2,),
        ).fetchall()
    return {district: Decimal(total) for district, total in rows}


def test_xlsx_ledger_lands_exactly_once_and_bad_rows_are_reported(
    isolated: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    ledger = tmp_path / "供热台账_2024.xlsx"
    expected, reasons = make_ledger(ledger, seed=7)
    good = ROWS - BAD
    worker.start()

    result, seconds = run_import(isolated, ledger)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output  # some rows rejected, the others sent
    print(f"first import: {ROWS} rows in {seconds:.1f} s ({ROWS / seconds:,.0f} rows/s)")
    assert f"{good:,}" in output and "sent" in output

    rejects = tmp_path / "供热台账_2024.rejects.csv"
    with rejects.open(encoding="utf-8-sig", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert {int(r["row"]): r["reason"] for r in table} == reasons
    assert all(r["message_zh"] and r["message_en"] and r["rule"] for r in table)
    assert all(r["column"] in HEADERS for r in table)
    assert all(r["台账编号"].startswith("GR-2024-") for r in table)  # the original cells
    assert list(table[0])[: len(REJECTS_COLUMNS)] == list(REJECTS_COLUMNS)

    wait_until(
        lambda: consumed_everything(isolated),
        timeout_s=60,
        what=f"{good} imported events",
        context=worker.logs,
    )
    assert scalar(isolated, "SELECT count(*) FROM events") == good
    assert area_by_district(isolated) == expected
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0

    # The same ledger again: the same event ids and byte-identical events, so the sink
    # counts nothing twice and has nothing to dead-letter.
    again, _ = run_import(isolated, ledger)
    assert again.returncode == 2, again.stdout + again.stderr
    wait_until(
        lambda: consumed_everything(isolated),
        timeout_s=60,
        what="the re-imported events",
        context=worker.logs,
    )
    assert scalar(isolated, "SELECT count(*) FROM events") == good
    assert area_by_district(isolated) == expected
    assert scalar(isolated, "SELECT sum(events) FROM metric_daily") == good
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0
    assert worker.alive()

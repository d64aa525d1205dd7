"""Ledgers as district offices keep them, through `citystream import --wait`, the real
producer, Kafka, a real worker and PostgreSQL: total rows never land, office names and
two-row headers are read, a changed row becomes exactly one correction (or is refused at
import time), nothing is dead-lettered behind the clerk's back, and every row sent gets
the worker's verdict from the department's receipts."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from openpyxl import Workbook, load_workbook

from schemas.heating import CONNECTED_AREA_M2
from schemas.housing import COMPLETED_AREA_M2, COMPLETED_UNITS
from schemas.parking import PERMANENT_SPACES, TEMPORARY_SPACES
from schemas.topics import receipts_topic
from services.kafka.topics import ensure_topics
from streams.db import connect
from streams.settings import Settings
from tests.conftest import ROOT, WorkerProcess, kafka_options, settings_env
from tests.integration.helpers import scalar

pytestmark = pytest.mark.integration


def citystream(
    settings: Settings, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env={**settings_env(settings), "COLUMNS": "200"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def summary_value(output: str, label: str) -> str:
    """The value column of the summary line that starts with ``label``."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells and cells[0] == label:
            return cells[1]
    raise AssertionError(f"no summary line {label!r} in:\n{output}")


def totals(settings: Settings, metric: str) -> dict[str, Decimal]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT district, sum(total) FROM metric_daily WHERE metric = %s GROUP BY district",
            (metric,),
        ).fetchall()
    return {district: Decimal(total) for district, total in rows}


def rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


# --- an office's heating ledger: title, two-row header, office names, totals, notes --------------


def shifo_office_ledger(path: Path) -> dict[str, Decimal]:
    """石佛街道办事处's winter heating ledger, as its clerk keeps it: a merged title, 完成情况
    merged over 完成日期 and 入网面积（万㎡）, the other headers merged down both rows, every
    subdistrict under an office name, a 小计 per subdistrict in different columns, a 全区
    row equal to the section above it, a 总 计 and a 累计 row; returns m² per subdistrict."""
    rows: list[list[object]] = [
        ["高新区2024年冬季供热入网台账（石佛街道办事处汇总）"],
        ["序号", "台账编号", "项目名称", "所属街道", "完成情况", None, "备注"],
        [None, None, None, None, "完成日期", "入网面积（万㎡）", None],
        [1, "SF-HR-01", "西史赵安置区一期", "石佛街道办事处", datetime(2024, 11, 2), 3.2, None],
        [2, "SF-HR-02", "长椿路学校片区", "石佛办", datetime(2024, 11, 6), 1.85, "含学校"],
        ["小计", None, None, None, None, 5.05, None],
        [3, "GZ-HR-01", "沟赵安置区二期", "沟赵办事处", datetime(2024, 11, 3), 2.4, None],
        [4, "GZ-HR-02", "须水河人才公寓", "沟赵 街道", datetime(2024, 11, 9), 0.96, None],
        [None, None, "沟赵街道小计", None, None, 3.36, None],
        [5, "FY-HR-01", "枫杨安置区四期", "枫杨街道办", datetime(2024, 11, 4), 4.1, None],
        [6, "FY-HR-02", "杨金佳苑", "高新区枫杨街道", datetime(2024, 11, 12), 1.2, None],
        ["小  计", None, None, "枫杨", None, 5.3, None],
        [7, "WT-HR-01", "梧桐花园北区", "梧桐办事处", datetime(2024, 11, 5), 0.88, None],
        [8, "WT-HR-02", "梧桐安置区", "梧桐办", datetime(2024, 11, 15), 2.05, None],
        [9, "SQ-HR-01", "双桥安置区一期", "双桥街道办事处", datetime(2024, 11, 8), 3.3, None],
        [10, "SQ-HR-02", "双桥新苑", "双桥", datetime(2024, 11, 20), 2.0, "二次网待验收"],
        # The 梧桐 and 双桥 section summed by the clerk, with a reference like any row.
        [None, "WT-SQ", "梧桐双桥片区", "全区", datetime(2024, 11, 30), 8.23, None],
        ["总 计", None, None, "高新区", datetime(2024, 11, 30), 21.94, None],
        [None, None, None, "全区", None, 21.94, "1-11月累计"],
    ]
    wb = Workbook()
    ws = wb.active
    ws.title = "供热入网"
    for row in rows:
        ws.append(row)
    for cells in ("A1:G1", "E2:F2", "A2:A3", "B2:B3", "C2:C3", "D2:D3", "G2:G3"):
        ws.merge_cells(cells)
    wb.save(path)
    return {
        "shifo": Decimal("50500"),
        "gouzhao": Decimal("33600"),
        "fengyang": Decimal("53000"),
        "wutong": Decimal("29300"),
        "shuangqiao": Decimal("53000"),
    }


def test_an_office_ledger_lands_without_its_total_rows(
    isolated: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    path = tmp_path / "石佛办2024冬季供热入网台账.xlsx"
    expected = shifo_office_ledger(path)
    worker.start()

    result = citystream(isolated, "import", str(path), "--type", "heating.area_connected", "--wait")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output + worker.logs()
    assert "two-row header on rows 2–3" in output
    assert "stored 已入账 10" in output
    skipped = [line for line in output.splitlines() if "total row skipped" in line]
    assert [line.split(":")[0] for line in skipped] == [
        f"row {n}"
        for n in (6, 9, 12, 17, 18, 19)  # 小计 沟赵街道小计 小  计 全区=sum 总 计 累计
    ]
    assert "小计 (序号)" in skipped[0] and "沟赵街道小计 (项目名称)" in skipped[1]
    assert "the sum of rows 13–16" in skipped[3] and "1-11月累计 (备注)" in skipped[5]
    assert summary_value(output, "total rows 合计行") == "6"
    assert summary_value(output, "notes 备注列") == "2"

    assert scalar(isolated, "SELECT count(*) FROM events") == 10
    assert totals(isolated, CONNECTED_AREA_M2) == expected
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0
    assert not (tmp_path / "石佛办2024冬季供热入网台账.rejects.csv").exists()

    # The same ledger again: every row already imported, nothing sent.
    again = citystream(isolated, "import", str(path), "--type", "heating.area_connected", "--wait")
    assert again.returncode == 0, again.stdout + again.stderr
    assert summary_value(again.stdout, "already imported 已导入") == "10"
    assert summary_value(again.stdout, "sent 已发送") == "0"
    assert scalar(isolated, "SELECT count(*) FROM events") == 10
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0


# --- a housing ledger in GBK with a figure typed in the wrong unit ----------------------------


def test_a_figure_in_the_wrong_unit_is_refused_in_the_columns_unit_the_rest_lands(
    isolated: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    path = tmp_path / "住建局2024安置房竣工交付.csv"
    with path.open("w", encoding="gbk", newline="") as fh:
        csv.writer(fh).writerows(
            [
                [
                    "台账编号",
                    "安置区名称",
                    "所属街道",
                    "交付日期",
                    "建筑面积（万㎡）",
                    "套数",
                    "说明",
                ],
                [
                    "JG-2024-11",
                    "双桥安置区二期",
                    "双桥街道办事处",
                    "2024/12/18",
                    "9.75",
                    "1060",
                    "",
                ],
                [
                    "JG-2024-12",
                    "枫杨安置区五期",
                    "枫杨办",
                    "2024/12/26",
                    "86000",
                    "960",
                    "竣工备案",
                ],
                ["JG-2024-13", "沟赵安置区三期", "沟赵 街道", "2024/12/28", "12.4", "1,380", ""],
                ["合　计", "", "", "", "108.15", "3,400", ""],
            ]
        )
    worker.start()
    result = citystream(
        isolated, "import", str(path), "--type", "housing.units_completed", "--wait"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "GB18030" in output and "stored 已入账 2" in output
    assert "row 5: total row skipped 合计行已跳过 — 合　计 (台账编号)" in output
    (refused,) = rejects(tmp_path / "住建局2024安置房竣工交付.rejects.csv")
    assert (refused["row"], refused["column"], refused["value"]) == (
        "3",
        "建筑面积（万㎡）",
        "86000",
    )
    assert refused["reason"] == "out_of_range"
    assert "86,000 万㎡ 超过一个事件的上限 100 万㎡" in refused["message_zh"]
    assert "请填 8.6" in refused["message_zh"] and "860000000" not in refused["message_zh"]
    assert refused["说明"] == "竣工备案"  # the note stays with its row
    assert totals(isolated, COMPLETED_AREA_M2) == {
        "shuangqiao": Decimal("97500"),
        "gouzhao": Decimal("124000"),
    }
    assert sum(totals(isolated, COMPLETED_UNITS).values()) == 1060 + 1380
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0


# --- a corrected re-import -----------------------------------------------------------------------


PARKING = [
    ["台账编号", "项目名称", "所属街道", "开放日期", "车位类型", "车位数", "备注"],
    ["TC-24-031", "莲花街北侧", "枫杨办事处", "2024/9/12", "临时", "96", ""],
    ["TC-24-032", "科学大道辅道", "石佛街道办事处", "2024/9/20", "永久", "140", ""],
    ["TC-24-033", "瑞达路东段", "梧桐办", "2024/9/25", "临时", "58", "夜间开放"],
]


def _parking(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_a_corrected_reimport_is_one_correction_or_a_refusal_never_a_dead_letter(
    isolated: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    path = _parking(tmp_path / "停车办2024新增车位.csv", PARKING)
    worker.start()
    first = citystream(isolated, "import", str(path), "--wait")
    assert first.returncode == 0, first.stdout + first.stderr + worker.logs()
    assert totals(isolated, PERMANENT_SPACES) == {"shifo": Decimal(140)}

    # The clerk recounts 科学大道辅道: 140 → 152, and imports the ledger again.
    changed = [row[:] for row in PARKING]
    changed[2][5] = "152"
    _parking(path, changed)
    refused = citystream(isolated, "import", str(path), "--wait")
    output = refused.stdout + refused.stderr
    assert refused.returncode == 2, output
    assert "changed_since_import" in output and "already imported 已导入" in output
    (line,) = rejects(tmp_path / "停车办2024新增车位.rejects.csv")
    assert (line["row"], line["column"], line["value"]) == ("3", "车位数", "152")
    assert "140 个 → 152 个" in line["message_zh"] and "140 个 → 152 个" in line["message_en"]
    assert "--approved-by" in line["message_zh"] and "--reason" in line["message_en"]
    assert totals(isolated, PERMANENT_SPACES) == {"shifo": Decimal(140)}
    assert scalar(isolated, "SELECT count(*) FROM events WHERE corrects IS NOT NULL") == 0
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0

    approve = ["--approved-by", "李科长", "--reason", "现场复核车位数"]
    corrected = citystream(isolated, "import", str(path), "--wait", *approve)
    output = corrected.stdout + corrected.stderr
    assert corrected.returncode == 0, output + worker.logs()
    assert "corrections 更正" in output and "stored 已入账 1" in output
    assert scalar(isolated, "SELECT count(*) FROM events WHERE corrects IS NOT NULL") == 1
    with connect(isolated) as conn:
        row = conn.execute(
            """SELECT c.measures, c.district, c.payload->>'approved_by', c.payload->>'reason',
                      o.source_ref
               FROM events c JOIN events o ON o.event_id = c.corrects"""
        ).fetchone()
    assert row is not None
    assert row[0] == {PERMANENT_SPACES: "12"} and row[1] == "shifo"
    assert row[2:] == ("李科长", "现场复核车位数", "TC-24-032")
    assert totals(isolated, PERMANENT_SPACES) == {"shifo": Decimal(152)}  # restated
    assert totals(isolated, TEMPORARY_SPACES) == {"fengyang": Decimal(96), "wutong": Decimal(58)}
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0
    assert not (tmp_path / "停车办2024新增车位.rejects.csv").exists()

    # The corrected file once more, with or without the options: already imported.
    for extra in (approve, []):
        again = citystream(isolated, "import", str(path), "--wait", *extra)
        assert again.returncode == 0, again.stdout + again.stderr
        assert summary_value(again.stdout, "sent 已发送") == "0"
        assert summary_value(again.stdout, "already imported 已导入") == "3"
    assert scalar(isolated, "SELECT count(*) FROM events WHERE corrects IS NOT NULL") == 1
    assert totals(isolated, PERMANENT_SPACES) == {"shifo": Decimal(152)}
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0


def test_a_row_moved_to_another_subdistrict_is_refused_with_what_to_do(
    isolated: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    path = _parking(tmp_path / "停车.csv", PARKING)
    worker.start()
    assert citystream(isolated, "import", str(path), "--wait").returncode == 0
    moved = [row[:] for row in PARKING]
    moved[3][2] = "双桥办"
    _parking(path, moved)
    result = citystream(
        isolated, "import", str(path), "--wait", "--approved-by", "李", "--reason", "x"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = rejects(tmp_path / "停车.rejects.csv")
    assert (line["row"], line["reason"], line["column"]) == (
        "4",
        "changed_not_correctable",
        "所属街道",
    )
    assert "wutong → shuangqiao" in line["message_zh"]
    assert "citystream emit parking.correction corrects=" in line["message_zh"]
    assert scalar(isolated, "SELECT count(*) FROM events") == 3
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 0


# --- the worker's refusals, by --wait, emit --wait and `citystream receipts` ---------------------


def test_wait_reports_a_row_the_worker_refuses_and_receipts_list_it(
    isolated: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    unknown = str(uuid.uuid4())
    path = tmp_path / "供热更正.jsonl"
    lines = [
        {
            "event_type": "heating.area_connected",
            "source_ref": "GR-JL-01",
            "district": "梧桐街道办事处",
            "occurred_at": "2024-11-18",
            "project": "梧桐花园南区",
            "area_m2": "41250.5",
        },
        {
            "event_type": "heating.correction",
            "source_ref": "审批单 2024-117",
            "district": "shifo",
            "occurred_at": "2024-11-20",
            "corrects": unknown,
            "metric": CONNECTED_AREA_M2,
            "delta": "-1200",
            "reason": "面积重复计入",
            "approved_by": "王科长",
        },
    ]
    path.write_text("".join(orjson.dumps(line).decode() + "\n" for line in lines), "utf-8")
    worker.start()
    started = datetime.now().astimezone()

    result = citystream(isolated, "import", str(path), "--wait")
    output = result.stdout + result.stderr
    assert result.returncode == 2, output  # sent, then refused by the worker: not 0
    assert "refused 被拒收" in output and "unknown_corrected_event" in output
    assert "stored 已入账 1" in output
    (line,) = rejects(tmp_path / "供热更正.rejects.csv")
    assert (line["row"], line["reason"], line["column"]) == (
        "2",
        "unknown_corrected_event",
        "corrects",
    )
    assert unknown in line["message_zh"] and "not in the ledger" in line["message_en"]
    # The worker refused it, so it is a dead letter too — the clerk was told.
    assert scalar(isolated, "SELECT count(*) FROM deadletters") == 1

    emitted = citystream(
        isolated,
        "emit",
        "heating.area_connected",
        "district=枫杨办",
        "project=杨金佳苑二期",
        "area_m2=15000",
        "--wait",
    )
    assert emitted.returncode == 0, emitted.stdout + emitted.stderr
    assert "stored in the ledger" in emitted.stdout
    refused = citystream(
        isolated,
        "emit",
        "heating.correction",
        "district=shifo",
        f"corrects={unknown}",
        f"metric={CONNECTED_AREA_M2}",
        "delta=-5",
        "reason=x",
        "approved_by=y",
        "source_ref=SP-9",
        "--wait",
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "unknown_corrected_event" in refused.stderr

    since = started.isoformat(timespec="seconds")
    for name in ("回执.csv", "回执.xlsx"):
        listed = citystream(
            isolated,
            "receipts",
            "--department",
            "heating",
            "--since",
            since,
            "--out",
            str(tmp_path / name),
        )
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert "stored 2, duplicate 0, refused 2" in listed.stdout
    table = rejects(tmp_path / "回执.csv")
    assert sorted(r["outcome"] for r in table) == ["refused", "refused", "stored", "stored"]
    assert {r["reason"] for r in table if r["outcome"] == "refused"} == {"unknown_corrected_event"}
    assert {r["source_ref"] for r in table} >= {"GR-JL-01", "审批单 2024-117", "SP-9"}
    sheet = load_workbook(tmp_path / "回执.xlsx", read_only=True).active
    assert sheet is not None and len(list(sheet.iter_rows(values_only=True))) == 5
    only = citystream(
        isolated, "receipts", "--department", "heating", "--since", since, "--refused"
    )
    assert only.returncode == 0 and "SP-9" in only.stdout and "GR-JL-01" not in only.stdout


# --- receipts that did not reach Kafka ---------------------------------------------------------


def _lose_receipts(settings: Settings, department: str) -> None:
    """The receipts topic deleted and made again, empty: every receipt lost."""
    topic = settings.topic_name(receipts_topic(department))
    admin = KafkaAdminClient(**kafka_options(settings, "admin"))
    try:
        admin.delete_topics([topic])
        deadline = time.monotonic() + 60
        while True:
            try:
                if topic in ensure_topics(settings).created:
                    return
            except KafkaError:
                pass  # still being deleted
            if time.monotonic() > deadline:
                pytest.fail(f"{topic} could not be created again")
            time.sleep(0.2)
    finally:
        admin.close()


def test_lost_receipts_are_derived_again_by_the_next_worker_and_by_rebuild(
    isolated: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    path = _parking(
        tmp_path / "停车.csv",
        [*PARKING, ["TC-24-034", "天健湖东", "石佛", "2024/9/28", "半永久", "9", ""]],
    )
    worker.start()
    first = citystream(isolated, "import", str(path), "--wait")
    assert first.returncode == 2  # 半永久 is no kind of space: refused at import time
    worker.stop()

    def listed() -> str:
        result = citystream(
            isolated, "receipts", "--department", "parking", "--since", "2000-01-01"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    assert "stored 3, duplicate 0, refused 0" in listed()
    _lose_receipts(isolated, "parking")
    assert "stored 0, duplicate 0, refused 0" in listed()
    rebuilt = citystream(isolated, "receipts-rebuild", "--department", "parking")
    assert rebuilt.returncode == 0 and "published 3 receipts" in rebuilt.stdout, rebuilt.stderr
    assert "stored 3, duplicate 0, refused 0" in listed()

    # Lost again, with a worker gone: the next worker's assignment re-derives them.
    _lose_receipts(isolated, "parking")
    worker.start()
    deadline = time.monotonic() + 60
    while "stored 3, duplicate 0, refused 0" not in listed():
        if time.monotonic() > deadline:
            pytest.fail("the receipts were not re-derived\n" + worker.logs())
        time.sleep(1)
    # and --wait still works after it: the new records get receipts of their own.
    again = citystream(isolated, "import", str(path), "--wait")
    assert "already imported 已导入" in again.stdout, again.stdout + again.stderr

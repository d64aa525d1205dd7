"""Stage 1, files, on its own: CSV encodings and separators, XLSX sheets, unreadable
workbooks, JSONL lines. No socket."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson
import pytest
from openpyxl import Workbook

from services import ledger_import as li
from tests.unit.ledger_import.support import (
    CST,
    HEAT_HEADERS,
    events_of,
    plan_of,
    reasons,
    write_csv,
)

# --- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "detected"), [("gbk", "gb18030"), ("utf-8-sig", "utf-8-sig"), ("utf-8", "utf-8")]
)
def test_csv_encodings_are_detected(tmp_path: Path, encoding: str, detected: str) -> None:
    rows = [["R1", "枫杨佳苑·二期", "枫杨街道", "2024年10月8日", "1,200.5"]]
    path = write_csv(tmp_path / "l.csv", HEAT_HEADERS, rows, encoding=encoding)
    with li.open_ledger(path) as ledger:
        assert ledger.encoding == detected
        assert ledger.headers == HEAT_HEADERS
    (event,) = events_of(plan_of(path))
    assert (event.project, event.district) == ("枫杨佳苑·二期", "fengyang")


def test_a_file_in_neither_encoding_is_a_file_level_error(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes(",".join(HEAT_HEADERS).encode() + b"\n\xff\xff,\x80\n")
    with pytest.raises(li.LedgerError, match="CSV UTF-8"), li.open_ledger(path):
        pass


def test_tab_separated_and_semicolon_files(tmp_path: Path) -> None:
    path = tmp_path / "l.txt"
    path.write_text("\t".join(HEAT_HEADERS) + "\nR1\t甲\t石佛\t2024-10-08\t100\n", "utf-8")
    assert len(events_of(plan_of(path))) == 1


def test_xlsx_sheet_choice(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.title = "说明"
    wb.active.append(["本表说明"])
    ws = wb.create_sheet("供热")
    ws.append(HEAT_HEADERS)
    ws.append(["R1", "甲", "石佛", datetime(2024, 10, 8), 100])
    path = tmp_path / "l.xlsx"
    wb.save(path)
    assert len(events_of(plan_of(path, sheet="供热"))) == 1
    with pytest.raises(li.LedgerError, match=r"no sheet '热'.*说明, 供热"):
        plan_of(path, sheet="热")
    with pytest.raises(li.LedgerError, match="no header row"):
        plan_of(path)


def test_unreadable_workbooks_are_file_level_errors(tmp_path: Path) -> None:
    fake = tmp_path / "l.xlsx"
    fake.write_bytes(b"not a zip")
    with pytest.raises(li.LedgerError, match=r"save it again as .xlsx"), li.open_ledger(fake):
        pass
    old = tmp_path / "l.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(li.LedgerError, match=r"\.xlsx"), li.open_ledger(old):
        pass


def test_jsonl_lines(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    lines = [
        {
            "event_type": "education.places_added",
            "source_ref": "E1",
            "district": "枫杨街道",
            "occurred_at": "2024-09-01",
            "level": "小学",
            "places": 1800,
        },
        {
            "event_type": "education.school_opened",
            "source_ref": "E2",
            "district": "wutong",
            "occurred_at": "2024/9/1",
            "school_name": "梧桐幼儿园",
            "level": "幼儿园",
            "reported_at": "2024-09-02 10:00",
        },
        {
            "event_type": "education.places_added",
            "district": "石佛",
            "occurred_at": "2024-09-01",
            "level": "初中",
            "places": 1200,
            "principal": "王",
        },
    ]
    text = "".join(orjson.dumps(line).decode() + "\n" for line in lines)
    path.write_text(text + "\n{not json\n[1, 2]\n", encoding="utf-8")
    plan = plan_of(path, li.Options())
    first, second = events_of(plan)
    assert (first.level, first.places, first.district) == ("primary", 1800, "fengyang")  # type: ignore[attr-defined]
    assert second.reported_at == datetime(2024, 9, 2, 10, 0, tzinfo=CST)
    assert reasons(plan) == [
        (3, "principal", "unknown_field"),
        (5, "", "invalid_json"),
        (6, "", "not_an_object"),
    ]

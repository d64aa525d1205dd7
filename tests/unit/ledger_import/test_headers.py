"""Stage 2, headers, with ledgers as district offices keep them: notes columns are kept, a
two-row header (a merged group cell over its sub-headers, or a units row) is read as one,
or refused naming both rows and what to change. No socket."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from services import ledger_import as li
from tests.unit.ledger_import.support import events_of, plan_of, write_csv, write_xlsx

HEAT = li.Options("heating.area_connected")


# --- notes columns ------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["备注", "说明", "附注", "备注（选填）", "情况说明", "备 注"])
def test_a_notes_column_is_accepted_and_not_sent(tmp_path: Path, header: str) -> None:
    path = write_csv(
        tmp_path / "枫杨办供热.csv",
        [
            ["编号", "小区名称", "街道", "入网日期", "入网面积（㎡）", header],
            ["FY-2024-07", "枫林苑", "枫杨办事处", "2024/10/30", "31,250", "二次管网改造后入网"],
            ["FY-2024-08", "杨金佳苑", "枫杨办事处", "2024/11/2", "18,400", ""],
        ],
    )
    plan = plan_of(path, HEAT)
    assert plan.rejected == []
    assert plan.notes == [header] and plan.noted_rows == 1 and plan.ignored == []
    first, _ = events_of(plan)
    assert "二次管网" not in first.model_dump_json()  # the event has no note field
    assert (first.district, first.area_m2) == ("fengyang", Decimal("31250"))  # type: ignore[attr-defined]


def test_a_rejected_row_keeps_its_note_in_the_rejects_file(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "l.csv",
        [
            ["编号", "小区名称", "街道", "入网日期", "入网面积（㎡）", "备注"],
            ["FY-1", "枫林苑", "枫杨办事处", "2024/10/30", "-5", "面积待复核"],
        ],
    )
    plan = plan_of(path, HEAT)
    (rejected,) = plan.rejected
    assert rejected.cells[-1] == "面积待复核"


def test_other_unknown_columns_still_stop_the_import(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "l.csv",
        [["编号", "小区名称", "街道", "入网日期", "入网面积（㎡）", "备注", "经办人"]],
    )
    with pytest.raises(li.LedgerError, match=r"unknown column 经办人.*--mapping"):
        plan_of(path, HEAT)


# --- two-row headers ---------------------------------------------------------------------------


def _two_row_sheet(tmp_path: Path, sub: str = "供热面积（万㎡）") -> Path:
    """沟赵办's heating ledger: 完成情况 merged over its two sub-headers; 序号 … 所属街道 and
    备注 merged down over both header rows."""
    return write_xlsx(
        tmp_path / "沟赵办事处2024年供热入网台账.xlsx",
        [
            ["沟赵办事处2024年冬季供热入网情况统计表"],
            ["序号", "台账编号", "项目名称", "所属街道", "完成情况", None, "备注"],
            [None, None, None, None, "完成日期", sub, None],
            [1, "GZ-HT-031", "沟赵安置区二期", "沟赵办事处", datetime(2024, 11, 3), 12.86, None],
            [2, "GZ-HT-032", "须水河人才公寓", "沟赵办", datetime(2024, 11, 9), 3.2, "含商业"],
        ],
        merged=["A1:G1", "E2:F2", "A2:A3", "B2:B3", "C2:C3", "D2:D3", "G2:G3"],
    )


def test_a_merged_group_header_over_sub_headers_is_read_as_one_header(tmp_path: Path) -> None:
    path = _two_row_sheet(tmp_path)
    with li.open_ledger(path) as ledger:
        plan = li.plan_import(ledger, HEAT)
        assert ledger.header_rows == (2, 3)
        assert ledger.upper_headers is not None and ledger.upper_headers[4] == "完成情况"
    assert plan.headers[4:6] == ["完成日期", "供热面积（万㎡）"]
    assert plan.header_rows == (2, 3) and plan.rejected == [] and plan.rows_read == 2
    first, second = events_of(plan)
    assert first.area_m2 == Decimal("128600")  # type: ignore[attr-defined]
    assert (second.district, second.source_ref) == ("gouzhao", "GZ-HT-032")


def test_a_two_row_header_exported_as_csv_is_read_as_one(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "l.csv",
        [
            ["序号", "台账编号", "项目名称", "所属街道", "完成情况", "", "备注"],
            ["", "", "", "", "完成日期", "供热面积（万㎡）", ""],
            ["1", "GZ-1", "沟赵安置区二期", "沟赵办事处", "2024-11-03", "12.86", ""],
        ],
        encoding="gbk",
    )
    (event,) = events_of(plan_of(path, HEAT))
    assert event.area_m2 == Decimal("128600")  # type: ignore[attr-defined]


def test_a_units_row_under_the_header_gives_the_units(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "住建局竣工.csv",
        [
            ["台账编号", "安置区名称", "所属街道", "交付日期", "建筑面积", "套数", "说明"],
            ["", "", "", "", "万㎡", "套", ""],
            ["SQ-JG-01", "双桥安置区二期", "双桥街道办事处", "2024/12/18", "9.75", "1060", ""],
        ],
    )
    plan = plan_of(path, li.Options("housing.units_completed"))
    assert plan.headers[4] == "建筑面积（万㎡）"
    (event,) = events_of(plan)
    assert (event.area_m2, event.units) == (Decimal("97500"), 1060)  # type: ignore[attr-defined]


def test_a_two_row_header_with_an_unknown_sub_header_is_refused_naming_both_rows(
    tmp_path: Path,
) -> None:
    path = _two_row_sheet(tmp_path, sub="供热规模")
    with pytest.raises(li.LedgerError) as raised:
        plan_of(path, HEAT)
    message = str(raised.value)
    assert "rows 2 and 3 are a two-row header" in message
    assert "完成情况 over 完成日期 / 供热规模" in message
    assert "供热规模 (column F)" in message
    assert "Rename it in row 3" in message and "delete row 2" in message
    assert "F 供热规模" in message and "E 完成日期" in message and "A 序号" in message


def test_the_first_data_row_is_not_taken_for_a_second_header_row(tmp_path: Path) -> None:
    # CSV cells are all text; a data row is still no header row.
    path = write_csv(
        tmp_path / "l.csv",
        [
            ["台账编号", "项目名称", "所属街道", "完成日期", "面积（㎡）"],
            ["项目", "小区", "石佛", "2024-10-08", "100"],
        ],
    )
    plan = plan_of(path, HEAT)
    assert plan.header_rows == (1,) and plan.rows_read == 1
    assert [e.project for e in events_of(plan)] == ["小区"]


def test_an_unknown_group_label_without_sub_headers_is_an_unknown_column(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "l.csv",
        [
            ["台账编号", "项目名称", "所属街道", "完成日期", "面积（㎡）", "完成情况"],
            ["R1", "甲", "石佛", "2024-10-08", "100", "已完成"],
        ],
    )
    with pytest.raises(li.LedgerError, match="unknown column 完成情况"):
        plan_of(path, HEAT)

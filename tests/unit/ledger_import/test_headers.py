"""Stage 2, headers, with ledgers as district offices keep them: notes columns are kept, a
two-row header (a merged group cell over its sub-headers, or a units row) is read as one,
or refused naming both rows and what to change. No socket."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.topics import ALL
from services import ledger_import as li
from tests.unit.ledger_import.support import (
    HEAT,
    HEAT_HEADERS,
    NOW,
    events_of,
    plan_of,
    write_csv,
    write_rows,
    write_xlsx,
)

# --- notes columns ------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["备注", "说明", "附注", "备注（选填）", "情况说明", "备 注"])
def test_a_notes_column_is_accepted_and_not_sent(tmp_path: Path, header: str) -> None:
    path = write_rows(
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
    path = write_rows(
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
    path = write_rows(
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
    path = write_rows(
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
    path = write_rows(
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
    path = write_rows(
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
    path = write_rows(
        tmp_path / "l.csv",
        [
            ["台账编号", "项目名称", "所属街道", "完成日期", "面积（㎡）", "完成情况"],
            ["R1", "甲", "石佛", "2024-10-08", "100", "已完成"],
        ],
    )
    with pytest.raises(li.LedgerError, match="unknown column 完成情况"):
        plan_of(path, HEAT)


# --- header matching -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "field", "scale"),
    [
        ("项目名称", "project", 1),
        ("项目", "project", 1),
        ("所属街道", "district", 1),
        ("街道", "district", 1),
        ("办事处", "district", 1),
        ("日期", "occurred_at", 1),
        ("完成日期", "occurred_at", 1),
        ("发生日期", "occurred_at", 1),
        ("发生时间", "occurred_at", 1),
        ("日期（年月日）", "occurred_at", 1),
        ("上报日期", "reported_at", 1),
        ("报送日期", "reported_at", 1),
        ("台账编号", "source_ref", 1),
        ("编号", "source_ref", 1),
        ("单据号", "source_ref", 1),
        ("事件类型", "event_type", 1),
        ("部门", "department", 1),
        ("面积(㎡)", "area_m2", 1),
        ("面积（㎡）", "area_m2", 1),
        ("面积(平方米)", "area_m2", 1),
        ("面积 (m²)", "area_m2", 1),
        ("面积【㎡】", "area_m2", 1),
        ("面积㎡", "area_m2", 1),
        ("面积/㎡", "area_m2", 1),
        ("面积（单位：㎡）", "area_m2", 1),
        ("建筑面积", "area_m2", 1),
        ("建筑面积（万㎡）", "area_m2", 10_000),
        ("面积(万平方米)", "area_m2", 10_000),
        ("套数", "units", 1),
        ("套数（套）", "units", 1),
        ("户数", "households", 1),
        ("人数", "persons", 1),
        ("学位数", "places", 1),
        ("新增学位", "places", 1),
        ("学段", "level", 1),
        ("学校名称", "school_name", 1),
        ("车位数", "spaces", 1),
        ("车位类型", "kind", 1),
        ("停车场名称", "lot_name", 1),
        ("长度(公里)", "length_km", 1),
        ("管网长度(km)", "length_km", 1),
        ("管网长度（米）", "length_km", Decimal("0.001")),
        ("点位名称", "point_name", 1),
        ("经度", "location.lon", 1),
        ("纬度", "location.lat", 1),
        (" *项目名称 ", "project", 1),  # a template's required-field star, stray spaces
        ("area_m2", "area_m2", 1),
        ("Area_M2", "area_m2", 1),
        ("ＡＲＥＡ＿Ｍ２", "area_m2", 1),  # full width
        ("occurred at", "occurred_at", 1),
        ("Occurred-At", "occurred_at", 1),
        ("source_ref", "source_ref", 1),
    ],
)
def test_headers_a_clerk_writes_map_to_fields(header: str, field: str, scale: Any) -> None:
    assert li.match_header(header) == li.Match(field, Decimal(scale))


def test_every_field_of_every_event_type_has_a_header() -> None:
    for spec in ALL:
        for model in spec.models:
            for name in li.model_fields([model]):
                match = li.match_header(name)
                assert match is not None and match.field == name, (model.event_type_name, name)


def test_a_unit_that_cannot_be_converted_is_an_error_naming_the_column() -> None:
    with pytest.raises(li.LedgerError, match=r"面积\(亩\).*亩"):
        li.match_header("面积(亩)")


def test_unknown_column_is_an_error_before_any_row_is_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "l.csv", [*HEAT_HEADERS, "负责人"], [["a"] * 6])

    def no_rows() -> Iterator[tuple[int, Sequence[Any]]]:
        # The row under the header is looked at (a second header row?), no further.
        yield 2, ["a"] * 6
        raise AssertionError("a data row was read")

    with li.open_ledger(path) as ledger:
        ledger.rows = no_rows()
        with pytest.raises(li.LedgerError) as raised:
            li.plan_import(ledger, HEAT, now=NOW)
    assert "负责人" in str(raised.value)
    assert "--mapping" in str(raised.value)


def test_two_columns_for_one_field_and_a_field_of_another_type_are_errors(tmp_path: Path) -> None:
    both = write_csv(tmp_path / "a.csv", [*HEAT_HEADERS, "发生日期"], [])
    with pytest.raises(li.LedgerError, match=r"完成日期.*发生日期.*occurred_at"):
        plan_of(both)
    other = write_csv(tmp_path / "b.csv", [*HEAT_HEADERS, "学位数"], [])
    with pytest.raises(li.LedgerError, match=r"学位数.*places.*heating.area_connected"):
        plan_of(other)


def test_mapping_file_names_fields_and_ignores_columns(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("供热规模（万㎡）: area_m2\n负责人: null\n小区: project\n", encoding="utf-8")
    path = write_csv(
        tmp_path / "l.csv",
        ["台账编号", "小区", "街道", "日期", "供热规模（万㎡）", "负责人"],
        [["R1", "枫杨佳苑", "枫杨", "2024-10-08", "1.25", "张三"]],
    )
    plan = plan_of(path, li.Options("heating.area_connected", mapping=li.read_mapping(mapping)))
    (event,) = events_of(plan)
    assert event.project == "枫杨佳苑"
    assert event.area_m2 == Decimal("12500")  # type: ignore[attr-defined]
    assert plan.ignored == ["负责人"]

    as_json = tmp_path / "m.json"
    as_json.write_text('{"供热规模": "area_sqm"}', encoding="utf-8")
    with pytest.raises(li.LedgerError, match="area_sqm"):
        li.read_mapping(as_json)


def test_event_type_is_inferred_only_when_one_type_fits(tmp_path: Path) -> None:
    drainage = write_csv(
        tmp_path / "d.csv",
        ["点位名称", "街道", "日期"],
        [["科学大道与长椿路口", "石佛", "2024-05-20"]],
    )
    plan = plan_of(drainage, li.Options())
    assert plan.event_type == "drainage.point_repaired"
    assert [e.event_type_name for e in events_of(plan)] == ["drainage.point_repaired"]

    heating = write_csv(tmp_path / "h.csv", HEAT_HEADERS, [])
    with pytest.raises(li.LedgerError, match=r"--type.*heating.area_connected"):
        plan_of(heating, li.Options())

"""The ledger importer without Kafka: reading CSV/XLSX/JSONL, header matching, cell
conversion, validation with the real decode, ids, duplicates, the rejects file, and the
sending layer against a stand-in producer. No socket is opened."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from schemas.envelope import Envelope, ledger_event_id
from schemas.fields import normalise_text
from schemas.topics import ALL, BY_EVENT_TYPE, HEATING
from schemas.validation import decode
from services import ledger_import as li
from services.cli import main
from services.producer import DeliveryError

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "seeds" / "samples"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
HEAT = li.Options(event_type="heating.area_connected")
HEAT_HEADERS = ["台账编号", "项目名称", "所属街道", "完成日期", "面积（㎡）"]


def write_csv(
    path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, encoding: str = "utf-8"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, rows: Sequence[Sequence[Any]], *, sheet: str = "台账") -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for row in rows:
        ws.append(list(row))
    wb.save(path)
    return path


def plan_of(path: Path, options: li.Options = HEAT, **kw: Any) -> li.Plan:
    with li.open_ledger(path, sheet=kw.pop("sheet", None)) as ledger:
        return li.plan_import(ledger, options, now=NOW, **kw)


def events_of(plan: li.Plan) -> list[Envelope]:
    out = []
    for entry in plan.to_send():
        event = decode(BY_EVENT_TYPE[entry.event_type], entry.raw, now=NOW)
        assert isinstance(event, Envelope)
        out.append(event)
    return out


def reasons(plan: li.Plan) -> list[tuple[int, str, str]]:
    return [(r.row, r.column, r.reason) for r in plan.rejected]


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


# --- cells -----------------------------------------------------------------------------------

CST = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (datetime(2024, 3, 5), datetime(2024, 3, 5, tzinfo=CST)),  # an Excel date cell
        (datetime(2024, 3, 5, 14, 30), datetime(2024, 3, 5, 14, 30, tzinfo=CST)),
        (date(2024, 3, 5), datetime(2024, 3, 5, tzinfo=CST)),
        ("2024-03-05", datetime(2024, 3, 5, tzinfo=CST)),
        ("2024/3/5", datetime(2024, 3, 5, tzinfo=CST)),
        ("2024年3月5日", datetime(2024, 3, 5, tzinfo=CST)),
        ("２０２４年３月５日", datetime(2024, 3, 5, tzinfo=CST)),
        ("2024.3.5", datetime(2024, 3, 5, tzinfo=CST)),
        ("20240305", datetime(2024, 3, 5, tzinfo=CST)),
        (20240305, datetime(2024, 3, 5, tzinfo=CST)),
        (" 2024-03-05 14:30 ", datetime(2024, 3, 5, 14, 30, tzinfo=CST)),
        ("2024/3/5 14:30:15", datetime(2024, 3, 5, 14, 30, 15, tzinfo=CST)),
        ("2024年3月5日 14时30分", datetime(2024, 3, 5, 14, 30, tzinfo=CST)),
        ("2024年3月5日14:30", datetime(2024, 3, 5, 14, 30, tzinfo=CST)),
        ("2024-03-05T06:30:00Z", datetime(2024, 3, 5, 6, 30, tzinfo=UTC)),
        ("2024-03-05T14:30:00+08:00", datetime(2024, 3, 5, 14, 30, tzinfo=CST)),
        ("2024/3/5 6:30 +0000", datetime(2024, 3, 5, 6, 30, tzinfo=UTC)),
    ],
)
def test_dates_as_the_clerk_writes_them(cell: Any, expected: datetime) -> None:
    parsed = li.parse_datetime(cell)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("cell", ["2024-02-30", "三月五日", "2024-13-01", 45356, 45356.5, True])
def test_what_is_not_a_date_is_rejected_with_a_clerks_message(cell: Any) -> None:
    with pytest.raises(li.CellError) as raised:
        li.parse_datetime(cell)
    why = raised.value.rejection
    assert (why.reason, why.field) == ("invalid_field", "occurred_at")
    assert "2024-03-05" in why.message_zh and "2024-03-05" in why.message_en


def test_chinese_enum_values_map_to_codes(tmp_path: Path) -> None:
    parking = write_csv(
        tmp_path / "p.csv",
        ["台账编号", "事件类型", "停车场名称", "街道", "开放日期", "车位类型", "车位数"],
        [
            ["P1", "新建停车场", "科学大道停车场", "石佛街道", "2024/5/10", "临时", "320"],
            ["P2", "新增车位", "", "枫杨", "2024/6/1", "永久", "1,250"],
            ["P3", "parking.spaces_opened", "", "wutong", "2024/6/1", "permanent", "5"],
            ["P4", "新增车位", "", "枫杨", "2024/6/1", "半永久", "5"],
        ],
    )
    plan = plan_of(parking, li.Options())
    kinds = [(e.event_type_name, e.kind, e.spaces) for e in events_of(plan)]  # type: ignore[attr-defined]
    assert kinds == [
        ("parking.lot_opened", "temporary", 320),
        ("parking.spaces_opened", "permanent", 1250),
        ("parking.spaces_opened", "permanent", 5),
    ]
    (bad,) = plan.rejected
    assert (bad.row, bad.column, bad.value, bad.reason) == (
        5,
        "车位类型",
        "半永久",
        "invalid_field",
    )
    assert "临时" in bad.message_zh and "temporary" in bad.message_en

    education = write_csv(
        tmp_path / "e.csv",
        ["编号", "学校名称", "街道", "日期", "学段", "学位数"],
        [
            ["E1", "一小", "石佛", "2024-09-01", "小学", 1800],
            ["E2", "二中", "石佛", "2024-09-01", "初中", 1200],
            ["E3", "三幼", "石佛", "2024-09-01", "幼儿园", 360],
            ["E4", "四高", "石佛", "2024-09-01", "高中", 2400],
        ],
    )
    plan = plan_of(education, li.Options("education.places_added"))
    levels = [e.level for e in events_of(plan)]  # type: ignore[attr-defined]
    assert levels == ["primary", "junior_secondary", "kindergarten", "senior_secondary"]


def test_district_names_thousands_separators_and_units(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "h.xlsx",
        [
            ["台账编号", "事件类型", "项目", "街道", "日期", "建筑面积（万㎡）", "套数"],
            ["A1", "新开工", "西史赵三期", "石佛街道", datetime(2024, 3, 18), 12.5, 1420],
            ["A2", "竣工交付", "沟赵二期", "沟赵", "2024/6/28", "8.36", "960"],
        ],
    )
    first, second = events_of(plan_of(path, li.Options()))
    assert (first.district, first.area_m2, first.units) == ("shifo", Decimal("125000"), 1420)  # type: ignore[attr-defined]
    assert (second.district, second.area_m2) == ("gouzhao", Decimal("83600"))  # type: ignore[attr-defined]
    assert first.occurred_at == datetime(2024, 3, 18, tzinfo=CST)
    assert first.reported_at == first.occurred_at  # no 上报日期: reported as of its own date


# --- validation, ids, duplicates --------------------------------------------------------------


def test_each_rejected_row_names_row_column_value_and_reason(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "h.xlsx",
        [
            ["2024年供热台账"],  # a title row: the header is row 2
            ["序号", *HEAT_HEADERS],
            [1, "R1", "甲", "石佛", datetime(2024, 10, 8), 1200.5],
            [],  # a blank row is skipped, and row numbers stay the sheet's
            [2, "R2", "乙", "火星", datetime(2024, 10, 8), 100],
            [3, "R3", "丙", "石佛", datetime(2024, 10, 8), -1],
            [4, "R4", "丁", "石佛", datetime(2099, 1, 1), 5],
            [5, "R5", "戊", "石佛", "明天", 5],
            [6, "R6", "己", "石佛", datetime(2024, 10, 8), 1.005],
        ],
    )
    plan = plan_of(path)
    assert plan.rows_read == 6
    assert reasons(plan) == [
        (5, "所属街道", "unknown_district"),
        (6, "面积（㎡）", "out_of_range"),
        (7, "完成日期", "in_future"),
        (8, "完成日期", "invalid_field"),
        (9, "面积（㎡）", "too_precise"),
    ]
    values = [r.value for r in plan.rejected]
    assert values == ["火星", "-1", "2099-01-01", "明天", "1.005"]
    first = plan.rejected[0]
    assert first.message_zh.startswith("所属街道：") and "火星" in first.message_zh
    assert first.message_en.startswith("所属街道 (district): ")
    assert first.cells == ("2", "R2", "乙", "火星", "2024-10-08", "100")
    (event,) = events_of(plan)
    assert event.area_m2 == Decimal("1200.5")  # type: ignore[attr-defined]


def test_event_ids_come_from_department_and_normalised_reference(tmp_path: Path) -> None:
    rows = [["ＧＲ-001\u200b", "甲", "石佛", "2024-10-08", "100"]]
    plan = plan_of(write_csv(tmp_path / "a.csv", HEAT_HEADERS, rows))
    (event,) = events_of(plan)
    assert event.event_id == ledger_event_id("heating", normalise_text("GR-001"))
    assert event.source_ref == "GR-001"
    assert event.department == "heating"

    # The same ledger as XLSX (typed cells, another file name) gives the same event.
    xlsx = write_xlsx(
        tmp_path / "b.xlsx",
        [HEAT_HEADERS, ["GR-001", "甲", "石佛街道", datetime(2024, 10, 8), 100]],
    )
    assert events_of(plan_of(xlsx)) == [event]


def test_hidden_characters_in_headers_and_cells_change_nothing(tmp_path: Path) -> None:
    """The import reads with the text fields' own normalisation: a header, reference (so
    the event id), project, district, date or number with invisible or blank-looking
    characters gives the clean row's event; a reference of only such characters is none."""
    clean_row = ["GR-001", "石佛 安置区", "石佛", "2024-10-08", "1,200.5"]
    clean = plan_of(write_csv(tmp_path / "clean.csv", HEAT_HEADERS, [clean_row]))
    headers = ["台账\u200b编号", "项目名称\ufe0f", "\u3164所属街道", "完成日期\u2060"]
    headers.append("面积（㎡）\u2800")
    rows = [
        ["GR-001\u2062", "石佛\u3164安置区", "石佛\u200b", "2024-10-08\ufeff", "1,200.5\u200b"],
        ["\u3164\u200b", "石佛安置区", "石佛", "2024-10-08", "100"],
    ]
    plan = plan_of(write_csv(tmp_path / "hidden.csv", headers, rows))
    assert reasons(plan) == [(3, "台账\u200b编号", "missing_field")]
    assert events_of(plan) == events_of(clean)


def test_without_reference_column_ids_hash_the_row_and_survive_reordering(tmp_path: Path) -> None:
    headers = ["项目名称", "所属街道", "完成日期", "面积（㎡）"]
    rows = [
        ["甲", "石佛", "2024-10-08", "100"],
        ["乙", "沟赵", "2024-10-09", "200.50"],
        ["丙", "枫杨", "2024-10-10", "300"],
        ["甲", "石佛街道", "2024/10/8", "100.0"],  # the first row again, written differently
    ]
    first = plan_of(write_csv(tmp_path / "ledger.csv", headers, rows))
    (tmp_path / "sorted").mkdir()
    again = plan_of(write_csv(tmp_path / "sorted" / "ledger.csv", headers, rows[::-1]))
    ids = {e.event_id: e.source_ref for e in events_of(first)}
    assert len(ids) == 3 and first.duplicates == 1 and first.derived_refs == 4
    assert {e.event_id for e in events_of(again)} == set(ids)
    assert all(re.fullmatch(r"ledger#[0-9a-f]{16}", str(ref)) for ref in ids.values())
    renamed = plan_of(write_csv(tmp_path / "other.csv", headers, rows))
    assert not {e.event_id for e in events_of(renamed)} & set(ids)


def test_conflicting_references_reject_every_row_identical_ones_count_once(tmp_path: Path) -> None:
    rows = [
        ["R1", "甲", "石佛", "2024-10-08", "100"],
        ["R2", "乙", "石佛", "2024-10-08", "200"],
        ["R1", "甲", "石佛", "2024-10-08", "100"],  # identical: a duplicate, sent once
        ["R2", "乙", "石佛", "2024-10-08", "250"],  # differs: R2 is a conflict
        ["R2", "乙", "石佛", "2024-10-08", "200"],
    ]
    plan = plan_of(write_csv(tmp_path / "l.csv", HEAT_HEADERS, rows))
    assert plan.duplicates == 1
    assert [e.source_ref for e in events_of(plan)] == ["R1"]
    assert reasons(plan) == [(n, "台账编号", "duplicate_source_ref") for n in (3, 5, 6)]
    assert "3、5、6" in plan.rejected[0].message_zh
    assert "rows 3, 5, 6" in plan.rejected[0].message_en
    assert plan.rejected[1].cells == ("R2", "乙", "石佛", "2024-10-08", "250")


def test_a_row_without_reference_in_a_ledger_with_references_is_rejected(tmp_path: Path) -> None:
    rows = [["", "甲", "石佛", "2024-10-08", "100"], ["R2", "乙", "", "2024-10-08", "1"]]
    plan = plan_of(write_csv(tmp_path / "l.csv", HEAT_HEADERS, rows))
    assert reasons(plan) == [(2, "台账编号", "missing_field"), (3, "所属街道", "missing_field")]


def test_department_defaults_and_may_not_write_another_family(tmp_path: Path) -> None:
    rows = [["R1", "甲", "石佛", "2024-10-08", "100"]]
    path = write_csv(tmp_path / "l.csv", [*HEAT_HEADERS, "部门"], [[*rows[0], "停车"]])
    plan = plan_of(path)
    assert reasons(plan) == [(2, "部门", "department_not_allowed")]
    with pytest.raises(li.LedgerError, match="department parking may not send"):
        plan_of(path, li.Options("heating.area_connected", department="parking"))


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


# --- the rejects file ------------------------------------------------------------------------


def test_rejects_file_lists_every_rejected_row_with_its_cells(tmp_path: Path) -> None:
    rows = [["R1", "甲", "火星", "2024-10-08", "100"], ["R2", "乙", "石佛", "2024-10-08", "x"]]
    plan = plan_of(write_csv(tmp_path / "l.csv", HEAT_HEADERS, rows))
    out = tmp_path / "l.rejects.csv"
    assert li.write_rejects(out, plan.headers, plan.rejected) == 2
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # so that Excel shows the Chinese
    with out.open(encoding="utf-8-sig", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == [*li.REJECTS_COLUMNS, *HEAT_HEADERS]
    assert [r[:4] for r in table[1:]] == [
        ["2", "所属街道", "火星", "unknown_district"],
        ["3", "面积（㎡）", "x", "invalid_field"],
    ]
    for line in table[1:]:
        row = dict(zip(li.REJECTS_COLUMNS, line, strict=False))
        assert row["rule"] and re.search(r"[\u4e00-\u9fff]", row["message_zh"])
        assert row["message_en"].isascii() is False or row["message_en"]
    assert table[2][len(li.REJECTS_COLUMNS) :] == rows[1]


def test_a_fixed_rejects_file_imports_like_its_ledger(tmp_path: Path) -> None:
    """The clerk corrects the cells in the rejects file and imports it: its report columns
    are skipped, and a row without reference gets the id the fixed ledger row would get."""
    headers = ["项目名称", "所属街道", "完成日期", "面积（㎡）"]
    plan = plan_of(write_csv(tmp_path / "h.csv", headers, [["甲", "火星", "2024-10-08", "100"]]))
    rejects = tmp_path / "h.rejects.csv"
    li.write_rejects(rejects, plan.headers, plan.rejected)
    text = rejects.read_text(encoding="utf-8-sig").replace(",火星,", ",石佛,")
    rejects.write_text(text, encoding="utf-8-sig")

    with li.open_ledger(rejects) as opened:
        assert opened.headers == headers
    (fixed,) = events_of(plan_of(rejects))
    (tmp_path / "again").mkdir()
    ledger = write_csv(tmp_path / "again" / "h.csv", headers, [["甲", "石佛", "2024-10-08", "100"]])
    assert events_of(plan_of(ledger)) == [fixed]
    result = CliRunner().invoke(
        main, ["import", str(rejects), "--type", "heating.area_connected", "--dry-run"]
    )
    assert result.exit_code == 0, result.output


# --- sending, with a stand-in producer ----------------------------------------------------------


class FakeFuture:
    def __init__(self, error: str | None = None, done: bool = True) -> None:
        self.is_done = done
        self.exception = error

    def failed(self) -> bool:
        return self.exception is not None


class FakeProducer:
    def __init__(self, fail_refs: Collection[str] = (), flush_fails_at: int | None = None) -> None:
        self.sent: list[Envelope] = []
        self.fail_refs = fail_refs
        self.flush_fails_at = flush_fails_at
        self.flushes = 0

    def send(self, event: Envelope) -> FakeFuture:
        self.sent.append(event)
        if event.source_ref in self.fail_refs:
            return FakeFuture("KafkaTimeoutError: batch expired")
        return FakeFuture(done=self.flush_fails_at is None or self.flushes < self.flush_fails_at)

    def flush(self) -> None:
        self.flushes += 1
        if self.flush_fails_at is not None and self.flushes > self.flush_fails_at:
            raise DeliveryError("Kafka did not take the queued events")


def _ledger_plan(tmp_path: Path, n: int) -> li.Plan:
    rows = [[f"R{i}", "甲", "石佛", "2024-10-08", str(100 + i)] for i in range(n)]
    return plan_of(write_csv(tmp_path / "l.csv", HEAT_HEADERS, rows))


def test_send_reports_every_row_kafka_did_not_acknowledge(tmp_path: Path) -> None:
    plan = _ledger_plan(tmp_path, 10)
    producer = FakeProducer({"R9"})
    sent, failed = li.send_plan(plan, producer, batch_size=4)
    assert sent == 9 and producer.flushes == 3
    assert [(f.row, f.reason) for f in failed] == [(11, "delivery_failed")]
    assert "batch expired" in failed[0].message_en
    assert failed[0].cells == ("R9", "甲", "石佛", "2024-10-08", "109")


def test_after_a_failure_the_rest_is_reported_not_dropped(tmp_path: Path) -> None:
    plan = _ledger_plan(tmp_path, 10)
    producer = FakeProducer({"R2"})
    sent, failed = li.send_plan(plan, producer, batch_size=4)
    assert sent == 3  # R0, R1, R3 of the first batch
    assert [f.row for f in failed] == [4, *range(6, 12)]
    assert "not tried" in failed[-1].message_en


def test_send_stops_after_a_failed_flush_and_reports_the_rest(tmp_path: Path) -> None:
    plan = _ledger_plan(tmp_path, 10)
    producer = FakeProducer(flush_fails_at=1)
    sent, failed = li.send_plan(plan, producer, batch_size=4)
    assert sent == 4
    assert [f.row for f in failed] == list(range(6, 12))  # nothing silently dropped
    assert len(producer.sent) == 8  # the third batch was not tried
    assert all(f.reason == "delivery_failed" for f in failed)


def test_events_sent_are_the_events_validated(tmp_path: Path) -> None:
    plan = _ledger_plan(tmp_path, 3)
    producer = FakeProducer()
    li.send_plan(plan, producer)
    assert producer.sent == events_of(plan)
    assert all(e.event_type_name == "heating.area_connected" for e in producer.sent)
    assert {HEATING.name} == {BY_EVENT_TYPE[e.event_type_name].name for e in producer.sent}


# --- the command, in dry-run (no Kafka) --------------------------------------------------------


def test_cli_exit_codes_and_rejects_file(tmp_path: Path) -> None:
    runner = CliRunner()
    good = write_csv(tmp_path / "good.csv", HEAT_HEADERS, [["R1", "甲", "石佛", "2024-10-08", "1"]])
    result = runner.invoke(
        main, ["import", str(good), "--type", "heating.area_connected", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "good.rejects.csv").exists()

    bad = write_csv(
        tmp_path / "bad.csv",
        HEAT_HEADERS,
        [["R1", "甲", "火星", "2024-10-08", "1"], ["R2", "乙", "石佛", "2024-10-08", "2"]],
    )
    result = runner.invoke(
        main, ["import", str(bad), "--type", "heating.area_connected", "--dry-run"]
    )
    assert result.exit_code == 2, result.output
    assert "unknown_district" in result.output
    assert (tmp_path / "bad.rejects.csv").exists()

    unknown = write_csv(tmp_path / "u.csv", [*HEAT_HEADERS, "负责人"], [])
    result = runner.invoke(
        main, ["import", str(unknown), "--type", "heating.area_connected", "--dry-run"]
    )
    assert result.exit_code == 1
    assert "负责人" in result.output and "--mapping" in result.output

    result = runner.invoke(main, ["import", str(tmp_path / "missing.csv"), "--dry-run"])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = runner.invoke(
        main, ["import", str(good), "--type", "heating.area_heated", "--dry-run"]
    )
    assert result.exit_code == 1 and "heating.area_connected" in result.output


# --- the samples -----------------------------------------------------------------------------


def test_samples_are_what_make_samples_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(SAMPLES / "make_samples.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "options", "events"),
    [
        ("heating_2024.xlsx", li.Options("heating.area_connected"), 12),
        ("housing_2024.xlsx", li.Options(), 6),
        ("parking_2024.csv", li.Options(), 6),
        ("drainage_2024.csv", li.Options(), 5),
        ("education_2024.jsonl", li.Options(), 9),
    ],
)
def test_sample_ledgers_import_without_rejects(name: str, options: li.Options, events: int) -> None:
    plan = plan_of(SAMPLES / name, options)
    assert plan.rejected == [], plan.rejected[:3]
    assert len(events_of(plan)) == events == plan.rows_read


def test_sample_with_errors_gives_the_rejects_its_readme_documents() -> None:
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Expected result of `heating_2024_with_errors.csv`")[1]
    documented = [
        (int(m[1]), m[2].strip(), m[3].strip(), m[4].strip())
        for m in re.finditer(r"^\| (\d+) \|([^|]*)\|([^|]*)\| (\w+) \|", section, re.M)
    ]
    plan = plan_of(SAMPLES / "heating_2024_with_errors.csv")
    assert [(r.row, r.column, r.value, r.reason) for r in plan.rejected] == documented
    assert plan.rows_read == 15 and plan.duplicates == 1
    assert [(t.row, t.why) for t in plan.totals] == [(9, "全区合计")]
    assert sorted(str(e.source_ref) for e in events_of(plan)) == ["HX-001", "HX-002", "HX-014"]

"""Stage 4, plan, with ledgers as district offices keep them: total and subtotal rows of
every kind are skipped and reported by row number, never sent; office names of the
subdistricts are accepted; a figure typed in the wrong unit is refused in the column's own
unit. No socket."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.districts import LABELS, SUBDISTRICTS
from schemas.envelope import ledger_event_id
from schemas.fields import normalise_text
from services import ledger_import as li
from tests.unit.ledger_import.support import (
    HEAT,
    HEAT_HEADERS,
    events_of,
    plan_of,
    reasons,
    write_csv,
    write_rows,
    write_xlsx,
)

HEADER = ["序号", "台账编号", "项目名称", "所属街道", "入网日期", "入网面积（㎡）", "备注"]


def _totals(plan: li.Plan) -> list[tuple[int, str]]:
    return [(t.row, t.why) for t in plan.totals]


# --- total rows ------------------------------------------------------------------------------


def test_subtotals_per_subdistrict_and_a_spaced_grand_total_are_skipped(tmp_path: Path) -> None:
    """梧桐办's ledger: a 小计 under each subdistrict's rows (in 序号, merged across the
    first columns), a 合　计 with an ideographic space at the bottom — every cell filled,
    the zone as its district, as a clerk's SUM() leaves it."""
    path = write_xlsx(
        tmp_path / "梧桐办供热台账.xlsx",
        [
            ["高新区2024年供热入网统计"],
            HEADER,
            [1, "WT-01", "梧桐花园北区", "梧桐街道办事处", datetime(2024, 10, 18), 38250.25, None],
            [2, "WT-02", "梧桐安置区", "梧桐办", datetime(2024, 11, 5), 44980, None],
            ["小计", None, None, None, None, 83230.25, None],
            [3, "SQ-01", "双桥新苑", "双桥办事处", datetime(2024, 10, 21), 52780, None],
            ["小  计", None, None, "双桥", None, 52780, None],
            ["合　计", "—", "—", "全区", datetime(2024, 11, 30), 136010.25, "两个街道"],
        ],
        merged=["A1:G1", "A5:E5"],
    )
    plan = plan_of(path, HEAT)
    assert plan.rejected == []
    assert [e.source_ref for e in events_of(plan)] == ["WT-01", "WT-02", "SQ-01"]
    assert _totals(plan) == [(5, "小计"), (7, "小  计"), (8, "合　计")]
    assert [t.column for t in plan.totals] == ["序号", "序号", "序号"]


@pytest.mark.parametrize(
    ("column", "label"),
    [
        (0, "总计"),
        (2, "1-11月累计"),
        (2, "石佛街道小计"),
        (3, "合 计"),
        (6, "合计（含在建）"),  # in the notes column
        (1, "本页合计"),
    ],
)
def test_a_total_word_in_any_text_column_skips_the_row(
    tmp_path: Path, column: int, label: str
) -> None:
    total = ["", "", "", "全区", "2024-11-30", "1500", ""]
    total[column] = label
    path = write_rows(
        tmp_path / "l.csv",
        [
            HEADER,
            ["1", "SF-1", "西史赵一期", "石佛", "2024-10-08", "1000", ""],
            ["2", "SF-2", "西史赵二期", "石佛", "2024-10-09", "500", ""],
            total,
        ],
    )
    plan = plan_of(path, HEAT)
    assert _totals(plan) == [(4, label)]
    assert plan.totals[0].column == HEADER[column]
    assert plan.rejected == [] and len(events_of(plan)) == 2


def test_a_zone_wide_row_equal_to_the_sum_above_is_a_total_without_the_word(
    tmp_path: Path,
) -> None:
    path = write_rows(
        tmp_path / "l.csv",
        [
            HEADER,
            ["1", "SF-1", "西史赵一期", "石佛", "2024-10-08", "86,420.5", ""],
            ["2", "GZ-1", "沟赵二期", "沟赵", "2024-10-12", "128,900.75", ""],
            ["3", "ZONE-1", "全区汇总", "高新区", "2024-10-31", "215321.25", ""],
            # a real zone-wide event: its figure is not a sum
            ["4", "ZONE-2", "主干管网联网", "全区", "2024-11-02", "5000", ""],
            # a row without a subdistrict equal to every data row above: the grand total
            ["", "", "", "", "", "220321.25", ""],
        ],
    )
    plan = plan_of(path, HEAT)
    assert [e.source_ref for e in events_of(plan)] == ["SF-1", "GZ-1", "ZONE-2"]
    assert [t.row for t in plan.totals] == [4, 6]
    assert "the sum of rows 2–3" in plan.totals[0].why and "215321.25" in plan.totals[0].why
    assert "no subdistrict" in plan.totals[1].why and "the sum of rows 2–5" in plan.totals[1].why
    assert plan.rejected == []


def test_words_that_only_look_like_totals_are_data(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "l.csv",
        [
            HEADER,
            ["1", "SF-9", "总计划外补建楼", "石佛", "2024-10-08", "1000", "合计算面积已核"],
        ],
    )
    plan = plan_of(path, HEAT)
    assert plan.totals == [] and len(events_of(plan)) == 1


def test_a_total_row_with_empty_cells_is_skipped_not_refused(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "l.csv",
        [
            HEADER,
            ["1", "SF-1", "甲", "石佛", "2024-10-08", "10", ""],
            ["合计", "", "", "", "", "", ""],
        ],
    )
    plan = plan_of(path, HEAT)
    assert plan.rejected == [] and _totals(plan) == [(3, "合计")]


# --- subdistricts as offices write them --------------------------------------------------------


def test_each_office_form_of_each_subdistrict_in_a_ledger(tmp_path: Path) -> None:
    forms = ["{}街道办事处", "{}办事处", "{}办", "{} 街道", "{}街道办", "高新区{}街道"]
    rows = [HEADER]
    expected = []
    for i, district in enumerate(SUBDISTRICTS):
        short = LABELS[district][0].removesuffix("街道")
        for j, form in enumerate(forms):
            rows.append([str(len(rows)), f"R{i}{j}", "项目", form.format(short), "2024-10-08", "1"])
            expected.append(district.value)
    rows.append([str(len(rows)), "R-X", "项目", "石佛/沟赵", "2024-10-08", "1"])
    plan = plan_of(write_rows(tmp_path / "l.csv", rows), HEAT)
    assert [str(e.district) for e in events_of(plan)] == expected
    (bad,) = plan.rejected
    assert (bad.reason, bad.column, bad.value) == ("unknown_district", "所属街道", "石佛/沟赵")
    assert "石佛街道" in bad.message_zh and "每条记录只能属于一个街道" in bad.message_zh


# --- refusals in the column's own unit ---------------------------------------------------------


def test_square_metres_typed_into_a_wan_column_are_refused_in_wan(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "住建局.xlsx",
        [
            ["台账编号", "安置区", "街道", "竣工日期", "建筑面积（万㎡）", "套数"],
            ["FY-JG-3", "枫杨安置区五期", "枫杨办", datetime(2024, 9, 26), 86000, 960],
        ],
    )
    (why,) = plan_of(path, li.Options("housing.units_completed")).rejected
    assert (why.reason, why.column, why.value) == ("out_of_range", "建筑面积（万㎡）", "86000")
    assert why.message_zh.startswith("建筑面积（万㎡）：86,000 万㎡ 超过一个事件的上限 100 万㎡")
    assert "（= 1,000,000 ㎡）" in why.message_zh and "请填 8.6" in why.message_zh
    assert "bound of 100 万㎡" in why.message_en and "write 8.6" in why.message_en
    assert "收到 '86000'" in why.message_zh and "860000000" not in why.message_zh
    assert why.rule == "建筑面积（万㎡） <= 100 万㎡"


def test_kilometres_typed_into_a_metre_column_are_refused_in_metres(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "管网.csv",
        [
            ["编号", "项目名称", "街道", "铺设日期", "管网长度（米）"],
            ["GW-1", "梧桐街供热管网", "梧桐", "2024-08-20", "1.6"],
            ["GW-2", "科学大道管网", "石佛", "2024-08-21", "60000"],
            ["GW-3", "长椿路管网", "石佛", "2024-08-22", "1,250"],
        ],
    )
    plan = plan_of(path, li.Options("heating.pipe_laid"))
    precise, large = plan.rejected
    assert (precise.reason, precise.value) == ("too_precise", "1.6")
    assert precise.message_zh.startswith("管网长度（米）：1.6 米 过于精确：本列（米）精确到 1 米")
    assert "若填的是 km，请写 1600（米）" in precise.message_zh
    assert "0.0016" not in precise.message_zh + precise.message_en
    assert (large.reason, large.value) == ("out_of_range", "60000")
    assert "上限 50,000 米（= 50 km）" in large.message_zh
    (event,) = events_of(plan)
    assert event.length_km == Decimal("1.25")  # type: ignore[attr-defined]


def test_a_column_without_a_unit_is_refused_in_the_fields_unit(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "l.csv",
        [HEADER[1:6], ["SF-1", "甲", "石佛", "2024-10-08", "6,500,000"]],
    )
    (why,) = plan_of(path, HEAT).rejected
    assert why.value == "6,500,000"
    assert "6,500,000 ㎡ 超过一个事件的上限 5,000,000 ㎡" in why.message_zh


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


# --- the project-milestone and level families -----------------------------------------------


def test_a_road_ledger_with_chinese_milestones_and_a_wrong_one(tmp_path: Path) -> None:
    """建设局's road ledger: one row per road and milestone, the milestone in Chinese (节点),
    the event type named as clerks name it (市政道路); a milestone roads do not go through
    (投用) is refused on that row naming the field and the allowed codes."""
    path = write_xlsx(
        tmp_path / "建设局2024道路台账.xlsx",
        [
            ["台账编号", "事件类型", "项目名称", "项目全称", "所属街道", "日期", "节点"],
            ["JS-01", "市政道路", "hongshan-road-lianhua-xinlong", "红杉路（莲花街—新龙路）",
             "枫杨办", datetime(2024, 4, 12), "开工建设"],
            ["JS-02", "道路项目", "长椿路", None, "石佛", datetime(2024, 3, 2), "立项"],
            ["JS-03", "市政道路", "科学大道西延", None, "梧桐街道", datetime(2024, 9, 1), "竣工"],
            ["JS-04", "市政道路", "瑞达路", None, "沟赵", datetime(2024, 6, 1), "投用"],
        ],
    )  # fmt: skip
    plan = plan_of(path, li.Options(department="construction"))
    events = events_of(plan)
    assert [(e.source_ref, e.model_dump()["milestone"]) for e in events] == [
        ("JS-01", "started"),
        ("JS-02", "approved"),
        ("JS-03", "completed"),
    ]
    assert events[0].measures() == {"construction.roads_started": Decimal(1)}
    assert events[0].model_dump()["project_name"] == "红杉路(莲花街—新龙路)"  # NFKC
    assert reasons(plan) == [(5, "节点", "invalid_field")]
    assert "approved" in plan.rejected[0].message_en


def test_a_rate_ledger_with_counts(tmp_path: Path) -> None:
    """The housing office's monthly move-back rate: households moved back over households
    entitled; the level comes out to 2 places, and a row whose counts cannot be is refused."""
    path = write_csv(
        tmp_path / "回迁率月报.csv",
        ["报送编号", "事件类型", "所属街道", "统计日期", "已回迁户数", "应回迁户数"],
        [
            ["HR-01", "回迁率", "高新区", "2024-01-31", "9,240", "10,000"],
            ["HR-02", "累计回迁率", "全区", "2024-02-29", "9310", "10000"],
            ["HR-03", "回迁率", "高新区", "2024-03-31", "10010", "10000"],
        ],
    )
    plan = plan_of(path, li.Options(department="housing"))
    levels = [e.measures() for e in events_of(plan)]
    assert levels == [
        {"housing.return_rate_pct": Decimal("92.40")},
        {"housing.return_rate_pct": Decimal("93.10")},
    ]
    assert reasons(plan) == [(4, "已回迁户数", "out_of_range")]

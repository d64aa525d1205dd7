"""Stage 3, cells, on its own: dates as clerks write them, Chinese enum values, district
names, thousands separators and units. No socket."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services import ledger_import as li
from tests.unit.ledger_import.support import (
    CST,
    events_of,
    plan_of,
    write_csv,
    write_xlsx,
)

# --- cells -----------------------------------------------------------------------------------


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

"""Write the sample ledgers (台账) in seeds/samples/, as department clerks keep them.

    .venv/bin/python seeds/samples/make_samples.py          # rewrite the files
    .venv/bin/python seeds/samples/make_samples.py --check  # exit 1 if a file differs

The output is byte-for-byte reproducible (the XLSX files get fixed timestamps), so the
committed files are exactly what this script writes; tests/unit/ledger_import/test_samples.py
checks that, and that each sample imports as seeds/samples/README.md says.
"""

from __future__ import annotations

import io
import json
import re
import sys
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

HERE = Path(__file__).resolve().parent
# Any fixed instant: what the workbooks say they were created and modified at.
FIXED = datetime(2024, 12, 31, 9, 0, 0)


def heating_rows() -> list[list[Any]]:
    """heating.area_connected: the 2024 heating season, one estate per row."""
    estates = [
        ("GR-2024-001", "西史赵安置区一期", "石佛街道", datetime(2024, 10, 8), 86_420.5),
        ("GR-2024-002", "西史赵安置区二期", "石佛街道", datetime(2024, 10, 9), 74_310.0),
        ("GR-2024-003", "沟赵安置区三期", "沟赵街道", datetime(2024, 10, 12), 128_900.75),
        ("GR-2024-004", "枫杨佳苑", "枫杨", datetime(2024, 10, 15), 45_600.0),
        ("GR-2024-005", "梧桐花园", "梧桐街道", datetime(2024, 10, 18), 38_250.25),
        ("GR-2024-006", "双桥新苑", "双桥街道", datetime(2024, 10, 21), 52_780.0),
        ("GR-2024-007", "石佛新城B区", "石佛街道", datetime(2024, 10, 25, 14, 30), 61_045.5),
        ("GR-2024-008", "沟赵人才公寓", "沟赵", datetime(2024, 10, 28), 23_400.0),
        ("GR-2024-009", "枫杨安置区四期", "枫杨街道", datetime(2024, 11, 2), 97_120.8),
        ("GR-2024-010", "梧桐安置区", "梧桐", datetime(2024, 11, 5), 44_980.0),
        ("GR-2024-011", "双桥安置区一期", "双桥街道", datetime(2024, 11, 8), 70_315.35),
        ("GR-2024-012", "长椿路学校片区", "石佛街道", datetime(2024, 11, 12), 18_600.0),
    ]
    return [
        [i, ref, project, district, day, area, datetime(2024, 11, 15)]
        for i, (ref, project, district, day, area) in enumerate(estates, start=1)
    ]


def _table(text: str) -> list[list[str]]:
    """Rows written as space-separated cells; "-" is an empty cell."""
    return [
        ["" if cell == "-" else cell for cell in line.split()] for line in text.strip().splitlines()
    ]


def housing_rows() -> list[list[Any]]:
    """Resettlement housing: starts and completions in 万㎡ (as the reports give them),
    and households moving back; one column set for all three event types."""
    rows = _table("""
        AZ-2024-01 新开工   西史赵安置区三期 石佛街道 2024/3/18  12.5  1420 -    -
        AZ-2024-02 新开工   枫杨安置区五期   枫杨街道 2024/4/2   9.86  1080 -    -
        AZ-2024-03 竣工交付 沟赵安置区二期   沟赵街道 2024/6/28  8.36  960  -    -
        AZ-2024-04 竣工交付 双桥安置区一期   双桥街道 2024/9/30  15.2  1730 -    -
        AZ-2024-05 回迁     沟赵安置区二期   沟赵街道 2024/8/16  -     -    820  2610
        AZ-2024-06 回迁     双桥安置区一期   双桥街道 2024/12/20 -     -    1205 3890
    """)
    # Numbers as number cells, as a clerk types them; empty cells stay empty.
    return [
        [*row[:5], *(float(c) if "." in c else int(c) if c else None for c in row[5:])]
        for row in rows
    ]


def parking_rows() -> list[list[str]]:
    return _table("""
        TC-2024-001 新建停车场 科学大道停车场   科学大道与长椿路 石佛街道 2024/5/10 临时 320
        TC-2024-002 新建停车场 梧桐街公园停车场 梧桐街公园       梧桐街道 2024/6/1  永久 180
        TC-2024-003 新增车位   -                莲花街沿线       枫杨街道 2024/6/15 临时 96
        TC-2024-004 新增车位   -                冬青街沿线       沟赵街道 2024/7/3  临时 64
        TC-2024-005 新建停车场 双桥医院停车场   双桥医院         双桥街道 2024/8/20 永久 410
        TC-2024-006 新增车位   -                石佛新城地下车库 石佛街道 2024/9/12 永久 1,250
    """)


def education_events() -> list[dict[str, Any]]:
    """JSONL as a school-information system exports it: English keys, clerk's values."""
    schools = [
        ("JY-2024-01", "枫杨街道", "高新区外国语实验小学", "小学", 2160),
        ("JY-2024-02", "石佛街道", "高新区第二初级中学", "初中", 1800),
        ("JY-2024-03", "梧桐街道", "梧桐幼儿园", "幼儿园", 360),
        ("JY-2024-04", "沟赵街道", "沟赵实验小学", "小学", 1620),
    ]
    out: list[dict[str, Any]] = []
    for ref, district, school, level, places in schools:
        out.append(
            {
                "event_type": "education.school_opened",
                "source_ref": f"{ref}-开学",
                "district": district,
                "occurred_at": "2024-09-01",
                "reported_at": "2024-09-02 10:00",
                "school_name": school,
                "level": level,
            }
        )
        out.append(
            {
                "event_type": "education.places_added",
                "source_ref": f"{ref}-学位",
                "district": district,
                "occurred_at": "2024-09-01",
                "reported_at": "2024-09-02 10:00",
                "school_name": school,
                "level": level,
                "places": places,
            }
        )
    # An expansion of an existing school, in codes rather than Chinese.
    out.append(
        {
            "event_type": "education.places_added",
            "source_ref": "JY-2024-05",
            "district": "shuangqiao",
            "occurred_at": "2024-09-01T08:00:00+08:00",
            "school_name": "双桥中学",
            "level": "junior_secondary",
            "places": 450,
        }
    )
    return out


def drainage_rows() -> list[list[Any]]:
    """No ledger reference: ids come from the file name and each row's content."""
    return [
        ["科学大道与长椿路口", "石佛街道", "2024年5月20日", 113.5312, 34.8126],
        ["莲花街与雪松路口", "枫杨街道", "2024年5月28日", 113.5521, 34.8043],
        ["冬青街下穿通道", "沟赵街道", "2024年6月5日", 113.5187, 34.8311],
        ["梧桐街与合欢街口", "梧桐街道", "2024年6月12日", 113.5706, 34.7962],
        ["双桥村内涝点", "双桥街道", "2024年6月20日", 113.4958, 34.8467],
    ]


def error_rows() -> list[list[str]]:
    """heating_2024_with_errors.csv: see README.md for the rejects each row must give."""
    return [
        ["HX-001", "西史赵安置区一期", "石佛街道", "2024-10-08", "86420.5"],
        ["HX-002", "枫杨佳苑", "枫杨街道", "2024/10/15", "45600"],
        ["HX-003", "火星小区", "火星街道", "2024-10-16", "1200"],
        ["HX-004", "沟赵人才公寓", "沟赵街道", "2024-02-30", "23400"],
        ["HX-005", "梧桐花园", "梧桐街道", "2024-10-18", "0"],
        ["HX-006", "双桥新苑", "双桥街道", "2024-10-21", "52780.555"],
        ["HX-007", "石佛新城B区", "石佛街道", "2024-10-25", "约61000"],
        ["HX-008", "全区合计", "石佛街道", "2024-11-30", "6500000"],
        ["HX-009", "长椿路学校片区", "石佛街道", "2099-11-12", "18600"],
        ["HX-010", "梧桐安置区", "梧桐街道", "2024-11-05", "44980"],
        ["HX-010", "梧桐安置区", "梧桐街道", "2024-11-05", "49480"],
        ["HX-001", "西史赵安置区一期", "石佛街道", "2024-10-08", "86420.5"],
        ["", "双桥安置区一期", "双桥街道", "2024-11-08", "70315.35"],
        ["HX-013", "沟赵安置区三期", "", "2024-10-12", "128900.75"],
        ["HX-014", "枫杨安置区四期", "枫杨街道", "2024年11月2日", "97,120.8"],
    ]


# --- writers -----------------------------------------------------------------------------


def _workbook(title: str, sheet: str, headers: Sequence[str], rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(list(headers))
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(row)
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, datetime):
                has_time = cell.value.hour or cell.value.minute
                cell.number_format = "yyyy-mm-dd hh:mm" if has_time else "yyyy-mm-dd"
    for letter in "ABCDEFGHI":
        ws.column_dimensions[letter].width = 16
    wb.properties.creator = "CityStream seeds/samples/make_samples.py"
    buf = io.BytesIO()
    wb.save(buf)
    return _reproducible_zip(buf.getvalue())


def _reproducible_zip(data: bytes) -> bytes:
    """openpyxl stamps the save time into docProps/core.xml and every zip entry."""
    stamp = FIXED.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*",
                    lambda m: m.group(1) + stamp.encode(),
                    body,
                )
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, body)
    return out.getvalue()


def _csv(headers: Sequence[str], rows: list[list[Any]], encoding: str) -> bytes:
    import csv

    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")  # as Excel writes it
    writer.writerow(headers)
    writer.writerows(rows)
    return buf.getvalue().encode(encoding)


def samples() -> dict[str, bytes]:
    heating_headers = _table("序号 台账编号 项目名称 所属街道 完成日期 面积（㎡） 上报日期")[0]
    housing_headers = _table(
        "台账编号 事件类型 项目名称 所属街道 日期 建筑面积（万㎡） 套数 户数 人数"
    )[0]
    parking_headers = _table(
        "台账编号 事件类型 停车场名称 项目名称 所属街道 开放日期 车位类型 车位数"
    )[0]
    return {
        "heating_2024.xlsx": _workbook(
            "郑州高新区2024年供热入网面积台账", "供热台账", heating_headers, heating_rows()
        ),
        "housing_2024.xlsx": _workbook(
            "2024年安置房建设及回迁台账", "安置房台账", housing_headers, housing_rows()
        ),
        # Excel's "CSV UTF-8" (with a BOM).
        "parking_2024.csv": _csv(parking_headers, parking_rows(), "utf-8-sig"),
        # Excel's plain "CSV" on Chinese Windows: GBK.
        "drainage_2024.csv": _csv(
            ["点位名称", "所属街道", "整治完成日期", "经度", "纬度"], drainage_rows(), "gbk"
        ),
        "education_2024.jsonl": "".join(
            json.dumps(e, ensure_ascii=False) + "\n" for e in education_events()
        ).encode(),
        "heating_2024_with_errors.csv": _csv(
            ["台账编号", "项目名称", "所属街道", "完成日期", "面积（㎡）"], error_rows(), "utf-8"
        ),
    }


def main(argv: Sequence[str]) -> int:
    check = "--check" in argv
    differ = []
    for name, content in samples().items():
        path = HERE / name
        if check:
            if not path.exists() or path.read_bytes() != content:
                differ.append(name)
        else:
            path.write_bytes(content)
            print(f"wrote {path.relative_to(HERE.parent.parent)}")
    if differ:
        print("differ from make_samples.py: " + ", ".join(differ))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

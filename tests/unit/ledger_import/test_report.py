"""The rejects file on its own: every rejected row with its cells, UTF-8 with BOM for
Excel, and a fixed rejects file imports like its ledger. No socket."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from click.testing import CliRunner

from services import ledger_import as li
from services.cli import main
from tests.unit.ledger_import.support import (
    HEAT_HEADERS,
    events_of,
    plan_of,
    write_csv,
)

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

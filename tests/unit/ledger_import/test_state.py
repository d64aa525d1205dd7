"""Stage 5, state, on its own: rows compared with a ledger view built by hand (what a
department's receipts would show). No socket."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.heating import CONNECTED_AREA_M2
from schemas.topics import BY_EVENT_TYPE
from schemas.validation import decode
from services import ledger_import as li
from services.ledger_import.state import Approval, compare, correction_ref
from services.receipts.view import HeldEvent, LedgerView
from tests.unit.ledger_import.support import HEAT, NOW, events_of, plan_of, write_rows

HEADER = ["台账编号", "项目名称", "所属街道", "完成日期", "入网面积（万㎡）"]
ROWS = [
    ["GR-1", "西史赵一期", "石佛办", "2024-11-02", "3.2"],
    ["GR-2", "沟赵二期", "沟赵办事处", "2024-11-03", "2.4"],
]


def _imported(tmp_path: Path, rows: list[list[str]] = ROWS) -> LedgerView:
    """The view after the rows were imported and stored as they are."""
    view = LedgerView()
    for event in events_of(plan_of(write_rows(tmp_path / "first.csv", [HEADER, *rows]), HEAT)):
        view.events[str(event.event_id)] = HeldEvent(orjson.loads(event.model_dump_json()))
    return view


def _again(
    tmp_path: Path, rows: list[list[str]], view: LedgerView, approval: Any = None
) -> li.Plan:
    plan = plan_of(write_rows(tmp_path / "again.csv", [HEADER, *rows]), HEAT)
    compare(plan, view, approval)
    return plan


def test_unchanged_rows_are_already_imported_and_new_ones_sent(tmp_path: Path) -> None:
    view = _imported(tmp_path)
    plan = _again(tmp_path, [*ROWS, ["GR-3", "枫杨四期", "枫杨", "2024-11-04", "4.1"]], view)
    assert [e.row for e in plan.with_status("unchanged")] == [2, 3]
    assert [e.source_ref for e in events_of(plan)] == ["GR-3"]
    assert plan.rejected == [] and plan.corrections == []


def test_a_report_date_added_later_is_not_a_change(tmp_path: Path) -> None:
    view = _imported(tmp_path)
    plan = plan_of(
        write_rows(
            tmp_path / "dated.csv",
            [[*HEADER, "上报日期"], *[[*row, "2024-12-01"] for row in ROWS]],
        ),
        HEAT,
    )
    compare(plan, view, None)
    assert len(plan.with_status("unchanged")) == 2 and plan.to_send() == []


def test_a_changed_amount_without_approval_is_refused_saying_old_and_new(tmp_path: Path) -> None:
    view = _imported(tmp_path)
    plan = _again(
        tmp_path, [ROWS[0], ["GR-2", "沟赵二期", "沟赵办事处", "2024-11-03", "2.56"]], view
    )
    (why,) = plan.rejected
    assert (why.row, why.column, why.value, why.reason) == (
        3,
        "入网面积（万㎡）",
        "2.56",
        "changed_since_import",
    )
    assert "2.4 万㎡ → 2.56 万㎡" in why.message_zh and "--approved-by" in why.message_zh
    assert "+0.16 万㎡" in why.message_en and "--reason" in why.message_en
    assert plan.to_send() == []


def test_with_approval_a_changed_amount_is_one_correction_of_the_difference(
    tmp_path: Path,
) -> None:
    view = _imported(tmp_path)
    original = view.events[next(iter(view.events))]
    approval = Approval("王科长", "实测面积复核")
    rows = [["GR-1", "西史赵一期", "石佛办", "2024-11-02", "3.35"], ROWS[1]]
    plan = _again(tmp_path, rows, view, approval)
    assert plan.rejected == []
    (sent,) = plan.to_send()
    correction = decode(BY_EVENT_TYPE[sent.event_type], sent.raw, now=NOW)
    assert correction.event_type_name == "heating.correction"
    assert str(correction.corrects) == original.event["event_id"]  # type: ignore[attr-defined]
    assert (correction.metric, correction.delta) == (CONNECTED_AREA_M2, Decimal("1500"))  # type: ignore[attr-defined]
    assert (correction.district, correction.project) == ("shifo", "西史赵一期")
    assert correction.occurred_at.isoformat() == original.event["occurred_at"]
    assert (correction.approved_by, correction.reason) == ("王科长", "实测面积复核")  # type: ignore[attr-defined]
    assert correction.source_ref == correction_ref("GR-1", 1, CONNECTED_AREA_M2, Decimal(33500))

    # The same corrected file again, once the correction is in the ledger: unchanged.
    held = view.events[original.event["event_id"]]
    held.corrected[CONNECTED_AREA_M2] = Decimal(1500)
    held.corrections = 1
    again = _again(tmp_path, rows, view, approval)
    assert again.to_send() == [] and len(again.with_status("unchanged")) == 2

    # And a second change makes the second correction, with a reference of its own.
    rows[0][4] = "3.3"
    third = _again(tmp_path, rows, view, approval)
    (sent,) = third.to_send()
    second = decode(BY_EVENT_TYPE[sent.event_type], sent.raw, now=NOW)
    assert second.delta == Decimal("-500")  # type: ignore[attr-defined]
    assert second.source_ref == correction_ref("GR-1", 2, CONNECTED_AREA_M2, Decimal(33000))


def test_the_corrected_file_gives_the_same_correction_every_time(tmp_path: Path) -> None:
    rows = [["GR-1", "西史赵一期", "石佛办", "2024-11-02", "3.35"], ROWS[1]]
    sent = []
    for _ in range(2):
        plan = _again(tmp_path, rows, _imported(tmp_path), Approval("王科长", "复核"))
        (entry,) = plan.to_send()
        sent.append(entry.raw)
    assert sent[0] == sent[1]  # same id, same content: the worker counts it once


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        (2, "枫杨办", "shifo → fengyang"),
        (3, "2024-11-05", "2024-11-02"),
        (1, "西史赵1期", "→ 西史赵1期"),
    ],
)
def test_what_a_correction_cannot_change_is_refused_with_what_to_do(
    tmp_path: Path, column: int, value: str, named: str
) -> None:
    view = _imported(tmp_path)
    row = ROWS[0][:]
    row[column] = value
    plan = _again(tmp_path, [row, ROWS[1]], view, Approval("王科长", "复核"))
    (why,) = plan.rejected
    assert why.reason == "changed_not_correctable" and why.column == HEADER[column]
    assert named in why.message_zh
    assert "citystream emit heating.correction corrects=" in why.message_en
    assert plan.to_send() == [] and plan.corrections == []


def test_approved_by_and_reason_go_together() -> None:
    with pytest.raises(li.LedgerError, match="--approved-by and --reason go together"):
        li.ImportRequest(Path("x.csv"), approved_by="王科长").approval()
    assert li.ImportRequest(Path("x.csv")).approval() is None

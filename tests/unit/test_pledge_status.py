"""Pledge progress rules (services/pledges/rules.py): schedule curves, gap in days, run-rate
projection, and every status threshold at its edge. No sockets."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest

from schemas.catalogue import Pledge
from schemas.districts import District
from services.pledges.rules import (
    AT_RISK_SHARE,
    BEHIND_GAP_DAYS,
    BEHIND_SHARE,
    EXPECTED_QUANTUM,
    Status,
    classify,
    evaluate,
    expected_cumulative,
    gap_in_days,
    items_done,
    metric_actual,
    projected_completion,
    reached_day,
    schedule_curve,
)
from streams.db.pledges import CorrectionRow, ItemEvent

START, DEADLINE = date(2024, 1, 1), date(2024, 12, 31)  # 2024 has 366 days
MID_YEAR = date(2024, 6, 30)
D = date


def make_pledge(schedule: dict[str, Any], target: int | str = 366, **changes: Any) -> Pledge:
    fields: dict[str, Any] = {
        "id": "2024-test-pledge",
        "title_zh": "测试承诺",
        "title_en": "Test pledge",
        "metric": "heating.connected_area_m2",
        "target": target,
        "unit": "m2",
        "target_basis": "defined",
        "definition_note": "a test",
        "start": START,
        "deadline": DEADLINE,
        "owner": "heating",
        "schedule": schedule,
        "schedule_reason": "a test",
        "source": {"file": "000_682ca8d40d72fb06.txt", "quote": "测试"},
    }
    fields.update(changes)
    return Pledge.model_validate(fields)


LINEAR = make_pledge({"kind": "linear"})
SPRING = make_pledge(
    {
        "kind": "seasonal",
        "season": "spring",
        "windows": [{"start": "2024-03-01", "end": "2024-05-31", "share": 1}],  # 92 days
    },
    target=92,
)
TWO_SEASONS = make_pledge(
    {
        "kind": "seasonal",
        "season": "two",
        "windows": [
            {"start": "2024-03-01", "end": "2024-03-10", "share": "0.25"},
            {"start": "2024-09-01", "end": "2024-09-30", "share": "0.75"},
        ],
    },
    target=120,
)
QUARTERS = make_pledge(
    {
        "kind": "milestones",
        "interpolation": "linear",
        "points": [
            {"date": "2024-03-31", "cumulative": 91},  # 91 days: 1 a day
            {"date": "2024-06-30", "cumulative": 273},  # 91 days: 2 a day
            {"date": "2024-12-31", "cumulative": 457},  # 184 days: 1 a day
        ],
    },
    target=457,
)
STEPS = make_pledge(
    {
        "kind": "milestones",
        "interpolation": "step",
        "points": [
            {"date": "2024-06-30", "cumulative": 10},
            {"date": "2024-12-31", "cumulative": 20},
        ],
    },
    target=20,
)


# ----------------------------------------------------------------------------- curves


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2023, 12, 31), 0),
        (D(2024, 1, 1), 1),
        (D(2024, 6, 30), 182),
        (D(2024, 12, 30), 365),
        (D(2024, 12, 31), 366),
        (D(2025, 6, 1), 366),
    ],
)
def test_linear_curve(day: date, expected: int) -> None:
    assert expected_cumulative(LINEAR, day) == expected


@pytest.mark.parametrize(
    ("pledge", "day", "expected"),
    [
        (SPRING, D(2024, 2, 29), 0),
        (SPRING, D(2024, 3, 1), 1),
        (SPRING, D(2024, 4, 30), 61),
        (SPRING, D(2024, 5, 31), 92),
        (SPRING, D(2024, 8, 1), 92),
        (TWO_SEASONS, D(2024, 3, 5), 15),  # 5/10 of 30
        (TWO_SEASONS, D(2024, 3, 10), 30),
        (TWO_SEASONS, D(2024, 8, 31), 30),  # flat between the windows
        (TWO_SEASONS, D(2024, 9, 10), 60),  # 30 + 10/30 of 90
        (TWO_SEASONS, D(2024, 9, 30), 120),
    ],
)
def test_seasonal_curve(pledge: Pledge, day: date, expected: int) -> None:
    assert expected_cumulative(pledge, day) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2024, 1, 1), 1),
        (D(2024, 3, 31), 91),
        (D(2024, 4, 1), 93),
        (D(2024, 6, 30), 273),
        (D(2024, 7, 1), 274),
        (D(2024, 12, 31), 457),
    ],
)
def test_milestone_curve_interpolates_between_points(day: date, expected: int) -> None:
    assert expected_cumulative(QUARTERS, day) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2024, 1, 1), 0),
        (D(2024, 6, 29), 0),
        (D(2024, 6, 30), 10),
        (D(2024, 12, 30), 10),
        (D(2024, 12, 31), 20),
        (D(2025, 1, 1), 20),
    ],
)
def test_step_curve_expects_nothing_until_each_date(day: date, expected: int) -> None:
    assert expected_cumulative(STEPS, day) == expected


def test_curve_is_rounded_to_the_stored_precision() -> None:
    one_school = make_pledge({"kind": "linear"}, target=1)
    assert expected_cumulative(one_school, D(2024, 1, 1)) == Decimal("0.0027")  # 1/366
    assert expected_cumulative(one_school, D(2024, 1, 1)).as_tuple().exponent == -4
    assert Decimal("0.0001") == EXPECTED_QUANTUM


@pytest.mark.parametrize("pledge", [LINEAR, SPRING, TWO_SEASONS, QUARTERS, STEPS])
def test_curve_covers_start_to_deadline_and_never_falls(pledge: Pledge) -> None:
    curve = schedule_curve(pledge)
    assert len(curve) == 366
    assert curve[0][0] == START and curve[-1] == (DEADLINE, pledge.target)
    values = [value for _, value in curve]
    assert values == sorted(values)
    assert all(value == expected_cumulative(pledge, day) for day, value in curve)


# ---------------------------------------------------------------------------- gap days


def _gap(pledge: Pledge, actual: Decimal | int, on: date) -> int:
    return gap_in_days(schedule_curve(pledge), Decimal(actual), on=on)


def test_gap_days_on_schedule_is_zero() -> None:
    assert _gap(LINEAR, 182, D(2024, 6, 30)) == 0


def test_gap_days_behind_and_ahead() -> None:
    on = D(2024, 6, 30)
    assert _gap(LINEAR, 152, on) == -30  # what the schedule expected on 31 May
    assert _gap(LINEAR, 192, on) == 10
    # Anything short of a day's amount is the day before: the actual does not cover it.
    assert _gap(LINEAR, Decimal("181.9999"), on) == -1


def test_gap_days_without_progress_counts_from_the_day_before_start() -> None:
    assert reached_day(schedule_curve(LINEAR), Decimal(0), on=D(2024, 1, 31)) == D(2023, 12, 31)
    assert _gap(LINEAR, 0, D(2024, 1, 31)) == -31


def test_gap_days_where_nothing_is_due_yet_are_the_days_until_it_is() -> None:
    # The spring window opens on 1 March: with nothing done, 29 Feb is still covered.
    assert _gap(SPRING, 0, D(2024, 2, 1)) == 28
    assert _gap(STEPS, 0, D(2024, 6, 1)) == 28  # 10 due on 30 June
    assert _gap(STEPS, 10, D(2024, 7, 1)) == 182  # covered until 30 Dec


def test_gap_days_once_the_target_is_reached() -> None:
    assert _gap(LINEAR, 366, D(2024, 6, 30)) == (DEADLINE - D(2024, 6, 30)).days
    assert _gap(LINEAR, 400, D(2025, 3, 1)) == 0  # covered up to today, past the deadline
    assert _gap(LINEAR, 300, D(2025, 1, 31)) < -30


def test_negative_actual_is_behind_from_the_start() -> None:
    assert _gap(LINEAR, -5, D(2024, 1, 10)) == -10


# ---------------------------------------------------------------------------- projection


def _projected(actual: Decimal | int | str, on: date, target: int = 366) -> date | None:
    return projected_completion(start=START, target=Decimal(target), actual=Decimal(actual), on=on)


def test_projection_at_the_scheduled_pace_lands_on_the_deadline() -> None:
    assert _projected(10, D(2024, 1, 10)) == DEADLINE


def test_projection_rounds_up_to_whole_days_exactly() -> None:
    # 100 in 10 days at 25: exactly 40 days; at 24: 41.67 → 42 days.
    assert _projected(25, D(2024, 1, 10), target=100) == D(2024, 2, 9)
    assert _projected(24, D(2024, 1, 10), target=100) == D(2024, 2, 11)


def test_projection_without_progress_is_none() -> None:
    assert _projected(0, D(2024, 6, 1)) is None
    assert _projected(-1, D(2024, 6, 1)) is None
    assert _projected(5, D(2023, 12, 1)) is None  # before start


def test_projection_when_already_achieved_is_in_the_past() -> None:
    projected = _projected(732, D(2024, 6, 30))  # twice the target
    assert projected is not None and projected <= D(2024, 6, 30)


def test_projection_of_a_crawl_is_capped() -> None:
    assert _projected("0.0001", D(2024, 1, 1), target=10**9) == date(9999, 12, 31)


# ---------------------------------------------------------------------------- status


def _status(
    actual: Decimal | int | str | None,
    *,
    expected: Decimal | int | str = 100,
    target: int = 200,
    gap_days: int | None = 0,
    projected: date | None = DEADLINE,
    on: date = MID_YEAR,
    measurable: bool = True,
) -> Status:
    return classify(
        measurable=measurable,
        actual=None if actual is None else Decimal(actual),
        expected=Decimal(expected),
        target=Decimal(target),
        gap_days=gap_days,
        projected=projected,
        deadline=DEADLINE,
        on=on,
    )


def test_thresholds_are_the_documented_ones() -> None:
    assert BEHIND_GAP_DAYS == -30
    assert Decimal("0.80") == BEHIND_SHARE
    assert Decimal("0.95") == AT_RISK_SHARE


def test_sql_uses_the_same_thresholds() -> None:
    text = resources.files("streams.db.migrations").joinpath("0004_pledges.sql").read_text()
    body = text[text.index("CREATE FUNCTION pledge_status") :]
    body = body[: body.index("$$;")]
    assert f"gap_days <= {BEHIND_GAP_DAYS} OR actual < expected * {BEHIND_SHARE}" in body
    assert f"projected > deadline OR actual < expected * {AT_RISK_SHARE}" in body
    assert re.findall(r"'([a-z_]+)'", body) == [s.value for s in _ORDER]


_ORDER = [
    Status.NOT_MEASURABLE,
    Status.ACHIEVED,
    Status.OVERDUE,
    Status.BEHIND,
    Status.AT_RISK,
    Status.ON_TRACK,
]


def test_on_track() -> None:
    assert _status(100) is Status.ON_TRACK
    assert _status(0, expected=0, projected=None) is Status.ON_TRACK  # nothing due yet


def test_achieved_exactly_at_the_target() -> None:
    assert _status(200) is Status.ACHIEVED
    assert _status("199.999") is not Status.ACHIEVED
    # Achieved wins over overdue: a late completion is still a completion.
    assert _status(200, on=D(2025, 1, 5), gap_days=0) is Status.ACHIEVED


def test_overdue_from_the_day_after_the_deadline() -> None:
    assert _status(100, on=DEADLINE, expected=100) is Status.ON_TRACK
    assert _status(190, on=DEADLINE + timedelta(days=1), expected=200) is Status.OVERDUE


def test_behind_at_exactly_minus_30_days() -> None:
    assert _status(100, gap_days=-30) is Status.BEHIND
    assert _status(100, gap_days=-29) is Status.ON_TRACK


def test_behind_below_80_percent_of_expected() -> None:
    assert _status("79.999", expected=100) is Status.BEHIND
    assert _status(80, expected=100) is Status.AT_RISK  # exactly 80% is not behind


def test_at_risk_below_95_percent_of_expected() -> None:
    assert _status("94.999", expected=100) is Status.AT_RISK
    assert _status(95, expected=100) is Status.ON_TRACK  # exactly 95% is fine


def test_at_risk_when_projected_after_the_deadline() -> None:
    assert _status(100, projected=DEADLINE + timedelta(days=1)) is Status.AT_RISK
    assert _status(100, projected=DEADLINE) is Status.ON_TRACK
    assert _status(100, projected=None) is Status.ON_TRACK


def test_not_measurable_wins() -> None:
    assert _status(500, measurable=False) is Status.NOT_MEASURABLE
    assert _status(None) is Status.NOT_MEASURABLE


def test_evaluate_puts_it_together() -> None:
    on = D(2024, 6, 30)  # linear: 182 of 366 expected
    row = evaluate(LINEAR, on=on, actual=Decimal(182))
    assert (row.expected_to_date, row.gap_units, row.gap_days) == (Decimal(182), Decimal(0), 0)
    assert row.projected_completion == DEADLINE
    assert row.status is Status.ON_TRACK
    # One unit short: a day behind, and the run rate now finishes three days late.
    row = evaluate(LINEAR, on=on, actual=Decimal(181))
    assert (row.gap_units, row.gap_days) == (Decimal(-1), -1)
    assert row.projected_completion == D(2025, 1, 3)
    assert row.status is Status.AT_RISK
    row = evaluate(LINEAR, on=on, actual=Decimal(140))
    assert row.status is Status.BEHIND and row.gap_days == -42


def test_evaluate_unmeasurable_pledge_has_no_actual() -> None:
    pledge = make_pledge({"kind": "linear"}, measurable=False, measurable_reason="a rate")
    row = evaluate(pledge, on=D(2024, 6, 30), actual=Decimal(999))
    assert row.expected_to_date == 182
    assert (row.actual_to_date, row.gap_units, row.gap_days, row.projected_completion) == (
        None,
        None,
        None,
        None,
    )
    assert row.status is Status.NOT_MEASURABLE


# ---------------------------------------------------------------------------- actuals


def test_metric_actual_counts_start_to_day_and_the_subdistrict() -> None:
    rows = [
        (D(2023, 12, 31), "shifo", Decimal(1000)),  # before start
        (D(2024, 1, 1), "shifo", Decimal("10.5")),
        (D(2024, 2, 1), "wutong", Decimal(20)),
        (D(2024, 2, 1), "zone", Decimal(3)),
        (D(2024, 2, 2), "shifo", Decimal(-1)),  # a correction
        (D(2024, 3, 1), "shifo", Decimal(100)),  # after the day
    ]
    assert metric_actual(rows, LINEAR, on=D(2024, 2, 2)) == Decimal("32.5")
    scoped = make_pledge({"kind": "linear"}, district="shifo")
    assert metric_actual(rows, scoped, on=D(2024, 2, 2)) == Decimal("9.5")


def test_a_pledge_for_the_whole_zone_names_no_district() -> None:
    with pytest.raises(ValueError, match="omit it"):
        make_pledge({"kind": "linear"}, district=District.ZONE)


def _event(project: str, when: datetime, district: str = "shifo", n: int = 1) -> ItemEvent:
    measures = {"drainage.points_repaired": Decimal(n)}
    return ItemEvent(uuid.uuid4(), project, district, when, measures)


def test_items_count_once_each_net_of_corrections_by_local_day() -> None:
    pledge = make_pledge(
        {"kind": "linear"},
        target=2,
        metric="drainage.points_repaired",
        unit="points",
        owner="drainage",
        target_basis="counted",
        progress_from="items",
        items=[
            {"code": "kexue-avenue", "name_zh": "科学大道", "name_en": "Kexue Avenue"},
            {"code": "west-ring", "name_zh": "西三环", "name_en": "West Ring"},
        ],
    )
    kexue = _event("kexue-avenue", datetime(2024, 4, 10, 2, tzinfo=UTC))
    kexue_again = _event("kexue-avenue", datetime(2024, 4, 11, 2, tzinfo=UTC))
    # 20:00 UTC on 19 May is 04:00 on 20 May in Asia/Shanghai.
    west = _event("west-ring", datetime(2024, 5, 19, 20, tzinfo=UTC), district="wutong")
    other = _event("elsewhere", datetime(2024, 4, 1, tzinfo=UTC))
    early = _event("west-ring", datetime(2023, 12, 20, tzinfo=UTC))  # before start
    undo = CorrectionRow(
        west.event_id, datetime(2024, 6, 5, tzinfo=UTC), {"drainage.points_repaired": Decimal(-1)}
    )
    originals = [kexue, kexue_again, west, other, early]

    def done(on: date, target: Pledge = pledge) -> int:
        return items_done(target, originals, [undo], on=on)

    assert done(D(2024, 4, 9)) == 0
    assert done(D(2024, 5, 19)) == 1  # kexue counted once, though reported twice
    assert done(D(2024, 5, 20)) == 2
    assert done(D(2024, 6, 5)) == 1  # the west-ring report was corrected away
    scoped = pledge.model_copy(update={"district": District.WUTONG})
    assert done(D(2024, 5, 20), scoped) == 1

"""Milestones and levels, the two shapes the project-based families share: what raw records
decode to or are refused with (reason, field, both languages), and how a level pledge reads
its reports — the latest measurement, late reports, corrections, the trend's projection."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

import orjson
import pytest

from schemas.envelope import Envelope
from schemas.indicators import percent
from schemas.milestones import MILESTONES, ProjectMilestone
from schemas.rejections import Rejection
from schemas.seeds import load_catalogue
from schemas.topics import BY_EVENT_TYPE
from schemas.validation import decode
from services.ledger_import.cells import MILESTONE_NAMES
from services.pledges.rules import (
    Status,
    evaluate,
    level_now,
    level_projection,
    level_readings,
)
from streams.db.pledges import CorrectionRow, ItemEvent
from streams.rollup import rollup
from tests.unit.bad_inputs import NOW, event

CST = timezone(timedelta(hours=8))
RETURN = "2024-housing-return-before-national-day"
INCLUSIVE = "2024-education-kindergarten-inclusive-rate"


def judged(event_type: str, **changes: Any) -> Envelope | Rejection:
    return decode(BY_EVENT_TYPE[event_type], orjson.dumps(event(event_type, **changes)), now=NOW)


def refused(event_type: str, **changes: Any) -> Rejection:
    outcome = judged(event_type, **changes)
    assert isinstance(outcome, Rejection), outcome
    return outcome


# --- milestones ---------------------------------------------------------------------------


def test_a_milestone_its_event_type_does_not_go_through_is_refused_naming_the_choices() -> None:
    rejection = refused("construction.venue_milestone", milestone="approved")
    assert (rejection.reason, rejection.field) == ("invalid_field", "milestone")
    assert "started" in rejection.message and "opened" in rejection.message


def test_a_milestone_needs_its_project() -> None:
    rejection = refused("renewal.project_milestone", project=None)
    assert rejection.field == "project"
    blank = refused("health.building_milestone", project="\u3000 \u200b")
    assert (blank.reason, blank.field) == ("empty_text", "project")


def test_a_single_milestone_type_fills_it_in() -> None:
    station = judged("medical_insurance.station_opened")
    assert isinstance(station, ProjectMilestone)
    assert station.measures() == {"medical_insurance.stations_opened": Decimal(1)}


def test_every_milestone_name_a_clerk_writes_means_one_code() -> None:
    assert set(MILESTONE_NAMES.values()) == set(MILESTONES)
    assert MILESTONE_NAMES["开工建设"] == "started"
    assert MILESTONE_NAMES["开诊"] == "opened"
    assert MILESTONE_NAMES["方案批复"] == "plan_approved"


def test_a_subclass_counting_an_unknown_milestone_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="unknown milestones"):

        class Odd(ProjectMilestone):
            counts: ClassVar[Mapping[str, str]] = {"demolished": "x.y"}


# --- level reports ------------------------------------------------------------------------


def test_a_level_from_counts_is_rounded_to_two_places() -> None:
    report = judged("housing.return_rate_reported", numerator=2, denominator=3)
    assert isinstance(report, Envelope)
    assert report.measures() == {"housing.return_rate_pct": Decimal("66.67")}
    assert percent(1, 8) == Decimal("12.50")


def test_a_level_that_disagrees_with_its_counts_is_refused_on_level_pct() -> None:
    rejection = refused("education.inclusive_rate_reported", level_pct="95.00")
    assert (rejection.reason, rejection.field) == ("out_of_range", "level_pct")
    assert "92.20" in rejection.message


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({"denominator": None}, "missing_field", "denominator"),
        ({"numerator": None}, "missing_field", "numerator"),
        ({"numerator": None, "denominator": None}, "missing_field", "level_pct"),
        ({"numerator": 12181, "denominator": 12180}, "out_of_range", "numerator"),
        ({"denominator": 0}, "out_of_range", "denominator"),
        ({"numerator": None, "denominator": None, "level_pct": "100.01"}, "out_of_range", None),
        ({"numerator": None, "denominator": None, "level_pct": "93.125"}, "too_precise", None),
        ({"numerator": True}, "invalid_field", "numerator"),
    ],
)
def test_an_impossible_level_report_is_refused_naming_the_field(
    changes: dict[str, Any], reason: str, field: str | None
) -> None:
    rejection = refused("education.inclusive_rate_reported", **changes)
    assert rejection.reason == reason, rejection.message
    assert rejection.field == (field or "level_pct")
    assert rejection.message_zh and rejection.message_en


def test_levels_never_enter_the_rollups() -> None:
    when = datetime(2024, 3, 31, 12, tzinfo=CST)
    totals = rollup(
        [
            (when, "zone", {"housing.return_rate_pct": Decimal("93.1")}),
            (when, "zone", {"housing.returned_households": Decimal(12)}),
        ]
    )
    assert [key[2] for key in totals] == ["housing.returned_households"]


# --- a level pledge over a year -----------------------------------------------------------


def report(day: date, level: str, *, reported: date | None = None) -> ItemEvent:
    occurred = datetime.combine(day, datetime.min.time(), tzinfo=CST) + timedelta(hours=17)
    sent = datetime.combine(reported or day, datetime.min.time(), tzinfo=CST) + timedelta(hours=18)
    return ItemEvent(
        uuid.uuid4(), "", "zone", occurred, {"housing.return_rate_pct": Decimal(level)}, sent
    )


def correction(of: ItemEvent, day: date, delta: str) -> CorrectionRow:
    occurred = datetime.combine(day, datetime.min.time(), tzinfo=CST) + timedelta(hours=10)
    return CorrectionRow(of.event_id, occurred, {"housing.return_rate_pct": Decimal(delta)})


def test_a_level_pledge_across_a_year_of_reports() -> None:
    pledge = load_catalogue().pledge(RETURN)
    jan = report(date(2024, 1, 31), "92.40")
    feb = report(date(2024, 2, 29), "93.10")
    mar = report(date(2024, 3, 31), "93.80")
    # Measured on 30 April but sent on 20 May, after the May report: it still counts for
    # the days from 30 April, and never replaces the newer measurement.
    apr = report(date(2024, 4, 30), "94.70", reported=date(2024, 5, 20))
    may = report(date(2024, 5, 31), "95.30")
    # Two reports of the same moment: the one sent later counts.
    may_again = report(date(2024, 5, 31), "95.60", reported=date(2024, 6, 2))
    reports = [may_again, feb, jan, apr, mar, may]
    # The March report is corrected in April: 1.3 points too high.
    fix = correction(mar, date(2024, 4, 10), "-1.30")

    def level(on: date) -> Decimal:
        return level_now(level_readings(pledge, reports, [fix], on=on))[0]

    assert level(date(2024, 1, 30)) == 0
    assert level(date(2024, 1, 31)) == Decimal("92.40")
    assert level(date(2024, 4, 9)) == Decimal("93.80")
    assert level(date(2024, 4, 10)) == Decimal("92.50")  # the correction applies from its day
    assert level(date(2024, 4, 30)) == Decimal("94.70")  # the late report, from its own day
    assert level(date(2024, 5, 31)) == Decimal("95.60")

    readings = level_readings(pledge, reports, [fix], on=date(2024, 8, 31))
    actual, trend = level_now(readings)
    assert trend == ((date(2024, 1, 31), Decimal("92.40")), (date(2024, 5, 31), Decimal("95.60")))
    # 3.2 points in 121 days; 4.4 more need ceil(4.4 × 121 / 3.2) = 167 days: 14 November,
    # after the 30 September deadline, so the pledge is at risk although nothing is due yet.
    assert level_projection(trend, pledge.target) == date(2024, 11, 14)
    progress = evaluate(pledge, on=date(2024, 8, 31), actual=actual, trend=trend)
    assert progress.status is Status.AT_RISK
    # Until the deadline the pledge is expected to hold its baseline (92%, end of 2022).
    assert progress.expected_to_date == 92
    assert progress.gap_units == Decimal("3.60")
    after = evaluate(pledge, on=date(2024, 10, 1), actual=actual, trend=trend)
    assert after.status is Status.OVERDUE
    done = report(date(2024, 9, 28), "100.00")
    final = level_now(level_readings(pledge, [*reports, done], [fix], on=date(2024, 9, 30)))
    assert evaluate(pledge, on=date(2024, 9, 30), actual=final[0], trend=final[1]).status is (
        Status.ACHIEVED
    )


def test_a_level_without_a_rise_has_no_projection() -> None:
    pledge = load_catalogue().pledge(INCLUSIVE)
    flat = ((date(2024, 1, 31), Decimal("91.0")), (date(2024, 6, 30), Decimal("90.5")))
    assert level_projection(flat, pledge.target) is None
    assert level_projection(None, pledge.target) is None
    one = ((date(2024, 3, 31), Decimal("91.0")), (date(2024, 3, 31), Decimal("91.0")))
    assert level_projection(one, pledge.target) is None
    progress = evaluate(pledge, on=date(2024, 7, 1), actual=Decimal("90.5"), trend=flat)
    assert progress.projected_completion is None
    assert progress.status is Status.ON_TRACK  # nothing is due before 31 December

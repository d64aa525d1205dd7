"""The pledge report's pure parts: number and date formatting, chart geometry, and the page
itself rendered from the real catalogue with made-up progress — self-contained, every
pledge present with its charted series, 中文 before English."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.catalogue import Catalogue
from schemas.seeds import load_catalogue
from services.pledges.chart import (
    ChartData,
    Frame,
    chart_frame,
    chart_svg,
    month_ticks,
    nice_ticks,
    step_points,
)
from services.pledges.formats import format_exact, format_gap_days, format_quantity, plain_number
from services.pledges.report import PledgeView, render
from services.pledges.rules import STATUS_LABELS, Status, evaluate, schedule_curve, selected

ON = date(2024, 8, 31)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


# --------------------------------------------------------------------------- what a page holds


class ReportDom(HTMLParser):
    """Pledge sections of a report page (raw or as chromium dumped it): for each section id,
    its ``data-series`` polylines as lists of (x, y), and the text in document order."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, dict[str, list[tuple[float, float]]]] = {}
        self.section_text: dict[str, list[str]] = {}
        self.viewboxes: dict[str, tuple[float, ...]] = {}
        self.statuses: dict[str, str] = {}
        self.references: list[str] = []  # every src/href/xlink:href value
        self.tags: set[str] = set()
        self._current: str | None = None
        self._depth = 0
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        attr = {k: v or "" for k, v in attrs}
        self.references += [v for k, v in attr.items() if k in {"src", "href", "xlink:href"}]
        if tag == "section" and "pledge" in attr.get("class", "").split():
            self._current = attr["id"]
            assert attr.get("data-pledge-id") == self._current
            self.sections[self._current] = {}
            self.statuses[self._current] = attr.get("data-status", "")
            self.section_text[self._current] = []
            self._depth = 0
        if self._current is None:
            return
        if tag == "section":
            self._depth += 1
        if tag == "svg" and "chart" in attr.get("class", "").split():
            self.viewboxes[self._current] = tuple(float(v) for v in attr["viewbox"].split())
        if tag == "polyline" and "data-series" in attr:
            points = [tuple(float(n) for n in p.split(",")) for p in attr["points"].split()]
            self.sections[self._current][attr["data-series"]] = [(x, y) for x, y in points]

    def handle_endtag(self, tag: str) -> None:
        if self._current is not None and tag == "section":
            self._depth -= 1
            if self._depth == 0:
                self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None and data.strip():
            self.section_text[self._current].append(data.strip())


EXTERNAL = re.compile(
    r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(|<script|<link|<img|<iframe"
)


def assert_self_contained(html: str) -> None:
    found = EXTERNAL.findall(html)
    assert not found, f"the page refers to outside resources: {found[:5]}"


def assert_every_pledge_charted(dom: ReportDom, views: list[PledgeView]) -> None:
    """Each pledge's section exists, and its chart holds the schedule and, when the pledge
    is measurable, the actual series, inside the chart's view box."""
    assert list(dom.sections) == [view.pledge.id for view in views]
    for view in views:
        series = dom.sections[view.pledge.id]
        wanted = {"schedule", "actual"} if view.pledge.measurable else {"schedule"}
        assert set(series) == wanted, view.pledge.id
        _, _, width, height = dom.viewboxes[view.pledge.id]
        for name, points in series.items():
            assert len(points) >= 2, (view.pledge.id, name)
            assert all(0 <= x <= width and 0 <= y <= height for x, y in points)
            assert points[-1][0] > points[0][0], (view.pledge.id, name)  # spans time


# --------------------------------------------------------------------------- formatting


def test_amounts_are_shown_in_the_units_readers_use(catalogue: Catalogue) -> None:
    area = catalogue.metric("housing.completed_area_m2")
    places = catalogue.metric("education.school_places")
    households = catalogue.metric("housing.returned_households")
    pipe = catalogue.metric("heating.pipe_km")
    rate = catalogue.metric("housing.return_rate_pct")
    assert format_quantity(Decimal(759000), area) == "75.9万㎡"
    assert format_quantity(Decimal("570512.5"), area) == "57.05万㎡"
    assert format_quantity(Decimal(11112), area, sign=True) == "+1.11万㎡"
    assert format_quantity(Decimal(2160), places) == "2,160个"
    assert format_quantity(Decimal("-2092.5"), places, sign=True) == "-2,092.5个"
    assert format_quantity(Decimal(820), households) == "820户"
    assert format_quantity(Decimal(11), pipe) == "11公里"
    assert format_quantity(Decimal(93), rate) == "93%"
    assert format_quantity(None, area) == "—"
    assert format_quantity(Decimal("-0.001"), places, sign=True) == "0个"  # never "-0"
    # Exact figures keep every decimal, in base units.
    assert format_exact(Decimal(2562900), area) == "2,562,900㎡"
    assert format_exact(Decimal("1200.50"), area) == "1,200.5㎡"
    assert format_exact(Decimal("-0.25"), area, sign=True) == "-0.25㎡"
    assert format_exact(Decimal(12620), catalogue.metric("parking.temporary_spaces")) == "12,620个"
    assert plain_number(Decimal("1234567.891")) == "1,234,567.89"
    assert plain_number(Decimal("0.005")) == "0.01"  # half up, as people round


def test_gap_in_days_says_behind_or_ahead() -> None:
    assert format_gap_days(-45) == ("落后 45 天", "45 days behind")
    assert format_gap_days(122) == ("超前 122 天", "122 days ahead")
    assert format_gap_days(0) == ("0 天", "on schedule")
    assert format_gap_days(None) == ("—", "")


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    ("top", "integer", "ticks"),
    [
        (Decimal("75.9"), False, [0, 20, 40, 60, 80]),
        (Decimal(142), False, [0, 50, 100, 150]),
        (Decimal(2160), True, [0, 500, 1000, 1500, 2000, 2500]),
        (Decimal(100), False, [0, 20, 40, 60, 80, 100]),
        (Decimal(2), True, [0, 1, 2]),
        (Decimal(1), True, [0, 1]),
        (Decimal(6), True, [0, 2, 4, 6]),
        (
            Decimal("0.9"),
            False,
            [0, Decimal("0.2"), Decimal("0.4"), Decimal("0.6"), Decimal("0.8"), 1],
        ),
        (Decimal("2.4"), True, [0, 1, 2, 3]),
        (Decimal(12), True, [0, 5, 10, 15]),  # 2.5 is no step for counts
    ],
)
def test_round_ticks(top: Decimal, integer: bool, ticks: list[Decimal]) -> None:
    assert list(nice_ticks(top, integer=integer)) == [Decimal(t) for t in ticks]


@given(
    top=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**9), places=2),
    integer=st.booleans(),
)
def test_ticks_cover_the_top_in_at_most_five_equal_steps(top: Decimal, integer: bool) -> None:
    ticks = nice_ticks(top, integer=integer)
    assert ticks[0] == 0 and ticks[-1] >= top
    steps = {b - a for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1 and 1 <= len(ticks) - 1 <= 5
    step = steps.pop()
    assert step > 0
    if integer:
        assert step == step.to_integral_value()
    assert step.normalize().as_tuple().digits in {(1,), (2,), (2, 5), (5,)}  # round steps


def test_month_ticks_read_like_a_calendar() -> None:
    year = month_ticks(date(2024, 1, 1), date(2024, 12, 31))
    assert [label for _, label, _ in year] == [f"{m}月" for m in range(1, 13)]
    assert [y for _, _, y in year] == ["2024年"] + [None] * 11
    assert year[0][0] == date(2024, 1, 1) and year[-1][0] == date(2024, 12, 1)

    across = month_ticks(date(2024, 3, 15), date(2025, 2, 10))
    assert across[0] == (date(2024, 4, 1), "4月", "2024年")
    assert (date(2025, 1, 1), "1月", "2025年") in across
    assert across[-1][0] == date(2025, 2, 1)

    long = month_ticks(date(2024, 1, 1), date(2026, 11, 30))
    assert {day.month for day, _, _ in long} == {1, 4, 7, 10}  # quarterly past 14 months


def test_frame_maps_days_and_amounts_onto_the_plot() -> None:
    frame = Frame(first=date(2024, 1, 1), last=date(2024, 12, 31), top=Decimal(80))
    assert frame.x(date(2024, 1, 1)) == frame.left
    assert frame.x(date(2024, 12, 31)) == frame.plot_right
    middle = frame.x(date(2024, 1, 1) + timedelta(days=183))
    assert middle == pytest.approx(frame.left + (frame.plot_right - frame.left) * 183 / 365)
    assert frame.x(date(2023, 6, 1)) == frame.left  # outside the range: on the edge
    assert frame.y(Decimal(0)) == frame.plot_bottom
    assert frame.y(Decimal(80)) == frame.top_margin
    assert frame.y(Decimal(20)) == pytest.approx(
        frame.plot_bottom - (frame.plot_bottom - frame.top_margin) / 4
    )
    assert frame.y(Decimal(-5)) == frame.plot_bottom


def test_a_cumulative_series_is_drawn_as_steps() -> None:
    d = date(2024, 3, 1)
    series = ((d, Decimal(0)), (d + timedelta(4), Decimal(2)), (d + timedelta(9), Decimal(2)))
    assert step_points(series, last=d + timedelta(30)) == [
        (d, Decimal(0)),
        (d + timedelta(4), Decimal(0)),
        (d + timedelta(4), Decimal(2)),
        (d + timedelta(9), Decimal(2)),
    ]
    # Cut at the chart's edge, holding the value there.
    assert step_points(series, last=d + timedelta(6)) == [
        (d, Decimal(0)),
        (d + timedelta(4), Decimal(0)),
        (d + timedelta(4), Decimal(2)),
        (d + timedelta(6), Decimal(2)),
    ]


def _housing_chart(catalogue: Catalogue, *, on: date = ON) -> ChartData:
    pledge = catalogue.pledge("2024-housing-completed-area")
    return ChartData(
        pledge_id=pledge.id,
        start=pledge.start,
        deadline=pledge.deadline,
        on=on,
        target=pledge.target,
        expected_on=pledge.expected_by(on),
        schedule=schedule_curve(pledge),
        actual=(
            (pledge.start, Decimal(0)),
            (date(2024, 3, 10), Decimal(120000)),
            (date(2024, 7, 2), Decimal(570500)),
            (on, Decimal(570500)),
        ),
        scale=Decimal(10000),
        unit="万㎡",
        integer=False,
    )


def test_the_chart_plots_both_series_where_the_frame_says(catalogue: Catalogue) -> None:
    data = _housing_chart(catalogue)
    frame, ticks = chart_frame(data)
    assert frame.top == Decimal(80) and ticks[-1] == 80  # 75.9万㎡ target, 80 on top
    dom = ReportDom(
        f'<section class="pledge" id="x" data-pledge-id="x">{chart_svg(data)}</section>'
    )
    series = dom.sections["x"]
    schedule, actual = series["schedule"], series["actual"]
    assert len(schedule) == len(data.schedule)  # one point per day of the schedule
    assert schedule[0][0] == frame.left and schedule[-1] == (
        frame.plot_right,
        pytest.approx(frame.y(Decimal("75.9")), abs=0.05),
    )
    # Steps: flat at 0 until 10 March, then up to 12万㎡, ..., ending at the status day.
    assert actual[0] == (frame.left, frame.plot_bottom)
    march = frame.x(date(2024, 3, 10))
    assert actual[1] == (pytest.approx(march, abs=0.05), frame.plot_bottom)
    assert actual[2] == (
        pytest.approx(march, abs=0.05),
        pytest.approx(frame.y(Decimal(12)), abs=0.05),
    )
    assert actual[-1] == (
        pytest.approx(frame.x(ON), abs=0.05),
        pytest.approx(frame.y(Decimal("57.05")), abs=0.05),
    )
    svg = chart_svg(data)
    assert f'x1="{frame.x(data.deadline):.1f}"' in svg and "截止 deadline 12月31日" in svg
    assert f'x1="{frame.x(ON):.1f}"' in svg and "统计日 8月31日" in svg
    assert ">万㎡</text>" in svg and "目标 75.9万㎡" in svg
    assert [f">{t}</text>" in svg for t in ("0", "20", "40", "60", "80")] == [True] * 5


def test_a_status_day_long_after_the_deadline_stays_at_the_edge(catalogue: Catalogue) -> None:
    late = date(2026, 11, 22)
    data = _housing_chart(catalogue, on=late)
    frame, _ = chart_frame(data)
    assert frame.last == date(2025, 4, 2)  # 92 days past the deadline, not 2026
    svg = chart_svg(data)
    assert "统计日 2026-11-22 →" in svg
    dom = ReportDom(f'<section class="pledge" id="x" data-pledge-id="x">{svg}</section>')
    assert dom.sections["x"]["actual"][-1][0] == pytest.approx(frame.plot_right, abs=0.05)
    assert dom.sections["x"]["schedule"][-1][0] == pytest.approx(frame.plot_right, abs=0.05)


# --------------------------------------------------------------------------- the page


def _views(catalogue: Catalogue) -> list[PledgeView]:
    """Every 2024 pledge with a made-up actual: a third of the target by 1 May."""
    views = []
    for pledge in selected(catalogue, 2024):
        amount = (pledge.target / 3).quantize(Decimal(1)) if pledge.measurable else None
        series = (
            None
            if amount is None
            else ((pledge.start, Decimal(0)), (date(2024, 5, 1), amount), (ON, amount))
        )
        views.append(
            PledgeView(
                pledge=pledge,
                metric=catalogue.metric(pledge.metric),
                row=evaluate(pledge, on=ON, actual=amount),
                actual=series,
            )
        )
    return views


def test_the_page_is_self_contained_and_charts_every_pledge(catalogue: Catalogue) -> None:
    views = _views(catalogue)
    html = render(
        views, catalogue, on=ON, year=2024, generated_at=datetime(2024, 9, 1, 2, tzinfo=UTC)
    )
    assert_self_contained(html)
    dom = ReportDom(html)
    assert all(ref.startswith("#") for ref in dom.references)  # in-page links only
    assert not dom.tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert_every_pledge_charted(dom, views)
    assert len(views) == len(catalogue.pledges_for(2024)) >= 17

    for view in views:
        pledge = view.pledge
        assert html.count(f' id="{pledge.id}"') == 1
        assert f'href="#{pledge.id}"' in html
        text = dom.section_text[pledge.id]
        # 中文 first: the Chinese title, then the English one, then the id.
        assert text[:3] == [pledge.title_zh, pledge.title_en, pledge.id]
        joined = " ".join(text)
        assert pledge.source.quote in joined and pledge.source.file in joined
        zh, en, _ = STATUS_LABELS[view.row.status]
        assert f"{zh} {en}" in joined

    # The header: the status day, and totals that add up to the number of pledges.
    assert "2024年8月31日" in html and "31 August 2024" in html
    totals = dict(re.findall(r'data-status="([a-z_]+)">[^<]*<b>(\d+)</b>', html))
    assert set(totals) == {s.value for s in Status}
    assert sum(int(n) for n in totals.values()) == len(views)
    assert totals[Status.NOT_MEASURABLE.value] == str(
        sum(1 for v in views if not v.pledge.measurable)
    )
    for zh, en, _ in STATUS_LABELS.values():  # the legend explains every status
        assert f"{zh} {en}" in html


def test_html_special_characters_in_the_catalogue_are_escaped(catalogue: Catalogue) -> None:
    view = _views(catalogue)[0]
    odd = view.pledge.model_copy(update={"title_en": 'A <b>bold</b> & "quoted" title'})
    html = render(
        [PledgeView(pledge=odd, metric=view.metric, row=view.row, actual=view.actual)],
        catalogue,
        on=ON,
        year=2024,
        generated_at=datetime(2024, 9, 1, tzinfo=UTC),
    )
    assert "A &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; title" in html
    assert "<b>bold</b>" not in html


def test_the_recorded_terminal_keeps_chinese_at_its_natural_width() -> None:
    from services.demo import _natural_cjk

    svg = (
        '<text class="r2" x="24.4" y="581.2" textLength="207.4" clip-path="url(#l23)">'
        "全年新增学位2160个&#160;</text>"
        '<text class="r1" x="24.4" y="605.6" textLength="207.4">Add 2,160 places</text>'
    )
    assert _natural_cjk(svg) == (
        '<text class="r2" x="24.4" y="581.2" clip-path="url(#l23)">'
        "全年新增学位2160个&#160;</text>"
        '<text class="r1" x="24.4" y="605.6" textLength="207.4">Add 2,160 places</text>'
    )

"""Shared panel defaults: one function per panel kind, bilingual titles, the grid layout.

Every dashboard module builds its panels with these, so all dashboards look alike: titles
"中文 · English", the data source ``citystream-pg``, units as readers write them, and panel
ids and grid positions assigned in the order panels are added (stable JSON).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, gauge, stat, table, text, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import text as tm

from dashboards.query import SQL, Format, datasource_ref
from dashboards.sqlparts import STATUS_LABELS

GRID_WIDTH = 24
FOLDER_UID = "citystream"
FOLDER_TITLE = "民生实事 · CityStream"
TAGS = ["citystream"]

P = TypeVar("P", bound=cogbuilder.Builder[dm.Panel])


def title(zh: str, en: str) -> str:
    return f"{zh} · {en}"


# --------------------------------------------------------------------------- layout


class Layout:
    """Places panels on Grafana's 24-column grid, left to right in bands, and numbers them.

    A band is a horizontal strip; :meth:`add` fills it left to right (wrapping to a new band
    when a panel does not fit), :meth:`at` puts a panel at a given column and offset within
    the band (to stack two small panels beside a tall one), :meth:`row` starts a new band
    under a row header.
    """

    def __init__(self, dashboard: db.Dashboard) -> None:
        self.dashboard = dashboard
        self.top = 0
        self.bottom = 0
        self.x = 0
        self.next_id = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def band(self) -> None:
        self.top = self.bottom
        self.x = 0

    def row(self, row_title: str, *, repeat: str | None = None) -> None:
        self.band()
        row = (
            db.Row(row_title)
            .id(self._id())
            .grid_pos(dm.GridPos(h=1, w=GRID_WIDTH, x=0, y=self.top))
        )
        if repeat is not None:
            row = row.repeat(repeat)
        self.dashboard.with_row(row)
        self.top += 1
        self.bottom = self.top

    def at(self, panel: P, *, x: int, w: int, h: int, dy: int = 0) -> P:
        if x < 0 or w <= 0 or x + w > GRID_WIDTH:
            raise ValueError(f"panel does not fit the grid: x={x}, w={w}")
        y = self.top + dy
        panel.id(self._id()).grid_pos(dm.GridPos(h=h, w=w, x=x, y=y))  # type: ignore[attr-defined]
        self.dashboard.with_panel(panel)
        self.bottom = max(self.bottom, y + h)
        self.x = max(self.x, x + w)
        return panel

    def add(self, panel: P, *, w: int, h: int) -> P:
        if self.x + w > GRID_WIDTH:
            self.band()
        return self.at(panel, x=self.x, w=w, h=h)


# --------------------------------------------------------------------------- field config


# Grafana writes the base step's value as null (-Infinity); the 11.6 schema the dashboards are
# validated against requires a number. Grafana takes the first step as the base whatever
# its value (getActiveThreshold starts from steps[0]), so the base gets one below anything
# a panel shows.
BASE_STEP = -1e12


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute thresholds; the first step is the base colour (its value: None)."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps(
            [
                dm.Threshold(value=BASE_STEP if value is None else value, color=color)
                for value, color in steps
            ]
        )
    )


def value_mappings(labels: dict[str, tuple[str, str]]) -> list[dm.ValueMapping]:
    return [
        dm.ValueMap(
            options={
                value: dm.ValueMappingResult(text=text, color=color, index=index)
                for index, (value, (text, color)) in enumerate(labels.items())
            }
        )
    ]


def status_mappings() -> list[dm.ValueMapping]:
    return value_mappings(STATUS_LABELS)


def data_link(link_title: str, url: str) -> db.DashboardLink:
    """A link on every cell or value of a panel (``${__data.fields.<column>}`` in the URL)."""
    return (
        db.DashboardLink(link_title)
        .type(dm.DashboardLinkType.LINK)
        .url(url)
        .icon("")
        .tooltip(link_title)
        .tags([])
        .as_dropdown(False)
        .target_blank(False)
        .include_vars(False)
        .keep_time(False)
    )


def _reduce(fields: str = "", calcs: Sequence[str] = ("lastNotNull",)) -> cb.ReduceDataOptions:
    return cb.ReduceDataOptions().calcs(list(calcs)).fields(fields).values(False)


def _targets(panel: P, query: str | Sequence[SQL], fmt: Format) -> P:
    queries = [SQL(query, format=fmt)] if isinstance(query, str) else list(query)
    for q in queries:
        panel.with_target(q)  # type: ignore[attr-defined]
    panel.datasource(datasource_ref())  # type: ignore[attr-defined]
    return panel


# --------------------------------------------------------------------------- panels


def stat_panel(
    panel_title: str,
    query: str,
    *,
    unit: str = "none",
    fmt: Format = "table",
    description: str | None = None,
    text_mode: cm.BigValueTextMode = cm.BigValueTextMode.AUTO,
    color_mode: cm.BigValueColorMode = cm.BigValueColorMode.VALUE,
    fields: str = "",
    decimals: int | None = None,
    steps: Sequence[tuple[float | None, str]] = ((None, "blue"),),
    mappings: list[dm.ValueMapping] | None = None,
) -> stat.Panel:
    """A big number (or text, with ``fields="/.*/"``) from the last row of a query."""
    panel = (
        stat.Panel()
        .title(panel_title)
        .unit(unit)
        .reduce_options(_reduce(fields))
        .text_mode(text_mode)
        .color_mode(color_mode)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .justify_mode(cm.BigValueJustifyMode.AUTO)
        .orientation(cm.VizOrientation.AUTO)
        .thresholds(thresholds(*steps))
    )
    if description:
        panel = panel.description(description)
    if decimals is not None:
        panel = panel.decimals(decimals)
    if mappings:
        panel = panel.mappings(mappings)
    return _targets(panel, query, fmt)


def gauge_panel(
    panel_title: str,
    query: str,
    *,
    unit: str = "percent",
    minimum: float = 0,
    maximum: float = 100,
    steps: Sequence[tuple[float | None, str]] = ((None, "red"), (80, "orange"), (95, "green")),
    description: str | None = None,
) -> gauge.Panel:
    panel = (
        gauge.Panel()
        .title(panel_title)
        .unit(unit)
        .min(minimum)
        .max(maximum)
        .decimals(1)
        .reduce_options(_reduce())
        .show_threshold_markers(True)
        .show_threshold_labels(False)
        .thresholds(thresholds(*steps))
    )
    if description:
        panel = panel.description(description)
    return _targets(panel, query, "table")


def timeseries_panel(
    panel_title: str,
    query: str,
    *,
    unit: str = "none",
    description: str | None = None,
    bars: bool = False,
    stepped: bool = False,
    decimals: int | None = None,
) -> timeseries.Panel:
    """Lines (or bars) over time; the query's format is time_series (a ``time`` column)."""
    panel = (
        timeseries.Panel()
        .title(panel_title)
        .unit(unit)
        .draw_style(cm.GraphDrawStyle.BARS if bars else cm.GraphDrawStyle.LINE)
        .line_interpolation(
            cm.LineInterpolation.STEP_AFTER if stepped else cm.LineInterpolation.LINEAR
        )
        .fill_opacity(10)
        .show_points(cm.VisibilityMode.NEVER)
        .span_nulls(True)
        .legend(
            cb.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.NONE))
    )
    if description:
        panel = panel.description(description)
    if decimals is not None:
        panel = panel.decimals(decimals)
    return _targets(panel, query, "time_series")


def table_panel(
    panel_title: str,
    query: str,
    *,
    description: str | None = None,
    mappings: list[dm.ValueMapping] | None = None,
    links: Sequence[db.DashboardLink] = (),
) -> table.Panel:
    """Rows as they come. Field overrides are not used anywhere: the 11.6 schema types a
    matcher's options and an override's value as objects, which byName matchers are not."""
    panel = table.Panel().title(panel_title).show_header(True).cell_height(cm.TableCellHeight.SM)
    if description:
        panel = panel.description(description)
    if mappings:
        panel = panel.mappings(mappings)
    if links:
        panel = panel.data_links(list(links))
    return _targets(panel, query, "table")


def bargauge_panel(
    panel_title: str,
    query: str,
    *,
    unit: str = "none",
    description: str | None = None,
    decimals: int | None = None,
) -> bargauge.Panel:
    """One horizontal bar per row of a table (a text column names each bar)."""
    panel = (
        bargauge.Panel()
        .title(panel_title)
        .unit(unit)
        .display_mode(cm.BarGaugeDisplayMode.BASIC)
        .orientation(cm.VizOrientation.HORIZONTAL)
        .reduce_options(_reduce(calcs=("lastNotNull",)).values(True))
        .show_unfilled(True)
        .thresholds(thresholds((None, "blue")))
    )
    if description:
        panel = panel.description(description)
    if decimals is not None:
        panel = panel.decimals(decimals)
    return _targets(panel, query, "table")


def text_panel(panel_title: str, markdown: str) -> text.Panel:
    return text.Panel().title(panel_title).mode(tm.TextMode.MARKDOWN).content(markdown)


# --------------------------------------------------------------------------- dashboards


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = False,
    include_all: bool = False,
    hide: dm.VariableHide = dm.VariableHide.DONT_HIDE,
    refresh: dm.VariableRefresh = dm.VariableRefresh.ON_DASHBOARD_LOAD,
    description: str | None = None,
) -> db.QueryVariable:
    """A variable whose options come from SQL (``__text`` / ``__value`` columns)."""
    variable = (
        db.QueryVariable(name)
        .label(label)
        .query(query)
        .datasource(datasource_ref())
        .multi(multi)
        .include_all(include_all)
        .hide(hide)
        .refresh(refresh)
        .sort(dm.VariableSort.DISABLED)
        .allow_custom_value(False)
    )
    if include_all:
        variable = variable.current(dm.VariableOption(text="All", value="$__all", selected=True))
    if description:
        variable = variable.description(description)
    return variable


def new_dashboard(
    uid: str,
    dashboard_title: str,
    *,
    description: str,
    time_from: str,
    time_to: str = "now",
    refresh: str | None = None,
) -> db.Dashboard:
    """A dashboard with the shared settings: read-only, Asia/Shanghai, linked to the others."""
    dashboard = (
        db.Dashboard(dashboard_title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone("Asia/Shanghai")
        .week_start("monday")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .time(time_from, time_to)
        .readonly()
        .link(
            db.DashboardLink("民生实事 · CityStream")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
            .target_blank(False)
            .icon("external link")
            .tooltip("")
            .url("")
        )
    )
    if refresh is not None:
        dashboard = dashboard.refresh(refresh)
    return dashboard

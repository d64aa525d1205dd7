"""``citystream pledges`` (load the catalogue, show progress) and ``citystream report`` (the HTML
page): services/pledges/."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from services.cli.errors import fail, group
from services.cli.options import YEAR, on_day, year_catalogue
from services.cli.output import console
from streams.settings import get_settings


@group()
def pledges() -> None:
    """Load the pledge catalogue into PostgreSQL; show progress against the schedule."""


@pledges.command("load")
@click.option("--year", type=int, help="Load only this year's pledges (default: every year).")
def pledges_load(year: int | None) -> None:
    """Validate seeds/ and store new or changed pledges with their daily schedule.

    An unchanged pledge is left as it is; a changed one is stored as a new version (the
    old one is kept). Run `citystream migrate` first.
    """
    from services.pledges.store import load, validated_catalogue
    from streams.db import DatabaseError, connect

    catalogue = validated_catalogue()
    try:
        with connect(get_settings()) as conn:
            report = load(conn, catalogue=catalogue, year=year)
    except DatabaseError as exc:
        fail(f"{exc} (has `citystream migrate` run?)")
    revised = ", ".join(f"{pledge_id} (v{version})" for pledge_id, version in report.revised)
    console.print(f"added: {len(report.added)}  unchanged: {len(report.unchanged)}")
    console.print(f"new versions: {revised or 'none'}")


@pledges.command("status")
@YEAR
@on_day()
def pledges_status(year: int | None, on: datetime | None) -> None:
    """Progress of each pledge at the end of a day: target, actual, expected, gap, status."""
    from services.pledges.reads import local_today, progress
    from services.pledges.table import status_table
    from streams.db import connect

    catalogue = year_catalogue(year)
    day = on.date() if on is not None else local_today()
    with connect(get_settings()) as conn:
        rows = progress(conn, on=day, year=year, catalogue=catalogue)
    console.print(status_table(rows, catalogue, on=day))


@click.command()
@YEAR
@on_day()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("out/report.html"),
    show_default=True,
    help="Where to write the page.",
)
@click.option(
    "--screenshot",
    "screenshot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also save a PNG of the page's top (1280 px wide) as headless chromium draws it.",
)
def report(year: int | None, on: datetime | None, out: Path, screenshot_path: Path | None) -> None:
    """Write the pledge report: one self-contained HTML page (no network needed) with each
    pledge's actual against its schedule, status, projection and source quote."""
    from services.pledges.reads import local_today
    from services.pledges.report import write_report
    from services.pledges.screenshot import screenshot
    from streams.db import connect

    catalogue = year_catalogue(year)
    day = on.date() if on is not None else local_today()
    with connect(get_settings()) as conn:
        path = write_report(conn, on=day, year=year, out=out, catalogue=catalogue)
    console.print(f"report: {path}")
    if screenshot_path is not None:
        console.print(f"screenshot: {screenshot(path, screenshot_path).resolve()}")

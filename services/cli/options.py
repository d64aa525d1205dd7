"""Options several commands share, and what they select."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from schemas.catalogue import Catalogue

YEAR = click.option("--year", type=int, help="Only this year's pledges (default: every year).")


def on_day(
    help_text: str = "Local date, YYYY-MM-DD (default: today in Asia/Shanghai).",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--on``: the status day of a pledge table or report."""
    return click.option("--on", "on", type=click.DateTime(formats=["%Y-%m-%d"]), help=help_text)


def year_catalogue(year: int | None) -> Catalogue:
    """The pledge catalogue, refusing a ``--year`` it holds no pledges for (a usage error)."""
    from schemas.seeds import load_catalogue
    from services.pledges.rules import selected

    catalogue = load_catalogue()
    if not selected(catalogue, year):
        raise click.BadParameter(f"no pledges for {year} in seeds/pledges/", param_hint="--year")
    return catalogue

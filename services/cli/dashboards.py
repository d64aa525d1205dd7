"""``citystream dashboards``: Grafana as code (dashboards/)."""

from __future__ import annotations

import click

from services.cli.errors import fail, group
from services.cli.output import console
from streams.settings import get_settings


@group()
def dashboards() -> None:
    """Grafana dashboards and alert rules, built as code (dashboards/)."""


@dashboards.command("build")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a committed file is stale.")
def dashboards_build(check: bool) -> None:
    """Write deploy/grafana/dashboards/*.json, the alert rules and the layout mock."""
    from dashboards.build import differing, write

    if check:
        stale = differing()
        if stale:
            fail(f"stale: {', '.join(map(str, stale))}; run `citystream dashboards build`")
        console.print("every generated file is up to date")
        return
    changed = write()
    console.print("written: " + (", ".join(map(str, changed)) if changed else "none, all current"))


@dashboards.command("push")
@click.option("--url", required=True, help="Grafana's address, e.g. http://grafana:3000")
@click.option("--token", envvar="GRAFANA_TOKEN", help="Service account token [env GRAFANA_TOKEN].")
@click.option("--db-host", help="host:port of PostgreSQL as Grafana sees it (default: provisioned)")
@click.option(
    "--dry-run", is_flag=True, help="Print every API call it would make; connect to none."
)
def dashboards_push(url: str, token: str | None, db_host: str | None, dry_run: bool) -> None:
    """Create or update the folder, data source, dashboards and alert rules (idempotent).

    The data source logs in as grafana_reader with CITYSTREAM_GRAFANA_DB_PASSWORD.
    """
    from dashboards.push import GrafanaClientTransport, describe, push, resources

    secret = get_settings().grafana_db_password
    found = resources(db_host=db_host, db_password=secret.get_secret_value() if secret else None)
    if dry_run:
        console.print(
            f"dry run, nothing sent; against {url} a push makes these calls:", soft_wrap=True
        )
        for line in describe(found):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    if not token:
        fail("--token (or GRAFANA_TOKEN) is required: a token of a Grafana service account")
    if secret is None:
        fail("set CITYSTREAM_GRAFANA_DB_PASSWORD: the data source logs in as grafana_reader")
    for line in push(GrafanaClientTransport(url, token), found):
        console.print(line, markup=False, highlight=False, soft_wrap=True)

"""What an operator runs before the workers: ``citystream migrate`` (the tables, streams/db/) and
``citystream topics`` (the topics and their ACLs, services/kafka/)."""

from __future__ import annotations

import click
from rich.markup import escape

from services.cli.output import console, err_console
from streams.settings import get_settings


@click.command()
def migrate() -> None:
    """Apply the numbered SQL migrations that are not applied yet (idempotent)."""
    from streams.db.migrate import apply

    settings = get_settings()
    report = apply(settings)
    console.print(f"database: {escape(report.mode.summary)}", soft_wrap=True)
    if report.mode.warning:
        err_console.print(f"[yellow]warning:[/] {escape(report.mode.warning)}", soft_wrap=True)
    for outcome in report.outcomes:
        m = outcome.migration
        console.print(f"{m.version:04d}_{m.name}: {outcome.status}")


@click.command()
def topics() -> None:
    """Create the city.* topics that are missing (unlimited retention, broker timestamps),
    set broker timestamps (LogAppendTime) on those that exist, and grant every principal its
    ACLs on them (as the admin: CITYSTREAM_KAFKA_ADMIN_PASSWORD)."""
    from services.kafka.topics import ensure_topics

    report = ensure_topics(get_settings())
    console.print(
        "created: " + (", ".join(report.created) if report.created else "none, all exist")
    )
    for name, changes in report.fixed.items():
        console.print(f"fixed {name}: " + "; ".join(changes))
    console.print(f"ACLs in force: {len(report.grants)} (`citystream access show` lists them)")

"""``citystream stack``: the local Kafka broker and PostgreSQL clusters (services/stack/)."""

from __future__ import annotations

import click
from rich.table import Table

from services.cli.errors import group
from services.cli.output import console


@group()
def stack() -> None:
    """Start, stop and show the local Kafka broker and PostgreSQL cluster."""


@stack.command("up")
def stack_up() -> None:
    """Start Kafka and PostgreSQL on 127.0.0.1 (skips what CITYSTREAM_* points elsewhere)."""
    from services.stack.lifecycle import up

    with console.status("starting the local stack (first run fetches Kafka's jars with Maven)…"):
        started = up()
    for name, component in started.items():
        where = (
            component
            if isinstance(component, str)
            else f"{component.address} (pid {component.pid})"
            + (f", ready in {component.ready_in_s:.1f} s" if component.ready_in_s else "")
        )
        console.print(f"[green]{name}[/] {where}")


@stack.command("down")
@click.option(
    "--only",
    type=click.Choice(["kafka", "postgres", "postgres-plain"]),
    help="Stop just this component; `stack up` restarts it with the same port and data.",
)
def stack_down(only: str | None) -> None:
    """Stop exactly the processes `stack up` started, by PID."""
    from services.stack.lifecycle import down

    stopped = down(only)
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@stack.command("status")
def stack_status() -> None:
    """Show each component, its address and PID, and each database's engine (TimescaleDB or
    plain PostgreSQL, and why)."""
    from services.stack.lifecycle import status

    table = Table("component", "address", "pid", "state", "engine")
    for row in status():
        table.add_row(*row)
    console.print(table)

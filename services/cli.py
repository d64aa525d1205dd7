"""``citystream``: the one command line for operators, departments and auditors.

Every command reads :class:`services.settings.Settings` (env prefix ``CITYSTREAM_``).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any, NoReturn

import click
import orjson
from rich.console import Console
from rich.table import Table

from services.settings import get_settings

console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """CityStream: the district's pledges, measured while the year runs."""


# --- stack -----------------------------------------------------------------------------------


@main.group()
def stack() -> None:
    """Start, stop and show the local Kafka broker and PostgreSQL cluster."""


@stack.command("up")
def stack_up() -> None:
    """Start Kafka and PostgreSQL on 127.0.0.1 (skips what CITYSTREAM_* points elsewhere)."""
    from services.stack import StackError
    from services.stack.lifecycle import up

    try:
        with console.status(
            "starting the local stack (first run fetches Kafka's jars with Maven)…"
        ):
            started = up()
    except StackError as exc:
        _fail(str(exc))
    for name, component in started.items():
        where = (
            component
            if isinstance(component, str)
            else f"{component.address} (pid {component.pid})"
        )
        console.print(f"[green]{name}[/] {where}")


@stack.command("down")
def stack_down() -> None:
    """Stop exactly the processes `stack up` started, by PID."""
    from services.stack.lifecycle import down

    stopped = down()
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@stack.command("status")
def stack_status() -> None:
    """Show each component, its address and PID."""
    from services.stack.lifecycle import status

    table = Table("component", "address", "pid", "state")
    for row in status():
        table.add_row(*row)
    console.print(table)


# --- database and topics ------------------------------------------------------------------------


@main.command()
def migrate() -> None:
    """Apply the numbered SQL migrations that are not applied yet (idempotent)."""
    from streams.db import DatabaseError
    from streams.db.migrate import migrate as run_migrations

    settings = get_settings()
    try:
        outcomes = run_migrations(settings)
    except DatabaseError as exc:
        _fail(str(exc))
    for outcome in outcomes:
        m = outcome.migration
        console.print(f"{m.version:04d}_{m.name}: {outcome.status}")


@main.command()
def topics() -> None:
    """Create the city.* topics that are missing (unlimited retention)."""
    from services.producer import ensure_topics

    created = ensure_topics(get_settings())
    console.print("created: " + (", ".join(created) if created else "none, all exist"))


# --- departments ------------------------------------------------------------------------------


@main.command()
@click.argument("event_type")
@click.argument("fields", nargs=-1)
@click.option(
    "--json", "json_text", help="The whole event as a JSON object; FIELD=VALUE pairs override it."
)
def emit(event_type: str, fields: tuple[str, ...], json_text: str | None) -> None:
    """Send one event of EVENT_TYPE built from FIELD=VALUE pairs.

    Example: citystream emit heating.area_connected district=shifo area_m2=1200

    Missing event_id, occurred_at and reported_at default to a new id and now; a missing
    department defaults to the only department allowed to send this event type.
    """
    from schemas.envelope import new_event_id
    from schemas.topics import BY_EVENT_TYPE
    from schemas.validation import Rejection, decode
    from services.producer import DeliveryError, Producer

    spec = BY_EVENT_TYPE.get(event_type)
    if spec is None:
        _fail(f"unknown event type {event_type!r}; known: {', '.join(sorted(BY_EVENT_TYPE))}")
    data: dict[str, Any] = orjson.loads(json_text) if json_text else {}
    for pair in fields:
        key, sep, value = pair.partition("=")
        if not sep:
            _fail(f"expected FIELD=VALUE, got {pair!r}")
        data[key] = value
    now = datetime.now(UTC).isoformat()
    data.setdefault("event_type", event_type)
    data.setdefault("event_id", str(new_event_id()))
    data.setdefault("occurred_at", now)
    data.setdefault("reported_at", now)
    if len(spec.departments) == 1:
        data.setdefault("department", next(iter(spec.departments)))
    outcome = decode(spec, orjson.dumps(data))
    if isinstance(outcome, Rejection):
        _fail(f"{outcome.message} (rule: {outcome.rule}) [{outcome.reason}]")
    producer = Producer(get_settings())
    try:
        (delivery,) = producer.send_all([outcome])
    except DeliveryError as exc:
        _fail(str(exc))
    finally:
        producer.close()
    console.print(
        f"sent {delivery.event_id} → {delivery.topic}[{delivery.partition}]@{delivery.offset}"
    )


# --- processing -------------------------------------------------------------------------------


@main.command()
def worker() -> None:
    """Consume every city.* topic into PostgreSQL until stopped (SIGTERM / Ctrl-C)."""
    from services.producer import ensure_topics
    from streams.worker import run

    settings = get_settings()
    ensure_topics(settings)
    run(settings)


@main.command()
@click.option("--events", default=300, show_default=True, help="How many heating events to send.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for the worker.")
def demo(events: int, timeout: float) -> None:
    """The main job on the local stack: migrate, run a worker, send events, read totals back."""
    from services.demo import run_demo

    run_demo(get_settings(), events=events, timeout_s=timeout, console=console)


if __name__ == "__main__":
    main()

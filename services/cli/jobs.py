"""The long-running jobs: the ``worker`` (streams/), the ``demo`` (services/demo.py) and
``simulate`` (services/simulator/)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from services.cli.output import console
from streams.settings import get_settings


@click.command()
def worker() -> None:
    """Consume every city.* topic into PostgreSQL until stopped (SIGTERM / Ctrl-C).

    Logs in to Kafka as the workers' principal (CITYSTREAM_KAFKA_WORKER_PASSWORD), which may
    not create topics: run `citystream topics` (as the admin) first.
    """
    from services.kafka.topics import TopicIds, wait_for_topics
    from streams.worker import run

    settings = get_settings()
    # Started during a Kafka outage (or before the broker, in compose): wait, don't exit.
    wait_for_topics(settings, principal="worker")
    run(settings, topic_ids=TopicIds(settings, principal="worker"))


@click.command()
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for the worker.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("out/report.html"),
    show_default=True,
    help="Where to write the pledge report.",
)
@click.option(
    "--screenshots",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also save the terminal tables (pledge-table.svg) and the report (report.png) "
    "here, e.g. deploy/screenshots for the README.",
)
def demo(timeout: float, out: Path, screenshots: Path | None) -> None:
    """The main job: migrate, load the pledges, simulate 2022 and 2024 (to 31 August) through
    Kafka, let a worker write them to PostgreSQL, print the pledge table and the 2022 check,
    write the report. Running it again counts nothing twice."""
    from services.demo import run_demo

    run_demo(get_settings(), timeout_s=timeout, console=console, out=out, screenshots=screenshots)


@click.command()
@click.option("--year", type=int, required=True, help="The year to simulate: 2022 or 2024.")
@click.option(
    "--until",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Only what the departments reported by this local date, YYYY-MM-DD (default: all).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Random seed; the same year, seed and --until give the same events (default: 7).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan (per type and month); send nothing.")
def simulate(year: int, until: datetime | None, seed: int | None, dry_run: bool) -> None:
    """Send a year of simulated department activity through Kafka.

    Example: citystream simulate --year 2024 --until 2024-08-31

    Project-sized events across the five subdistricts with their seasons, late reports,
    about 1% identical re-sends, 0.5% invalid records (they become dead letters) and a
    few corrections. For 2022 the valid events add up exactly to the reported
    achievements; for 2024 each pledge is paced on purpose (see services/simulator/).
    Event ids come from the seed, so sending the same plan again counts nothing twice.
    """
    from services.simulator.plan import DEFAULT_SEED
    from services.simulator.run import run_simulation

    run_simulation(
        None if dry_run else get_settings(),
        year=year,
        seed=DEFAULT_SEED if seed is None else seed,
        until=until.date() if until is not None else None,
        dry_run=dry_run,
        console=console,
    )

"""``citystream simulate``: print a simulated year's plan, or send it through the producer.

Topics: every ``city.<family>.v1`` (with ``CITYSTREAM_TOPIC_NAMESPACE``), created first when
missing. Env: ``CITYSTREAM_KAFKA_BOOTSTRAP``, ``CITYSTREAM_PRODUCER_TIMEOUT_S``. Valid events
go through :meth:`Producer.send`, invalid records through :meth:`Producer.send_raw`, all
queued at once and flushed once at the end, so the producer batches them.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from schemas.catalogue import Catalogue
from schemas.seeds import load_catalogue
from schemas.validation import FUTURE_TOLERANCE
from services.pledges.rules import STATUS_LABELS
from services.simulator.plan import Plan, expected_totals, latest_levels, pledge_positions
from services.simulator.plan import plan as make_plan
from services.simulator.scenario import SimulationError
from streams.settings import Settings

MONTHS = tuple(str(m) for m in range(1, 13))


@dataclass(frozen=True)
class SendReport:
    sent: int  # records Kafka acknowledged
    failed: int  # records Kafka did not take
    by_type: dict[str, int]  # event type → valid events sent (corrections included)
    duplicates: int
    invalid: int
    corrections: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def _quantity(value: Decimal) -> str:
    text = f"{value:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _title(plan: Plan) -> str:
    until = f" until {plan.until}" if plan.until else ""
    return (
        f"模拟 Simulated {plan.year}{until} (seed {plan.seed}): {len(plan.records):,} records — "
        f"events {len(plan.originals):,}, corrections {len(plan.corrections)}, "
        f"duplicates {len(plan.duplicates)}, invalid {len(plan.invalid)}"
    )


def print_plan(plan: Plan, console: Console, catalogue: Catalogue | None = None) -> None:
    """Events per type and month, the invalid records, and the totals per metric."""
    catalogue = catalogue or load_catalogue()
    console.print(_title(plan))
    counts: Counter[tuple[str, int]] = Counter(
        (e.event_type_name, e.occurred_at.month) for e in plan.events
    )
    table = Table(
        title="事件 Events per type and month (occurred)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        collapse_padding=True,
    )
    table.add_column("event type", no_wrap=True)
    for month in MONTHS:
        table.add_column(month, justify="right")
    table.add_column("Σ", justify="right")
    for event_type in sorted({t for t, _ in counts}):
        row = [counts[(event_type, m)] for m in range(1, 13)]
        table.add_row(event_type, *(str(n) if n else "·" for n in row), str(sum(row)))
    console.print(table)
    reasons = Counter(r.reason for r in plan.invalid)
    console.print(
        f"duplicates 重复: {len(plan.duplicates)} (identical re-sends, counted once); "
        "invalid 无效: "
        + ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
        + " (dead letters)"
    )
    print_totals(plan, console, catalogue)


def print_totals(plan: Plan, console: Console, catalogue: Catalogue | None = None) -> None:
    """What the valid events add up to (a level metric: its latest reading), beside the
    reported figure; then where each pledge stands, by the platform's rules."""
    catalogue = catalogue or load_catalogue()
    totals = expected_totals(plan)
    levels = latest_levels(plan)
    reported = {a.metric: a.value for a in catalogue.achievements_for(plan.year)}
    table = Table(
        title="合计 Totals per metric (valid events; a rate: its latest reading)",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("unit")
    table.add_column("total", justify="right")
    if reported:
        table.add_column(f"reported {plan.year}", justify="right")
        table.add_column("")
    for metric, total in sorted({**totals, **levels}.items()):
        row = [metric, catalogue.metric(metric).unit, _quantity(total)]
        if metric in reported:
            mark = "[green]=[/]" if reported[metric] == total else "[red]≠[/]"
            row += [_quantity(reported[metric]), mark]
        elif reported:
            row += ["", ""]
        table.add_row(*row)
    console.print(table)
    day = plan.until or date(plan.year, 12, 31)
    positions = pledge_positions(plan, day, catalogue)
    if not positions:
        return
    table = Table(title=f"承诺 Pledges on {day}", title_justify="left")
    table.add_column("pledge", overflow="fold")
    table.add_column("target", justify="right")
    table.add_column("expected", justify="right")
    table.add_column("actual", justify="right")
    table.add_column("pace", justify="right")
    table.add_column("status")
    table.add_column("projected", justify="right")
    for pos in positions:
        ratio = pos.ratio
        pace = f"{ratio:.0%}" if ratio is not None else "–"
        zh, en, style = STATUS_LABELS[pos.status]
        projected = pos.progress.projected_completion
        table.add_row(
            pos.pledge.id,
            _quantity(pos.pledge.target),
            _quantity(pos.expected.quantize(Decimal("0.01"))),
            _quantity(pos.actual),
            pace,
            f"[{style}]{zh} {en}[/]",
            str(projected) if projected else "–",
        )
    console.print(table)


def check_not_in_future(plan: Plan, now: datetime | None = None) -> None:
    """Refuse a plan the worker would dead-letter as ``in_future``."""
    now = now or datetime.now(UTC)
    latest = max((e.reported_at for e in plan.events), default=None)
    if latest is not None and latest > now + FUTURE_TOLERANCE:
        limit = (now - timedelta(days=1)).date()
        raise SimulationError(
            f"events of {plan.year} would be reported up to {latest:%Y-%m-%d}, after now; "
            f"pass --until {limit} or earlier"
        )


def _department_of(topic_base: str) -> str:
    from schemas.topics import ALL

    return next(sorted(spec.departments)[0] for spec in ALL if spec.name == topic_base)


def send(plan: Plan, settings: Settings, console: Console) -> SendReport:
    """Send every record of the plan in order, with one flush at the end."""
    from services.kafka.client import DeliveryError, KafkaAuthenticationError, wait_for_broker
    from services.kafka.producer import Producer
    from services.kafka.topics import missing_topics
    from streams.settings import MissingCredentials

    check_not_in_future(plan)
    # The simulation plays every department, each sending as itself: it needs every
    # department's credentials (the local stack's stack.env holds them).
    departments = sorted({_department_of(record.topic) for record in plan.records})
    try:
        for department in departments:
            wait_for_broker(
                settings,
                principal=department,
                timeout_s=min(10.0, settings.producer_timeout_s),
            )
        # Each department may see only its own topic: ask each about its own.
        missing = [
            name
            for department in departments
            for name in missing_topics(
                settings,
                sorted({r.topic for r in plan.records if _department_of(r.topic) == department}),
                principal=department,
            )
        ]
    except (MissingCredentials, KafkaAuthenticationError) as exc:
        raise SimulationError(f"{exc}; nothing was sent") from exc
    except TimeoutError as exc:
        raise SimulationError(
            f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}); nothing was sent. "
            "Start the local stack with 'citystream stack up' or set CITYSTREAM_KAFKA_BOOTSTRAP "
            "(--dry-run prints the plan without Kafka)"
        ) from exc
    if missing:
        raise SimulationError(
            f"Kafka has no topic {', '.join(missing)}; nothing was sent. Create the topics "
            "with 'citystream topics' (as the admin), then simulate again"
        )
    try:
        producer = Producer(settings)
    except DeliveryError as exc:
        raise SimulationError(f"{exc}; nothing was sent") from exc
    started = time.perf_counter()
    futures: list[Any] = []
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task(f"sending {plan.year}", total=len(plan.records))
            for record in plan.records:
                if record.event is not None:
                    futures.append(producer.send(record.event))
                else:
                    futures.append(producer.send_raw(record.topic, record.value, key=record.key))
                progress.advance(task)
            progress.update(task, description="waiting for Kafka")
            producer.flush()
        seconds = time.perf_counter() - started
    except DeliveryError as exc:
        raise SimulationError(f"{exc}; re-run the same command: nothing counts twice") from exc
    finally:
        producer.close()
    failed = sum(1 for future in futures if future.failed())
    report = SendReport(
        sent=len(futures) - failed,
        failed=failed,
        by_type=dict(sorted(Counter(e.event_type_name for e in plan.events).items())),
        duplicates=len(plan.duplicates),
        invalid=len(plan.invalid),
        corrections=len(plan.corrections),
        seconds=seconds,
    )
    print_report(plan, report, settings, console)
    if failed:
        raise SimulationError(
            f"Kafka did not take {failed} of {len(futures)} records; re-run the same command: "
            "event ids are derived from the seed, so nothing counts twice"
        )
    return report


def print_report(plan: Plan, report: SendReport, settings: Settings, console: Console) -> None:
    table = Table(title="发送结果 Sent", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("records", justify="right")
    for event_type, n in report.by_type.items():
        table.add_row(event_type, f"{n:,}")
    table.add_row("duplicates 重复 (counted once)", f"{report.duplicates:,}")
    table.add_row("invalid 无效 (dead letters)", f"{report.invalid:,}")
    table.add_row("corrections 更正", f"{report.corrections:,}")
    table.add_row("[bold]records sent[/]", f"[bold]{report.sent:,}[/]")
    if report.failed:
        table.add_row("[red]not taken by Kafka[/]", f"[red]{report.failed:,}[/]")
    table.add_row("elapsed", f"{report.seconds:.2f} s")
    table.add_row("rate", f"{report.rate:,.0f} records/s")
    console.print(table)
    console.print(
        f"to {settings.kafka_bootstrap}, topics {settings.topic_name('city.<family>.v1')}; "
        "run 'citystream worker' to write them to PostgreSQL"
    )


def run_simulation(
    settings: Settings | None,
    *,
    year: int,
    seed: int,
    until: date | None,
    dry_run: bool,
    console: Console,
) -> tuple[Plan, SendReport | None]:
    """What `citystream simulate` does; ``settings`` may be None for a dry run."""
    catalogue = load_catalogue()
    with console.status(f"planning {year}…"):
        plan = make_plan(year, seed=seed, until=until, catalogue=catalogue)
    if dry_run or settings is None:
        print_plan(plan, console, catalogue)
        return plan, None
    console.print(_title(plan))
    report = send(plan, settings, console)
    print_totals(plan, console, catalogue)
    return plan, report

"""``citystream audit replay/as-of/explain``: the auditors' commands on history — every past
number back from the events (services/audit/). Registered on the ``audit`` group of
:mod:`services.cli.audit`."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from services.cli.audit import EXIT_FOUND, INSTANT, SHOW, audit, progress
from services.cli.options import YEAR, on_day, year_catalogue
from services.cli.output import console
from streams.settings import get_settings


@audit.command("replay")
@click.option("--from", "start", type=INSTANT, help="Replay from this moment (ISO 8601).")
@click.option(
    "--from-beginning", is_flag=True, help="Replay everything the source holds (the default)."
)
@click.option("--to", "end", type=INSTANT, help="Replay up to this moment (default: now).")
@click.option(
    "--topics",
    multiple=True,
    help="Topics or families to replay, e.g. city.heating.v1 or heating (repeat, or "
    "separate with commas; default: every family).",
)
@click.option(
    "--source",
    type=click.Choice(["kafka", "ledger"]),
    default="kafka",
    show_default=True,
    help="Re-read Kafka's records, or the ledger table alone.",
)
def replay_cmd(
    start: datetime | None,
    from_beginning: bool,
    end: datetime | None,
    topics: tuple[str, ...],
    source: str,
) -> None:
    """Recompute every rollup with the workers' own code and diff it against metric_daily.

    Lists every difference by day, subdistrict and metric. --from/--to replay part of the
    history: the ledger rows before it are the starting state, those after it are taken
    out of the live rollups before comparing.
    """
    from services.audit.common import AuditInputError, select_topics
    from services.audit.replay import replay_from_kafka, replay_from_ledger

    if start is not None and from_beginning:
        raise click.UsageError("--from and --from-beginning exclude each other")
    if start is not None and end is not None and end < start:
        raise click.BadParameter("must not be before --from", param_hint="--to")
    try:
        select_topics(topics)
    except AuditInputError as exc:
        raise click.BadParameter(str(exc), param_hint="--topics") from None
    settings = get_settings()
    run = replay_from_kafka if source == "kafka" else replay_from_ledger
    with progress(f"replaying from {source}") as hook:
        result = run(settings, start=start, end=end, topics=topics, progress=hook)
    read = "records" if source == "kafka" else "ledger rows"
    console.print(
        f"replayed {result.events_read:,} {read} from {source} in {result.seconds:.2f} s "
        f"({result.rate:,.0f}/s): accepted {result.accepted:,}, duplicates "
        f"{result.duplicates:,}, rejected {sum(result.rejected.values()):,}"
        + (
            " (" + ", ".join(f"{r} {n}" for r, n in sorted(result.rejected.items())) + ")"
            if result.rejected
            else ""
        )
    )
    if result.baseline_rows or result.after_rows:
        console.print(
            f"ledger rows before the window taken as recorded: {result.baseline_rows:,}; "
            f"after it, taken out of the live rollups: {result.after_rows:,}"
        )
    for topic, (ms, size) in sorted(result.limited_retention.items()):
        console.print(
            f"[yellow]retention:[/] {topic} keeps records for retention.ms={ms}, "
            f"retention.bytes={size} (not unlimited): records Kafka no longer holds were taken "
            "from the ledger; fix with kafka-configs --alter --add-config retention.ms=-1"
        )
    for topic in result.unread_incarnations:
        console.print(
            f"[yellow]topic reset:[/] {topic} was deleted and created again since a worker last "
            "read it: its earlier records were taken from the ledger, the new ones are not "
            "stored yet (start a worker)"
        )
    if result.unconsumed:
        console.print(
            f"[yellow]not replayed:[/] {result.unconsumed:,} Kafka records the workers have not "
            "stored yet (the live rollups cannot contain them yet)"
        )
    for event_id, reason in result.refused_in_ledger[:SHOW]:
        console.print(f"[bold red]ledger correction refused by the rules[/] {event_id}: {reason}")
    differences = result.differences()
    if not differences and not result.refused_in_ledger:
        console.print(
            f"[green]no differences[/]: all {len(result.live):,} rollup rows of "
            f"{len(result.topics)} topic(s) equal the replay"
        )
        return
    table = Table(title="差异 Differences: live metric_daily vs replay")
    for header in ("day", "subdistrict", "metric", "live", "replayed", "live − replayed"):
        table.add_column(header, justify="right" if header[0] in "lr" else "left")
    table.add_column("events live/replayed", justify="right")
    from services.audit.common import quantity

    for d in differences[: SHOW * 5]:
        table.add_row(
            d.day.isoformat(),
            d.district,
            d.metric,
            quantity(d.live_total),
            quantity(d.replayed_total),
            quantity(d.delta),
            f"{d.live_events}/{d.replayed_events}",
        )
    console.print(table)
    console.print(f"[bold red]{len(differences)} rollup row(s) differ[/]")
    sys.exit(EXIT_FOUND)


@audit.command("as-of")
@click.argument("moment", metavar="TIME", type=INSTANT)
@on_day(
    "Status day, YYYY-MM-DD (default: TIME's date in Asia/Shanghai, as `pledges "
    "status` showed by default at that moment)."
)
@YEAR
def as_of_cmd(moment: datetime, on: datetime | None, year: int | None) -> None:
    """Pledge progress exactly as `pledges status` showed it at TIME.

    Only events ingested by TIME count, and corrections only if ingested by then.
    TIME is ISO 8601, e.g. 2024-06-30T18:00:00+08:00 (Asia/Shanghai without an offset).
    """
    from services.audit.as_of import default_day, progress_as_of
    from services.pledges.table import status_table
    from streams.db import audit as store

    catalogue = year_catalogue(year)
    day: date = on.date() if on is not None else default_day(moment)
    with store.snapshot(get_settings()) as conn:
        rows = progress_as_of(conn, at=moment, on=day, year=year, catalogue=catalogue)
        ingested = store.ingested_count(conn, ingested_by=moment)
    console.print(
        f"截至 As shown at {moment.isoformat()}: {ingested:,} ledger rows had been ingested"
    )
    console.print(status_table(rows, catalogue, on=day))


@audit.command("explain")
@click.argument("pledge_id", metavar="PLEDGE")
@click.option("--as-of", "moment", type=INSTANT, help="Explain the figure shown at this moment.")
@on_day("Status day, YYYY-MM-DD (default: today, or the --as-of moment's date).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every line to FILE.xlsx or FILE.csv.",
)
def explain_cmd(
    pledge_id: str, moment: datetime | None, on: datetime | None, out: Path | None
) -> None:
    """The events behind PLEDGE's figure, summing exactly to it.

    Each line: event id, department, subdistrict, occurred_at, ingested_at, value, source
    reference and correction chain; `counted` is what the line adds to the figure.
    """
    from schemas.seeds import load_catalogue
    from services.audit.common import AuditInputError, quantity
    from services.audit.explain import explain, find_pledge, write
    from streams.db import audit as store
    from streams.rollup import LOCAL_TZ, local_day

    catalogue = load_catalogue()
    try:
        pledge = find_pledge(catalogue, pledge_id)
    except AuditInputError as exc:
        raise click.BadParameter(str(exc), param_hint="PLEDGE") from None
    if out is not None and out.suffix.lower() not in (".csv", ".xlsx"):
        raise click.BadParameter(f"{out.name} must end in .csv or .xlsx", param_hint="--out")
    with store.snapshot(get_settings()) as conn:
        result = explain(
            conn, pledge, catalogue, at=moment, on=on.date() if on is not None else None
        )
    shown = "live" if moment is None else f"as of {moment.isoformat()}"
    console.print(
        f"[bold]{escape(pledge.title_zh)}[/] / {escape(pledge.title_en)} ({pledge.id}, "
        f"{pledge.metric}, {pledge.unit}) · status day {result.on} · {shown}"
    )
    console.print("[dim]ids shortened here; --out writes every column whole (source_ref, …)[/]")
    if result.figure is None:
        console.print("not measurable: no event measures this pledge, so there is no figure")
        return
    items = pledge.progress_from in ("items", "level")  # the item, or the latest report
    table = Table(box=None, pad_edge=False)
    for header in ("kind", *(("item",) if items else ()), "event", "district", "occurred"):
        table.add_column(header, no_wrap=True)
    table.add_column("ingested (UTC+8)", no_wrap=True)
    for header in ("value", "counted"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("corrections (→ corrects, ← corrected by)", overflow="fold", min_width=14)
    for line in result.lines[: SHOW * 3]:
        e = line.event
        chain = (f"→ {str(e.corrects)[:8]}" if e is not None and e.corrects else "") + " ".join(
            f"← {str(c.event_id)[:8]} {quantity(c.value)}" for c in line.corrected_by
        )
        table.add_row(
            line.kind,
            *((line.item or "",) if items else ()),
            "" if e is None else str(e.event_id)[:8],
            "" if e is None else e.district,
            "" if e is None else local_day(e.occurred_at).isoformat(),
            "" if e is None else f"{e.ingested_at.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M:%S}",
            "" if line.value is None else quantity(line.value),
            quantity(line.counted),
            chain,
        )
    console.print(table)
    if len(result.lines) > SHOW * 3:
        console.print(f"… {len(result.lines) - SHOW * 3:,} more lines (all of them with --out)")
    if out is not None:
        write(result, out)
        console.print(f"{len(result.lines):,} lines written to {out}")
    verdict = "[green]= the figure shown[/]" if result.adds_up else "[bold red]≠[/]"
    console.print(
        f"{len(result.lines):,} lines, counted sum {quantity(result.total)} {verdict} "
        f"{quantity(result.figure)} {pledge.unit}"
    )
    if not result.adds_up:
        console.print(
            "[bold red]the ledger does not add up to the figure shown[/]: run "
            "`citystream audit replay` to list the rollup rows that differ"
        )
        sys.exit(EXIT_FOUND)

"""``citystream audit …``: the auditors' commands (registered on the main CLI).

Exit codes, for every command: **0** nothing wrong; **1** something does not hold (a
broken chain, a rollup that differs, a figure the events do not add up to); **2** the
command was called wrongly (Click's usage errors, an invalid TIME or PLEDGE); **3** the
audit could not run (PostgreSQL or Kafka unreachable) — nothing was checked; **4** (``replay
--source kafka``) Kafka holds a record this installation cannot decode (a compression
codec whose library is missing, or unknown) — nothing was checked, and the message names
the codec and the record. Not 1: the history is not shown wrong, only unread; not 3: Kafka
was reached, and waiting for it will not help — installing the library will.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from streams.settings import get_settings

if TYPE_CHECKING:
    from services.audit.verify import Break

console = Console()
err_console = Console(stderr=True)

EXIT_FOUND = 1
EXIT_UNAVAILABLE = 3
EXIT_UNDECODABLE = 4
# Breaks and differences listed on screen; the count says how many more there are.
SHOW = 20


def _unavailable(message: str, code: int = EXIT_UNAVAILABLE) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)} (nothing was checked)")
    sys.exit(code)


@contextmanager
def _reachable() -> Iterator[None]:
    """Database and Kafka failures become exit code 3 with the reason; a Kafka record that
    cannot be decoded here becomes exit code 4, saying which codec and which record."""
    from services.kafka.reader import KafkaReadError, UndecodableRecordError
    from streams.db import DatabaseError

    try:
        yield
    except UndecodableRecordError as exc:
        _unavailable(str(exc), EXIT_UNDECODABLE)
    except (DatabaseError, KafkaReadError) as exc:
        _unavailable(str(exc))


class _Instant(click.ParamType):
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from services.audit.common import AuditInputError, parse_instant

        if isinstance(value, datetime):
            return value
        try:
            return parse_instant(str(value), name=param.opts[0] if param else "TIME")
        except AuditInputError as exc:
            self.fail(str(exc), param, ctx)


INSTANT = _Instant()


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("–/s" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


@contextmanager
def _progress(what: str) -> Iterator[Callable[[int], Callable[[int], None]]]:
    """A progress bar with rate and time left; the hook gets the total, returns advance."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
        transient=False,
    )

    def hook(total: int) -> Callable[[int], None]:
        task = bar.add_task(what, total=total)
        return lambda n: bar.advance(task, n)

    with bar:
        yield hook


def _short(hex_digest: str) -> str:
    return hex_digest[:16] + "…" if len(hex_digest) == 64 else hex_digest


@click.group()
def audit() -> None:
    """Verify the ledger, replay history, reproduce past figures, explain every number.

    Exit codes: 0 nothing wrong; 1 something does not hold; 2 wrong usage; 3 could not run
    (PostgreSQL or Kafka unreachable); 4 a Kafka record this installation cannot decode.
    """


TRUST_HELP = (
    "An auditors' public key (PEM, from `audit keygen`) whose checkpoints are trusted "
    "(repeat for several) [env CITYSTREAM_AUDIT_TRUSTED_KEYS, paths separated by :]."
)


@audit.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keygen_cmd(path: Path) -> None:
    """Make an Ed25519 signing key for checkpoints: PATH (private, mode 600) and PATH.pub.

    The private key belongs to the auditors: keep it off the platform's machines (never in
    the database, the workers' settings or stack.env); give PATH.pub to whoever verifies.
    """
    from services.audit.checkpoint import CheckpointError, generate_key

    try:
        public, key = generate_key(path)
    except CheckpointError as exc:
        raise click.BadParameter(str(exc), param_hint="PATH") from None
    console.print(f"private key: {path} (mode 600: keep it with the auditors)")
    console.print(f"public key:  {public}")
    console.print(f"key id:      {key}")


@audit.command("checkpoint")
@click.option(
    "--key",
    "key_path",
    required=True,
    envvar="CITYSTREAM_AUDIT_SIGNING_KEY",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The auditors' private key (from `audit keygen`) [env CITYSTREAM_AUDIT_SIGNING_KEY].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("audit-checkpoints"),
    show_default=True,
    help="Folder the signed checkpoint file is written to (keep it with the audit papers).",
)
def checkpoint_cmd(key_path: Path, out: Path) -> None:
    """Sign every chain's head and publish it outside PostgreSQL.

    Verifies the whole ledger first (a broken ledger is not signed: exit 1), then signs,
    with the auditors' Ed25519 key, each chain's last offset, row count and head hash;
    writes the signed checkpoint to a file in --out and appends it to the Kafka topic
    city.audit-checkpoints.v1 (only the auditors' principal may write it). A later `audit
    verify` reports any rewrite of history before these heads, naming this checkpoint.
    """
    from services.audit import checkpoint
    from services.audit.verify import verify
    from services.kafka.client import DeliveryError, KafkaAuthenticationError
    from services.kafka.producer import publish_checkpoint
    from streams.settings import MissingCredentials

    try:
        key = checkpoint.load_private_key(key_path)
    except checkpoint.CheckpointError as exc:
        raise click.BadParameter(str(exc), param_hint="--key") from None
    settings = get_settings()
    with _reachable(), _progress("verifying chains") as hook:
        report = verify(settings, progress=hook)
    if not report.ok:
        console.print(
            f"[bold red]not signed[/]: {len(report.breaks)} broken link(s); run `citystream "
            "audit verify` to see them. A checkpoint vouches for a ledger that verifies."
        )
        sys.exit(EXIT_FOUND)
    payload = checkpoint.build_payload(
        chains=report.chain_heads(), settings=settings, signer=key.public_key()
    )
    document = checkpoint.sign(payload, key)
    path = checkpoint.write(document, payload, out)
    console.print(
        f"signed {len(payload['chains'])} chain head(s), {payload['rows']:,} rows, "
        f"key {payload['key_id']}, at {payload['created_at']}"
    )
    console.print(f"file:  {path}")
    try:
        partition, offset = publish_checkpoint(
            settings, settings.db_schema.encode(), checkpoint.canonical_document(document)
        )
    except (DeliveryError, KafkaAuthenticationError, MissingCredentials) as exc:
        _unavailable(f"the checkpoint is in {path} but was not published to Kafka: {exc}")
    topic = settings.topic_name("city.audit-checkpoints.v1")
    console.print(f"topic: {topic}[{partition}]@{offset}")


@audit.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A signed checkpoint file, or a folder of them, to check the ledger against "
    "(repeat for several). Without it, with --trust, every checkpoint on the topic.",
)
@click.option(
    "--trust",
    "trusted_paths",
    multiple=True,
    envvar="CITYSTREAM_AUDIT_TRUSTED_KEYS",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=TRUST_HELP,
)
@click.option(
    "--topic/--no-topic",
    "from_topic",
    default=None,
    help="Also (or not) check every checkpoint on city.audit-checkpoints.v1 (default: when "
    "--trust is given and no --checkpoint).",
)
def verify_cmd(
    checkpoint_paths: tuple[Path, ...], trusted_paths: tuple[Path, ...], from_topic: bool | None
) -> None:
    """Walk each topic-partition's hash chain in the ledger from the start, and check it
    against the auditors' signed checkpoints.

    Reports the first broken link of each partition precisely (event id, topic,
    partition, offset, expected and found hash): an edited, deleted, inserted or moved
    row, a column edited behind the hash, or a chain head that is not the last row. With
    checkpoints: any rewrite of a chain before a signed head (even a consistent one), naming
    the checkpoint it contradicts, and any checkpoint that is forged or signed by an unknown
    key.
    """
    from services.audit import checkpoint
    from services.audit.verify import verify

    if checkpoint_paths and not trusted_paths:
        raise click.UsageError(
            "--checkpoint needs the auditors' public key(s) with --trust: without them a "
            "forged checkpoint cannot be told from a real one"
        )
    if from_topic and not trusted_paths:
        raise click.UsageError("--topic needs the auditors' public key(s) with --trust")
    try:
        trusted = checkpoint.load_public_keys(trusted_paths)
    except checkpoint.CheckpointError as exc:
        raise click.BadParameter(str(exc), param_hint="--trust") from None
    documents = checkpoint.read_files(checkpoint_paths)
    if from_topic or (from_topic is None and trusted_paths and not checkpoint_paths):
        with _reachable():
            documents += _topic_checkpoints()
    settings = get_settings()
    with _reachable(), _progress("verifying chains") as hook:
        report = verify(settings, progress=hook, checkpoints=documents, trusted=trusted)
    table = Table(title=f"台账哈希链 Ledger hash chains · schema {settings.db_schema}")
    for header in ("topic", "partition", "rows", "head (sha256)", "状态 status"):
        table.add_column(header, justify="right" if header in ("partition", "rows") else "left")
    for chain in report.partitions:
        state = "[green]intact 完整[/]" if not chain.breaks else f"[red]{chain.breaks} broken[/]"
        # A re-created topic's chains are its own: topic#2 is the topic's second life.
        life = "" if chain.incarnation == 1 else f"#{chain.incarnation}"
        table.add_row(
            chain.topic + life,
            str(chain.partition),
            f"{chain.rows:,}",
            _short(chain.head.hex()),
            state,
        )
    console.print(table)
    firsts: dict[tuple[str, int, int], Break] = {}
    for found in report.breaks:
        firsts.setdefault((found.topic, found.incarnation, found.partition), found)
    shown = list(firsts.values())[:SHOW]
    for found in shown:
        console.print(
            f"[bold red]BROKEN[/] {escape(found.where)} [bold]{found.kind}[/] "
            f"event {found.event_id or '—'}\n  {escape(found.detail)}\n"
            f"  expected: {escape(found.expected)}\n  found:    {escape(found.found)}"
        )
    _print_checkpoints(report, checked=bool(documents))
    rate = f"{report.rows:,} rows in {report.seconds:.2f} s ({report.rate:,.0f} rows/s)"
    if report.ok:
        against = (
            f" and agrees with {len(report.checkpoints)} signed checkpoint(s)"
            if report.checkpoints
            else ""
        )
        console.print(f"[green]OK[/] every link holds and every head matches{against}: {rate}")
        return
    failing = [f for f in report.findings if f.fails]
    if failing and not report.breaks:
        console.print(
            f"[bold red]{len(failing)} checkpoint finding(s)[/]; the chains themselves hold: {rate}"
        )
        sys.exit(EXIT_FOUND)
    more = len(report.breaks) - len(shown)
    console.print(
        f"[bold red]{len(report.breaks)} broken link(s)[/] in {len(firsts)} partition(s)"
        + (f" ({more} more after the first of each partition)" if more > 0 else "")
        + f": {rate}"
    )
    sys.exit(EXIT_FOUND)


def _topic_checkpoints() -> list[Any]:
    """Every checkpoint on the topic (malformed records as their errors)."""
    from services.audit import checkpoint
    from services.kafka.reader import checkpoint_documents

    settings = get_settings()
    topic = settings.topic_name("city.audit-checkpoints.v1")
    found: list[Any] = []
    for offset, value in checkpoint_documents(settings):
        try:
            found.append(checkpoint.parse(value, source=f"{topic}@{offset}"))
        except checkpoint.CheckpointError as exc:
            found.append(exc)
    return found


def _print_checkpoints(report: Any, *, checked: bool) -> None:
    if not checked:
        console.print(
            "[dim]no signed checkpoint checked (give the auditors' key with --trust): a chain "
            "rewritten to its head is only caught against a checkpoint[/]"
        )
        return
    for label in report.checkpoints:
        wrong = [f for f in report.findings if f.checkpoint == label and f.fails]
        state = "[green]holds[/]" if not wrong else f"[bold red]contradicted ({len(wrong)})[/]"
        console.print(f"{state} {escape(label)}", soft_wrap=True)
    for finding in report.findings[:SHOW]:
        title = {
            "contradicted": "[bold red]CONTRADICTS[/]",
            "missing": "[bold red]MISSING[/]",
            "bad_signature": "[bold red]FORGED[/] (bad signature)",
            "unknown_key": "[bold red]UNTRUSTED[/] (unknown key)",
            "malformed": "[bold red]MALFORMED[/]",
            "other_ledger": "[yellow]skipped[/]",
        }[finding.kind]
        where = f" {escape(finding.chain)}@{finding.offset}" if finding.chain else ""
        console.print(
            f"{title}{where} {escape(finding.checkpoint)}\n  {escape(finding.detail)}"
            + (
                f"\n  signed:   {escape(finding.expected)}\n  ledger:   {escape(finding.found)}"
                if finding.expected
                else ""
            ),
            soft_wrap=True,
        )


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
    with _reachable(), _progress(f"replaying from {source}") as hook:
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
@click.option(
    "--on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Status day, YYYY-MM-DD (default: TIME's date in Asia/Shanghai, as `pledges "
    "status` showed by default at that moment).",
)
@click.option("--year", type=int, help="Only this year's pledges (default: every year).")
def as_of_cmd(moment: datetime, on: datetime | None, year: int | None) -> None:
    """Pledge progress exactly as `pledges status` showed it at TIME.

    Only events ingested by TIME count, and corrections only if ingested by then.
    TIME is ISO 8601, e.g. 2024-06-30T18:00:00+08:00 (Asia/Shanghai without an offset).
    """
    from schemas.catalogue import load_catalogue
    from services.audit import store
    from services.audit.as_of import default_day, progress_as_of
    from services.pledges import selected, status_table

    catalogue = load_catalogue()
    if not selected(catalogue, year):
        raise click.BadParameter(f"no pledges for {year} in seeds/pledges/", param_hint="--year")
    day: date = on.date() if on is not None else default_day(moment)
    with _reachable(), store.snapshot(get_settings()) as conn:
        rows = progress_as_of(conn, at=moment, on=day, year=year, catalogue=catalogue)
        ingested = store.ingested_count(conn, ingested_by=moment)
    console.print(
        f"截至 As shown at {moment.isoformat()}: {ingested:,} ledger rows had been ingested"
    )
    console.print(status_table(rows, catalogue, on=day))


@audit.command("explain")
@click.argument("pledge_id", metavar="PLEDGE")
@click.option("--as-of", "moment", type=INSTANT, help="Explain the figure shown at this moment.")
@click.option(
    "--on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Status day, YYYY-MM-DD (default: today, or the --as-of moment's date).",
)
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
    from schemas.catalogue import load_catalogue
    from services.audit import store
    from services.audit.common import AuditInputError, quantity
    from services.audit.explain import explain, find_pledge, write
    from streams.rollup import LOCAL_TZ, local_day

    catalogue = load_catalogue()
    try:
        pledge = find_pledge(catalogue, pledge_id)
    except AuditInputError as exc:
        raise click.BadParameter(str(exc), param_hint="PLEDGE") from None
    if out is not None and out.suffix.lower() not in (".csv", ".xlsx"):
        raise click.BadParameter(f"{out.name} must end in .csv or .xlsx", param_hint="--out")
    with _reachable(), store.snapshot(get_settings()) as conn:
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
    items = pledge.progress_from == "items"
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

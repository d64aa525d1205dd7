"""``citystream audit keygen/checkpoint/verify``: the auditors' commands on the ledger as it is
(services/audit/); ``audit replay/as-of/explain`` are in :mod:`services.cli.audit_history`.

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
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
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

from services.cli.errors import EXIT_UNAVAILABLE, fail, group
from services.cli.output import console, err_console
from streams.settings import get_settings

if TYPE_CHECKING:
    from services.audit.verify import Break

# Something does not hold (a broken link, a differing rollup): what the audit is for.
EXIT_FOUND = 1
# Breaks and differences listed on screen; the count says how many more there are.
SHOW = 20


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
def progress(what: str) -> Iterator[Callable[[int], Callable[[int], None]]]:
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


def short(hex_digest: str) -> str:
    return hex_digest[:16] + "…" if len(hex_digest) == 64 else hex_digest


@group(unavailable=True)
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
    with progress("verifying chains") as hook:
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
        fail(
            f"the checkpoint is in {path} but was not published to Kafka: {exc}",
            EXIT_UNAVAILABLE,
        )
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
        documents += _topic_checkpoints()
    settings = get_settings()
    with progress("verifying chains") as hook:
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
            short(chain.head.hex()),
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

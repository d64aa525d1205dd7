"""What a department runs: ``emit`` one event, ``import`` a ledger (services/ledger_import/),
read its ``receipts``; and the operators' ``receipts-rebuild``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson
from rich.markup import escape

from services.cli.errors import fail
from services.cli.output import console, err_console
from streams.settings import get_settings


@click.command()
@click.argument("event_type")
@click.argument("fields", nargs=-1)
@click.option(
    "--json", "json_text", help="The whole event as a JSON object; FIELD=VALUE pairs override it."
)
@click.option(
    "--wait",
    is_flag=True,
    help="Wait for the worker's receipt: stored, or refused with its reason (exit 2); "
    "exit 3 if none came within --wait-timeout.",
)
@click.option(
    "--wait-timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds --wait waits for the receipt.",
)
def emit(
    event_type: str,
    fields: tuple[str, ...],
    json_text: str | None,
    wait: bool,
    wait_timeout: float,
) -> None:
    """Send one event of EVENT_TYPE built from FIELD=VALUE pairs.

    Example: citystream emit heating.area_connected district=shifo area_m2=1200

    Missing event_id, occurred_at and reported_at default to a new id and now. The event is
    sent as the department that owns its type, with that department's Kafka credentials
    (CITYSTREAM_KAFKA_<DEPARTMENT>_PASSWORD); a department field naming another is refused.
    """
    from schemas.envelope import new_event_id
    from schemas.rejections import Rejection
    from schemas.topics import BY_EVENT_TYPE
    from schemas.validation import decode
    from services.kafka.producer import Producer
    from services.kafka.receipts import ReceiptReader, ReceiptsError

    spec = BY_EVENT_TYPE.get(event_type)
    if spec is None:
        fail(
            f"event_type: {event_type!r} 不是已知的事件类型 / is not a known event type; "
            f"known: {', '.join(sorted(BY_EVENT_TYPE))} [unknown_event_type]"
        )
    data: dict[str, Any] = orjson.loads(json_text) if json_text else {}
    for pair in fields:
        key, sep, value = pair.partition("=")
        if not sep:
            fail(f"expected FIELD=VALUE, got {pair!r}")
        data[key] = value
    now = datetime.now(UTC).isoformat()
    data.setdefault("event_type", event_type)
    data.setdefault("event_id", str(new_event_id()))
    data.setdefault("occurred_at", now)
    data.setdefault("reported_at", now)
    # The event is sent as the department that owns its topic (its Kafka credentials); a
    # department field naming another one is refused here, and by the worker.
    sender = sorted(spec.departments)[0]
    data.setdefault("department", sender)
    outcome = decode(spec, orjson.dumps(data))
    if isinstance(outcome, Rejection):
        fail(f"{outcome.message} [{outcome.reason}]")
    settings = get_settings()
    reader = None
    if wait:
        try:  # opened before sending: the receipt comes after its end
            reader = ReceiptReader(settings, outcome.department)
            start = reader.end()
        except ReceiptsError as exc:
            fail(f"{exc}; nothing was sent")
    producer = Producer(settings, department=sender)
    try:
        (delivery,) = producer.send_all([outcome])
    finally:
        producer.close()
    console.print(
        f"sent {delivery.event_id} → {delivery.topic}[{delivery.partition}]@{delivery.offset}"
    )
    if reader is None:
        return
    position = (delivery.topic, delivery.partition, delivery.offset)
    try:
        with reader, console.status("waiting for the worker's receipt…"):
            found = reader.wait([position], start=start, timeout_s=wait_timeout)[position]
    except ReceiptsError as exc:
        fail(f"{exc}; the event was sent, its outcome is unknown")
    if found.outcome == "pending":
        err_console.print(
            f"[yellow]no receipt within {wait_timeout:.0f} s[/]: the worker is down or behind; "
            f"ask again later with `citystream receipts --department {outcome.department}`",
            soft_wrap=True,
        )
        sys.exit(3)
    receipt = found.receipt
    if receipt is not None and receipt.outcome == "refused":
        why = escape(f"{receipt.message} [{receipt.reason}]")
        err_console.print(f"[bold red]refused by the worker:[/] {why}", soft_wrap=True)
        sys.exit(2)
    what = (
        "stored in the ledger 已入账"
        if found.outcome == "stored"
        else "the ledger already held this event 台账中已有（counted once）"
    )
    console.print(f"receipt: {what}")


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--type",
    "event_type",
    help="Event type of every row, when the ledger has no 事件类型 column "
    "(e.g. heating.area_connected).",
)
@click.option(
    "--department",
    help="Which of the departments whose Kafka credentials this process holds to send as "
    "(default: the only one held, or the owner of the ledger's type). It cannot name another "
    "department: the credentials decide.",
)
@click.option(
    "--mapping",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML or JSON file: ledger header → field name (null ignores the column).",
)
@click.option("--sheet", help="XLSX sheet to read (default: the first).")
@click.option("--dry-run", is_flag=True, help="Validate and report; send nothing.")
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the rejected rows (default: <stem>.rejects.csv beside FILE).",
)
@click.option(
    "--approved-by",
    help="Who approved the corrections: with --reason, a row changed since it was imported "
    "is sent as a correction of the difference (otherwise it is refused).",
)
@click.option("--reason", help="Why the changed rows are corrected (with --approved-by).")
@click.option(
    "--wait",
    is_flag=True,
    help="Wait until the worker has stored or refused every row sent, and print each row's "
    "outcome; a refused row is in the rejects file (exit 2), no receipt in time exits 3.",
)
@click.option(
    "--wait-timeout",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds --wait waits for the receipts.",
)
def import_(
    file: Path,
    event_type: str | None,
    department: str | None,
    mapping: Path | None,
    sheet: str | None,
    dry_run: bool,
    rejects_path: Path | None,
    approved_by: str | None,
    reason: str | None,
    wait: bool,
    wait_timeout: float,
) -> None:
    """Send the rows of a department's ledger (台账): FILE is .csv, .xlsx or .jsonl.

    Example: citystream import seeds/samples/heating_2024.xlsx --type heating.area_connected

    Every row is validated like any event before anything is sent, and compared with what
    the ledger already holds (the department's receipts): rows imported before are not sent
    again, a changed row is a correction (with --approved-by and --reason) or refused.
    Total rows (合计, 小计 …) are skipped. Rejected rows are written with row number, column
    and reason to the rejects file. Exit code 0: every row sent (or already imported); 2:
    some rows rejected (with --wait: or refused by the worker); 1: nothing imported
    (unreadable file, unknown column, Kafka down) or rows Kafka did not acknowledge; 3:
    --wait saw no receipt for some rows in time.
    """
    from services.ledger_import import ImportRequest, run_import

    request = ImportRequest(
        path=file,
        event_type=event_type,
        department=department,
        mapping_path=mapping,
        sheet=sheet,
        dry_run=dry_run,
        rejects_path=rejects_path,
        approved_by=approved_by,
        reason=reason,
        wait=wait,
        wait_timeout_s=wait_timeout,
    )
    report = run_import(request, get_settings(), console)
    sys.exit(report.exit_code)


@click.command()
@click.option("--department", required=True, help="Whose receipts: heating, housing, …")
@click.option(
    "--since",
    "since_text",
    default=None,
    help="From this moment (ISO 8601, e.g. 2024-11-30 or 2024-11-30T08:00, Asia/Shanghai "
    "unless an offset is given; a date is its start). Default: 24 hours ago.",
)
@click.option("--until", "until_text", default=None, help="Up to this moment (default: now).")
@click.option("--refused", is_flag=True, help="Only the records the worker refused.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every receipt to FILE.csv (UTF-8 with BOM, for Excel) or FILE.xlsx.",
)
def receipts(
    department: str,
    since_text: str | None,
    until_text: str | None,
    refused: bool,
    out: Path | None,
) -> None:
    """What the worker did with the department's records: stored in the ledger, already in
    it (a duplicate, counted once), or refused with its reason.

    Example: citystream receipts --department heating --since 2024-11-30 --out 回执.xlsx

    Reads only the department's own receipts topic (city.receipts.<department>.v1): no
    database access is needed.
    """
    from schemas.topics import DEPARTMENTS
    from services.receipts.report import list_receipts

    if department not in DEPARTMENTS:
        fail(f"unknown department {department!r}; use one of {', '.join(DEPARTMENTS)}")
    list_receipts(
        get_settings(),
        console,
        department=department,
        since_text=since_text,
        until_text=until_text,
        refused_only=refused,
        out=out,
    )


@click.command("receipts-rebuild")
@click.option("--department", required=True, help="Whose receipts to publish again.")
def receipts_rebuild(department: str) -> None:
    """Operators: publish a department's receipts again from PostgreSQL (the ledger and the
    dead letters), e.g. for records stored before receipts existed, or after the receipts
    topic was lost. Needs CITYSTREAM_DATABASE_URL; safe to repeat (a receipt published
    again replaces itself)."""
    from schemas.topics import DEPARTMENTS
    from services.receipts.rebuild import rebuild

    if department not in DEPARTMENTS:
        fail(f"unknown department {department!r}; use one of {', '.join(DEPARTMENTS)}")
    published = rebuild(get_settings(), department)
    console.print(f"published {published:,} receipts of {department}'s records again")

"""``citystream``: the one command line for operators, departments and auditors.

Every command reads :class:`streams.settings.Settings` (env prefix ``CITYSTREAM_``).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from services.audit.commands import audit
from streams.settings import get_settings

console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> NoReturn:
    # Messages quote what the user sent and name reason codes in brackets: never markup.
    # soft_wrap: a long path in a message stays whole, so it can be copied (and grepped).
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
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


# --- database and topics ------------------------------------------------------------------------


@main.command()
def migrate() -> None:
    """Apply the numbered SQL migrations that are not applied yet (idempotent)."""
    from streams.db import DatabaseError
    from streams.db.migrate import apply

    settings = get_settings()
    try:
        report = apply(settings)
    except DatabaseError as exc:
        _fail(str(exc))
    console.print(f"database: {escape(report.mode.summary)}", soft_wrap=True)
    if report.mode.warning:
        err_console.print(f"[yellow]warning:[/] {escape(report.mode.warning)}", soft_wrap=True)
    for outcome in report.outcomes:
        m = outcome.migration
        console.print(f"{m.version:04d}_{m.name}: {outcome.status}")


@main.command()
def topics() -> None:
    """Create the city.* topics that are missing (unlimited retention, broker timestamps),
    set broker timestamps (LogAppendTime) on those that exist, and grant every principal its
    ACLs on them (as the admin: CITYSTREAM_KAFKA_ADMIN_PASSWORD)."""
    from services.kafka.client import KafkaAuthenticationError
    from services.kafka.topics import ensure_topics
    from streams.settings import MissingCredentials

    try:
        report = ensure_topics(get_settings())
    except (MissingCredentials, KafkaAuthenticationError) as exc:
        _fail(str(exc))
    console.print(
        "created: " + (", ".join(report.created) if report.created else "none, all exist")
    )
    for name, changes in report.fixed.items():
        console.print(f"fixed {name}: " + "; ".join(changes))
    console.print(f"ACLs in force: {len(report.grants)} (`citystream access show` lists them)")


# --- Kafka principals -----------------------------------------------------------------------


@main.group()
def access() -> None:
    """Kafka principals: what each may do, their passwords (admin only)."""


@access.command("show")
def access_show() -> None:
    """List every ACL the principals hold on this installation's topics and group."""
    from services.kafka.access import SUPER_USERS, grants

    settings = get_settings()
    table = Table("principal", "resource", "name", "operation")
    for grant in grants(settings):
        table.add_row(grant.principal, grant.resource, grant.name, grant.operation)
    console.print(table)
    console.print(
        f"super users (everything): {', '.join(SUPER_USERS)}; anything else is refused "
        "(allow.everyone.if.no.acl.found=false)"
    )


@access.command("users")
def access_users() -> None:
    """Set the SCRAM password of every principal whose password this process holds (as the
    admin). Compose's migrate step runs it, so a password changed in .env takes effect."""
    from services.kafka.acls import set_passwords
    from services.kafka.client import KafkaAuthenticationError
    from streams.settings import PRINCIPALS, MissingCredentials

    settings = get_settings()
    held = {
        principal: settings.kafka_password(principal).get_secret_value()
        for principal in PRINCIPALS
        if principal != "admin" and settings.has_kafka_credentials(principal)
    }
    try:
        set_passwords(settings, held)
    except (MissingCredentials, KafkaAuthenticationError) as exc:
        _fail(str(exc))
    console.print("passwords set: " + (", ".join(sorted(held)) or "none held"))


@access.command("rotate")
@click.argument("principal")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the new password from standard input instead of generating one.",
)
def access_rotate(principal: str, password_stdin: bool) -> None:
    """Give PRINCIPAL (a department, worker, auditor, admin) a new Kafka password, as the admin.

    Its open connections stay logged in; new ones need the new password. On the local stack
    the new password is written to .stack/stack.env; otherwise it is printed once, to hand
    to the principal's owner (and to put in compose's .env).
    """
    import secrets

    from services.kafka.acls import set_passwords
    from services.kafka.client import KafkaAuthenticationError
    from services.stack import state
    from streams.settings import (
        PRINCIPALS,
        STACK_ENV_FILE,
        MissingCredentials,
        password_variable,
        user_overrides,
    )

    if principal not in PRINCIPALS:
        _fail(f"{principal!r} is not a Kafka principal; one of {', '.join(PRINCIPALS)}")
    password = sys.stdin.readline().strip() if password_stdin else secrets.token_urlsafe(24)
    if len(password) < 16:
        _fail("the new password must have at least 16 characters")
    try:
        set_passwords(get_settings(), {principal: password})
    except (MissingCredentials, KafkaAuthenticationError) as exc:
        _fail(str(exc))
    variable = password_variable(principal)
    if "kafka_bootstrap" not in user_overrides() and STACK_ENV_FILE.exists():
        state.write_env({variable: password})
        console.print(f"{principal}: new password set and written to {STACK_ENV_FILE}")
    elif password_stdin:
        console.print(f"{principal}: new password set; give it to its owner as {variable}")
    else:
        console.print(f"{principal}: new password set; give it to its owner as {variable}:")
        console.print(password, markup=False, highlight=False)


# --- departments ------------------------------------------------------------------------------


@main.command()
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
    from schemas.topics import BY_EVENT_TYPE
    from schemas.validation import Rejection, decode
    from services.kafka.client import DeliveryError
    from services.kafka.producer import Producer
    from services.receipts import ReceiptReader, ReceiptsError

    spec = BY_EVENT_TYPE.get(event_type)
    if spec is None:
        _fail(
            f"event_type: {event_type!r} 不是已知的事件类型 / is not a known event type; "
            f"known: {', '.join(sorted(BY_EVENT_TYPE))} [unknown_event_type]"
        )
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
    # The event is sent as the department that owns its topic (its Kafka credentials); a
    # department field naming another one is refused here, and by the worker.
    sender = sorted(spec.departments)[0]
    data.setdefault("department", sender)
    outcome = decode(spec, orjson.dumps(data))
    if isinstance(outcome, Rejection):
        _fail(f"{outcome.message} [{outcome.reason}]")
    settings = get_settings()
    reader = None
    if wait:
        try:  # opened before sending: the receipt comes after its end
            reader = ReceiptReader(settings, outcome.department)
            start = reader.end()
        except ReceiptsError as exc:
            _fail(f"{exc}; nothing was sent")
    try:
        producer = Producer(settings, department=sender)
    except DeliveryError as exc:
        _fail(str(exc))
    try:
        (delivery,) = producer.send_all([outcome])
    except DeliveryError as exc:
        _fail(str(exc))
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
        _fail(f"{exc}; the event was sent, its outcome is unknown")
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


@main.command("import")
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
    from services.ledger_import import ImportRequest, LedgerError, run_import

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
    try:
        report = run_import(request, get_settings(), console)
    except LedgerError as exc:
        _fail(str(exc))
    sys.exit(report.exit_code)


@main.command()
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
    from services.receipt_report import ReceiptReportError, list_receipts

    if department not in DEPARTMENTS:
        _fail(f"unknown department {department!r}; use one of {', '.join(DEPARTMENTS)}")
    try:
        list_receipts(
            get_settings(),
            console,
            department=department,
            since_text=since_text,
            until_text=until_text,
            refused_only=refused,
            out=out,
        )
    except ReceiptReportError as exc:
        _fail(str(exc))


@main.command("receipts-rebuild")
@click.option("--department", required=True, help="Whose receipts to publish again.")
def receipts_rebuild(department: str) -> None:
    """Operators: publish a department's receipts again from PostgreSQL (the ledger and the
    dead letters), e.g. for records stored before receipts existed, or after the receipts
    topic was lost. Needs CITYSTREAM_DATABASE_URL; safe to repeat (a receipt published
    again replaces itself)."""
    from schemas.topics import DEPARTMENTS
    from services.receipt_report import ReceiptReportError, rebuild

    if department not in DEPARTMENTS:
        _fail(f"unknown department {department!r}; use one of {', '.join(DEPARTMENTS)}")
    try:
        published = rebuild(get_settings(), department)
    except ReceiptReportError as exc:
        _fail(str(exc))
    console.print(f"published {published:,} receipts of {department}'s records again")


# --- processing -------------------------------------------------------------------------------


@main.command()
def worker() -> None:
    """Consume every city.* topic into PostgreSQL until stopped (SIGTERM / Ctrl-C).

    Logs in to Kafka as the workers' principal (CITYSTREAM_KAFKA_WORKER_PASSWORD), which may
    not create topics: run `citystream topics` (as the admin) first.
    """
    from services.kafka.client import KafkaAuthenticationError
    from services.kafka.topics import TopicIds, wait_for_topics
    from streams.settings import MissingCredentials
    from streams.worker import run

    settings = get_settings()
    # Started during a Kafka outage (or before the broker, in compose): wait, don't exit.
    try:
        wait_for_topics(settings, principal="worker")
    except (MissingCredentials, KafkaAuthenticationError, LookupError) as exc:
        _fail(str(exc))
    run(settings, topic_ids=TopicIds(settings, principal="worker"))


@main.command()
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
    from schemas.catalogue import CatalogueError
    from services.demo import run_demo
    from services.report import ReportError
    from services.simulator import SimulationError
    from streams.db import DatabaseError

    try:
        run_demo(
            get_settings(), timeout_s=timeout, console=console, out=out, screenshots=screenshots
        )
    except CatalogueError as exc:
        _fail(f"the catalogue is invalid: {exc} (fix seeds/, see seeds/README.md)")
    except (SimulationError, ReportError) as exc:
        _fail(str(exc))
    except DatabaseError as exc:
        _fail(f"{exc} (is the stack up? `citystream stack status`)")


@main.command()
@click.option("--year", type=int, help="Only this year's pledges (default: every year).")
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Local date, YYYY-MM-DD (default: today in Asia/Shanghai).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("out/report.html"),
    show_default=True,
    help="Where to write the page.",
)
@click.option(
    "--screenshot",
    "screenshot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also save a PNG of the page's top (1280 px wide) as headless chromium draws it.",
)
def report(year: int | None, on: datetime | None, out: Path, screenshot_path: Path | None) -> None:
    """Write the pledge report: one self-contained HTML page (no network needed) with each
    pledge's actual against its schedule, status, projection and source quote."""
    from schemas.catalogue import load_catalogue
    from services.pledges import local_today, selected
    from services.report import ReportError, screenshot, write_report
    from streams.db import DatabaseError, connect

    day = on.date() if on is not None else local_today()
    catalogue = load_catalogue()
    if not selected(catalogue, year):
        _fail(f"no pledges for {year} in seeds/pledges/")
    try:
        with connect(get_settings()) as conn:
            path = write_report(conn, on=day, year=year, out=out, catalogue=catalogue)
        console.print(f"report: {path}")
        if screenshot_path is not None:
            console.print(f"screenshot: {screenshot(path, screenshot_path).resolve()}")
    except (DatabaseError, ReportError) as exc:
        _fail(str(exc))


# --- pledges ----------------------------------------------------------------------------------


@main.group()
def pledges() -> None:
    """Load the pledge catalogue into PostgreSQL; show progress against the schedule."""


@pledges.command("load")
@click.option("--year", type=int, help="Load only this year's pledges (default: every year).")
def pledges_load(year: int | None) -> None:
    """Validate seeds/ and store new or changed pledges with their daily schedule.

    An unchanged pledge is left as it is; a changed one is stored as a new version (the
    old one is kept). Run `citystream migrate` first.
    """
    from schemas.catalogue import CatalogueError
    from services.pledges import NoPledges, load, validated_catalogue
    from streams.db import DatabaseError, connect

    try:
        catalogue = validated_catalogue()
    except CatalogueError as exc:
        _fail(f"the catalogue is invalid: {exc} (fix seeds/, see seeds/README.md)")
    try:
        with connect(get_settings()) as conn:
            report = load(conn, catalogue=catalogue, year=year)
    except NoPledges as exc:
        _fail(str(exc))
    except DatabaseError as exc:
        _fail(f"{exc} (has `citystream migrate` run?)")
    revised = ", ".join(f"{pledge_id} (v{version})" for pledge_id, version in report.revised)
    console.print(f"added: {len(report.added)}  unchanged: {len(report.unchanged)}")
    console.print(f"new versions: {revised or 'none'}")


@pledges.command("status")
@click.option("--year", type=int, help="Only this year's pledges (default: every year).")
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Local date, YYYY-MM-DD (default: today in Asia/Shanghai).",
)
def pledges_status(year: int | None, on: datetime | None) -> None:
    """Progress of each pledge at the end of a day: target, actual, expected, gap, status."""
    from schemas.catalogue import load_catalogue
    from services.pledges import local_today, progress, selected, status_table
    from streams.db import DatabaseError, connect

    day = on.date() if on is not None else local_today()
    catalogue = load_catalogue()
    if not selected(catalogue, year):
        _fail(f"no pledges for {year} in seeds/pledges/")
    try:
        with connect(get_settings()) as conn:
            rows = progress(conn, on=day, year=year, catalogue=catalogue)
    except DatabaseError as exc:
        _fail(str(exc))
    console.print(status_table(rows, catalogue, on=day))


# --- simulation -------------------------------------------------------------------------------


@main.command()
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
    achievements; for 2024 each pledge is paced on purpose (see services/simulator.py).
    Event ids come from the seed, so sending the same plan again counts nothing twice.
    """
    from services.simulator import DEFAULT_SEED, SimulationError
    from services.simulator_run import run_simulation

    try:
        run_simulation(
            None if dry_run else get_settings(),
            year=year,
            seed=DEFAULT_SEED if seed is None else seed,
            until=until.date() if until is not None else None,
            dry_run=dry_run,
            console=console,
        )
    except SimulationError as exc:
        _fail(str(exc))


# --- dashboards -------------------------------------------------------------------------------


@main.group()
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
            _fail(f"stale: {', '.join(map(str, stale))}; run `citystream dashboards build`")
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
    from dashboards.push import GrafanaClientTransport, PushError, describe, push, resources

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
        _fail("--token (or GRAFANA_TOKEN) is required: a token of a Grafana service account")
    if secret is None:
        _fail("set CITYSTREAM_GRAFANA_DB_PASSWORD: the data source logs in as grafana_reader")
    try:
        for line in push(GrafanaClientTransport(url, token), found):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    except PushError as exc:
        _fail(str(exc))


# --- audit (services/audit/commands.py) ------------------------------------------------------

main.add_command(audit)


if __name__ == "__main__":
    main()

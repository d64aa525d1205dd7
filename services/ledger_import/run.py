"""Stage 8, run: the whole import as `citystream import` runs it, wiring the stages to Kafka
(the producer; the department's receipts topic, for what the ledger holds and, with
``--wait``, for the worker's verdicts) and to the console.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from schemas.topics import BY_EVENT_TYPE, DEPARTMENTS, TopicSpec
from services.ledger_import.base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_UNCONFIRMED,
    LedgerError,
    RowRejection,
)
from services.ledger_import.files import open_ledger
from services.ledger_import.headers import read_mapping
from services.ledger_import.layout import Options, ledger_columns
from services.ledger_import.plan import Plan, plan_import
from services.ledger_import.report import (
    default_rejects_path,
    describe,
    is_our_rejects,
    print_outcomes,
    progress_bar,
    summary,
    write_rejects,
)
from services.ledger_import.send import send_plan
from services.ledger_import.state import Approval, compare
from services.ledger_import.wait import RowOutcome, row_outcomes, sent_positions
from streams.settings import Settings, password_variable

# How long --wait waits for the worker's receipts by default.
WAIT_TIMEOUT_S = 120.0


@dataclass
class ImportReport:
    path: Path
    rows_read: int = 0
    sent: int = 0
    valid: int = 0
    duplicates: int = 0
    rejected: list[RowRejection] = field(default_factory=list)
    rejects_path: Path | None = None
    seconds: float = 0.0
    exit_code: int = EXIT_OK
    # With --wait: one line per row sent (and per correction), in row order.
    outcomes: list[RowOutcome] = field(default_factory=list)
    waited_s: float = 0.0

    @property
    def by_reason(self) -> Counter[str]:
        return Counter(r.reason for r in self.rejected)

    @property
    def by_outcome(self) -> Counter[str]:
        return Counter(o.outcome for o in self.outcomes)


@dataclass(frozen=True)
class ImportRequest:
    path: Path
    event_type: str | None = None
    department: str | None = None
    mapping_path: Path | None = None
    sheet: str | None = None
    dry_run: bool = False
    rejects_path: Path | None = None
    # Both or neither: a changed row is then sent as a correction (stage state).
    approved_by: str | None = None
    reason: str | None = None
    # Wait for the worker's receipt of every row sent (stage wait), at most this long.
    wait: bool = False
    wait_timeout_s: float = WAIT_TIMEOUT_S

    def approval(self) -> Approval | None:
        by, why = (self.approved_by or "").strip(), (self.reason or "").strip()
        if bool(by) != bool(why):
            raise LedgerError(
                "--approved-by and --reason go together: a correction names who approved "
                "it and why, e.g. --approved-by 王科长 --reason '面积复核后更正'"
            )
        return Approval(by, why) if by else None


def run_import(request: ImportRequest, settings: Settings, console: Console) -> ImportReport:
    """The whole import as `citystream import` runs it.

    Order: the ledger's header (unknown columns fail here, before anything else), the
    broker, every row validated, the topics, what the ledger holds of these rows (from
    the department's receipts), then the new rows and the corrections sent; with --wait,
    the worker's receipt of each; the rejects file and the summary last. Raises
    LedgerError for a file-level problem, with nothing sent.
    """
    started = time.monotonic()
    rejects_path = request.rejects_path or default_rejects_path(request.path)
    if rejects_path.resolve() == request.path.resolve():
        raise LedgerError(f"--rejects {rejects_path} would overwrite the ledger itself")
    approval = request.approval()
    mapping = read_mapping(request.mapping_path) if request.mapping_path else None
    # The department is who authenticates to Kafka, not what a clerk types: see sender().
    department = request.department if request.dry_run else sender(request, settings)
    options = Options(request.event_type, department, mapping)
    report = ImportReport(path=request.path)
    with open_ledger(request.path, sheet=request.sheet) as ledger:
        try:
            layout = ledger_columns(ledger, options)
        finally:  # after the header rows are settled; before a refusal of them too
            describe(console, ledger)
        if not request.dry_run and department is not None:
            _log_in(settings, department)
        with progress_bar(console) as progress:
            task = progress.add_task("validating", total=ledger.total_hint)
            plan = plan_import(
                ledger, options, layout=layout, advance=lambda n: progress.advance(task, n)
            )
            progress.update(task, total=plan.rows_read, completed=plan.rows_read)
            if plan.rows_read == 0 and not plan.totals:
                raise LedgerError(f"{request.path} has no rows under its header")
            report.rows_read, report.valid = plan.rows_read, plan.valid
            report.duplicates = plan.duplicates
            if not request.dry_run and plan.valid:
                _send(request, settings, department, plan, approval, report, progress)
            report.rejected = sorted([*plan.rejected, *report.rejected], key=lambda r: r.row)
    report.seconds = time.monotonic() - started
    if any(r.reason == "delivery_failed" for r in report.rejected):
        report.exit_code = EXIT_FAILED
    elif report.rejected:
        report.exit_code = EXIT_REJECTED
    elif report.by_outcome["pending"]:
        report.exit_code = EXIT_UNCONFIRMED
    if report.rejected:
        write_rejects(rejects_path, ledger.headers, report.rejected)
        report.rejects_path = rejects_path
    elif rejects_path.exists() and is_our_rejects(rejects_path):
        rejects_path.unlink()  # left by an earlier import of this ledger; all fixed now
    if request.wait and not request.dry_run:
        print_outcomes(console, report.outcomes)
    summary(console, request, plan, report)
    return report


def _owner(spec: TopicSpec) -> str:
    return sorted(spec.departments)[0]


def sender(request: ImportRequest, settings: Settings) -> str | None:
    """The department this import authenticates to Kafka as, when it is decided before the
    rows are read: ``--department`` (only one whose Kafka password this process holds), the
    owner of ``--type``'s family, or the only department whose password it holds (a
    department's own machine). None: several are held (the local stack) and the ledger's
    rows decide — each family's rows then go as the department that owns it.

    Every row's ``department`` must then be this department (the worker refuses any other),
    so ``--department`` no longer chooses who a ledger claims to come from: it must match
    the credentials.
    """
    held = [d for d in DEPARTMENTS if settings.has_kafka_credentials(d)]
    wanted = request.department
    if wanted is None and request.event_type in BY_EVENT_TYPE:
        wanted = _owner(BY_EVENT_TYPE[request.event_type])
    if wanted is None:
        if not held:
            raise LedgerError(
                "this process holds no department's Kafka credentials: a ledger is sent "
                "with its department's own (set CITYSTREAM_KAFKA_<DEPARTMENT>_PASSWORD, e.g. "
                f"{password_variable('heating')})"
            )
        return held[0] if len(held) == 1 else None
    if wanted not in DEPARTMENTS:
        return wanted  # check_options names the valid ones
    if wanted not in held:
        named = "--department" if request.department else f"--type {request.event_type}"
        raise LedgerError(
            f"{named}: this import would send as department {wanted}, but this process holds "
            f"no Kafka credentials for {wanted} ({password_variable(wanted)}"
            + (f"; it holds {', '.join(held)}'s" if held else "")
            + "): the department is who authenticates, a ledger cannot be sent as another"
        )
    return wanted


def _log_in(settings: Settings, department: str) -> None:
    """Fail before reading the rows when Kafka cannot be reached or refuses the password."""
    from services.kafka.client import KafkaAuthenticationError, wait_for_broker

    try:
        wait_for_broker(
            settings, principal=department, timeout_s=min(10.0, settings.producer_timeout_s)
        )
    except KafkaAuthenticationError as exc:
        raise LedgerError(f"{exc}; nothing was sent") from exc
    except TimeoutError as exc:
        raise LedgerError(
            f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}); nothing was "
            "sent. Start the local stack with 'citystream stack up' or set "
            "CITYSTREAM_KAFKA_BOOTSTRAP to the broker's address, then import again "
            "(--dry-run checks the ledger without Kafka)"
        ) from exc


def _send(
    request: ImportRequest,
    settings: Settings,
    department: str | None,
    plan: Plan,
    approval: Approval | None,
    report: ImportReport,
    progress: Progress,
) -> None:
    """Stages state, send and wait, against Kafka."""
    from services.kafka.client import DeliveryError
    from services.kafka.producer import Producer
    from services.kafka.receipts import ReceiptReader, ReceiptsError
    from services.receipts.view import Outcome, Position

    departments = sorted({e.department for e in plan.entries.values() if not e.conflict})
    for name in departments:
        if name != department:
            _log_in(settings, name)
    with ExitStack() as stack:
        try:
            readers = {d: stack.enter_context(ReceiptReader(settings, d)) for d in departments}
            reader = next(iter(readers.values()))
            for spec in sorted({BY_EVENT_TYPE[e.event_type] for e in plan.to_send()}, key=str):
                if not reader.has_topic(settings.topic_name(spec.name)):
                    raise LedgerError(
                        f"Kafka has no topic {settings.topic_name(spec.name)}; nothing was "
                        "sent. Create the topics with 'citystream topics', then import again"
                    )
            # What the ledger holds of these rows, as the department's receipts show it.
            for department, reader in readers.items():
                ids = [e.event_id for e in plan.entries.values() if e.department == department]
                compare(plan, reader.ledger(ids), approval)
            # Receipts of what is sent now come after these offsets.
            starts = {d: reader.end() for d, reader in readers.items()}
        except ReceiptsError as exc:
            raise LedgerError(f"{exc}; nothing was sent") from exc
        to_send = plan.to_send()
        if to_send:
            try:
                producer = Producer(settings, department=department)
            except DeliveryError as exc:
                raise LedgerError(f"{exc}; nothing was sent") from exc
            send_task = progress.add_task("sending", total=len(to_send))
            try:
                report.sent, failed = send_plan(
                    plan, producer, advance=lambda n: progress.advance(send_task, n)
                )
            finally:
                producer.close()
            report.rejected.extend(failed)
        if not request.wait:
            return
        sent = sent_positions(plan)
        waited = time.monotonic()
        wait_task = progress.add_task("receipts", total=len(sent))
        found: dict[Position, Outcome] = {}
        for department, reader in readers.items():
            mine = [p for p, e in sent.items() if e.department == department]
            left = max(0.0, request.wait_timeout_s - (time.monotonic() - waited))
            try:
                found.update(
                    reader.wait(
                        mine,
                        start=starts[department],
                        timeout_s=left,
                        progress=lambda n: progress.advance(wait_task, n),
                    )
                )
            except ReceiptsError as exc:
                raise LedgerError(f"{exc}; the rows were sent, their outcome is unknown") from exc
        report.waited_s = time.monotonic() - waited
        report.outcomes, refused = row_outcomes(plan, sent, found)
        report.rejected.extend(refused)

"""Stage 6, run: the whole import as `citystream import` runs it, wiring the stages to the
real producer and the console.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from schemas.topics import BY_EVENT_TYPE
from services.ledger_import.base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REJECTED,
    LedgerError,
    RowRejection,
)
from services.ledger_import.files import open_ledger
from services.ledger_import.headers import Options, ledger_columns, read_mapping
from services.ledger_import.plan import plan_import
from services.ledger_import.report import (
    default_rejects_path,
    describe,
    is_our_rejects,
    progress_bar,
    summary,
    write_rejects,
)
from services.ledger_import.send import send_plan
from services.settings import Settings


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

    @property
    def by_reason(self) -> Counter[str]:
        return Counter(r.reason for r in self.rejected)


@dataclass(frozen=True)
class ImportRequest:
    path: Path
    event_type: str | None = None
    department: str | None = None
    mapping_path: Path | None = None
    sheet: str | None = None
    dry_run: bool = False
    rejects_path: Path | None = None


def run_import(request: ImportRequest, settings: Settings, console: Console) -> ImportReport:
    """The whole import as `citystream import` runs it.

    Order: the ledger's header (unknown columns fail here, before anything else), the
    broker, every row validated, the topics, then the valid rows sent; the rejects file
    and the summary last. Raises LedgerError for a file-level problem, with nothing sent.
    """
    from services.producer import DeliveryError, Producer, end_offsets, wait_for_broker

    started = time.monotonic()
    rejects_path = request.rejects_path or default_rejects_path(request.path)
    if rejects_path.resolve() == request.path.resolve():
        raise LedgerError(f"--rejects {rejects_path} would overwrite the ledger itself")
    mapping = read_mapping(request.mapping_path) if request.mapping_path else None
    options = Options(request.event_type, request.department, mapping)
    report = ImportReport(path=request.path)
    with open_ledger(request.path, sheet=request.sheet) as ledger:
        try:
            layout = ledger_columns(ledger, options)
        finally:  # after the header rows are settled; before a refusal of them too
            describe(console, ledger)
        if not request.dry_run:
            try:
                wait_for_broker(
                    settings.kafka_bootstrap, timeout_s=min(10.0, settings.producer_timeout_s)
                )
            except TimeoutError as exc:
                raise LedgerError(
                    f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}); nothing was "
                    "sent. Start the local stack with 'citystream stack up' or set "
                    "CITYSTREAM_KAFKA_BOOTSTRAP to the broker's address, then import again "
                    "(--dry-run checks the ledger without Kafka)"
                ) from exc
        with progress_bar(console) as progress:
            task = progress.add_task("validating", total=ledger.total_hint)
            plan = plan_import(
                ledger, options, layout=layout, advance=lambda n: progress.advance(task, n)
            )
            progress.update(task, total=plan.rows_read, completed=plan.rows_read)
            if plan.rows_read == 0:
                raise LedgerError(f"{request.path} has no rows under its header")
            report.rows_read, report.valid = plan.rows_read, plan.valid
            report.duplicates = plan.duplicates
            report.rejected = list(plan.rejected)
            if not request.dry_run and plan.valid:
                for spec in sorted({BY_EVENT_TYPE[e.event_type] for e in plan.to_send()}, key=str):
                    if not end_offsets(settings, spec.name):
                        raise LedgerError(
                            f"Kafka has no topic {settings.topic_name(spec.name)}; nothing was "
                            "sent. Create the topics with 'citystream topics', then import again"
                        )
                try:
                    producer = Producer(settings)
                except DeliveryError as exc:
                    raise LedgerError(f"{exc}; nothing was sent") from exc
                send_task = progress.add_task("sending", total=plan.valid)
                try:
                    report.sent, failed = send_plan(
                        plan, producer, advance=lambda n: progress.advance(send_task, n)
                    )
                finally:
                    producer.close()
                report.rejected = sorted([*report.rejected, *failed], key=lambda r: r.row)
    report.seconds = time.monotonic() - started
    if any(r.reason == "delivery_failed" for r in report.rejected):
        report.exit_code = EXIT_FAILED
    elif report.rejected:
        report.exit_code = EXIT_REJECTED
    if report.rejected:
        write_rejects(rejects_path, ledger.headers, report.rejected)
        report.rejects_path = rejects_path
    elif rejects_path.exists() and is_our_rejects(rejects_path):
        rejects_path.unlink()  # left by an earlier import of this ledger; all fixed now
    summary(console, request, plan, report)
    return report

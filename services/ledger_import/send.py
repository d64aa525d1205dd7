"""Stage 6, send: the planned events through the producer (``acks=all``), in batches, every
acknowledgement checked; a row Kafka did not take is reported by number, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from schemas.envelope import Envelope
from schemas.rejections import Rejection
from schemas.topics import BY_EVENT_TYPE
from schemas.validation import decode
from services.ledger_import.base import RowRejection
from services.ledger_import.plan import Entry, Plan

# Sends between two flushes: large enough to keep the producer's 256 KB batches full,
# small enough that a broker that stops answering is noticed within one batch.
SEND_BATCH = 5000


class EventSink(Protocol):
    """What :func:`send_plan` needs of :class:`services.kafka.producer.Producer`."""

    def send(self, event: Envelope) -> Any: ...

    def flush(self) -> None: ...


def _delivery_failure(entry: Entry, message: str) -> RowRejection:
    why = Rejection.build(
        "delivery_failed",
        None,
        None,
        rule="Kafka acknowledges every event",
        zh=f"未送达 Kafka（{message}）；请稍后重新导入同一台账，已送达的行不会重复计数",
        en=f"not delivered to Kafka ({message}); import the same ledger again later, "
        "rows already delivered count once",
    )
    return RowRejection.of(
        entry.row, why, column="", value="", cells=tuple(entry.cells.split("\x1f"))
    )


def send_plan(
    plan: Plan,
    producer: EventSink,
    *,
    batch_size: int = SEND_BATCH,
    advance: Callable[[int], None] | None = None,
) -> tuple[int, list[RowRejection]]:
    """Send every valid row; return (acknowledged, rows not delivered).

    Batches of ``batch_size`` are flushed and every acknowledgement checked, so each row
    that did not reach Kafka is reported by number. After a failed flush the rest are not
    tried: the broker is not answering, and each try would wait for the full timeout.
    """
    from services.kafka.client import DeliveryError

    entries = plan.to_send()
    sent = 0
    failed: list[RowRejection] = []
    for start in range(0, len(entries), batch_size):
        batch = entries[start : start + batch_size]
        futures: list[tuple[Entry, Any]] = []
        broken: str | None = None
        for n, entry in enumerate(batch, start=1):
            if advance and n % 500 == 0:
                advance(500)
            event = decode(BY_EVENT_TYPE[entry.event_type], entry.raw, now=plan.now)
            if isinstance(event, Rejection):  # decoded the same bytes a moment ago
                raise AssertionError(f"row {entry.row} decoded differently: {event.message}")
            try:
                futures.append((entry, producer.send(event)))
            except Exception as exc:  # a client error is this row's failure, not a crash
                broken = f"{type(exc).__name__}: {exc}"
                failed.append(_delivery_failure(entry, broken))
                break
        try:
            producer.flush()
        except DeliveryError as exc:
            broken = broken or str(exc)
        for entry, future in futures:
            if getattr(future, "is_done", True) and not future.failed():
                sent += 1
                # Where Kafka put it: what the receipt of it will name (--wait).
                meta = getattr(future, "value", None)
                if meta is not None:
                    entry.position = (meta.topic, meta.partition, meta.offset)
            else:
                reason = future.exception if future.is_done else "no acknowledgement in time"
                failed.append(_delivery_failure(entry, str(reason)))
                broken = broken or str(reason)
        if advance:
            advance(len(batch) % 500)
        if broken is not None:
            done = {f.row for f in failed} | {e.row for e, _ in futures}
            for entry in entries[start:]:
                if entry.row not in done:
                    failed.append(_delivery_failure(entry, f"not tried after: {broken}"))
            break
    failed.sort(key=lambda r: r.row)
    return sent, failed

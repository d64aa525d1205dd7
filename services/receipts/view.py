"""What a department makes of its receipts, without Kafka: the outcome of records it sent
(:class:`Waiting`), and what the ledger holds of its events (:func:`fold`). Pure, so the
import's stages use it without loading a Kafka client; :mod:`services.kafka.receipts` reads
the topic and feeds these.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.receipts import Mark, Receipt

Position = tuple[str, int, int]  # topic, partition, offset (as each send returns it)


@dataclass
class Outcome:
    """What became of one record sent, as far as its receipts say."""

    position: Position
    receipt: Receipt | None = None
    # A mark passed the record without a receipt for it: a duplicate whose receipt was
    # lost with a worker (stored and refused receipts are re-derived; see schemas.receipts).
    passed: bool = False

    @property
    def outcome(self) -> str:
        if self.receipt is not None:
            return self.receipt.outcome
        return "duplicate" if self.passed else "pending"


@dataclass
class HeldEvent:
    """What the ledger holds of one event: its JSON as stored, and the corrections of it."""

    event: dict[str, Any]
    # metric → sum of the deltas of the corrections stored for this event
    corrected: dict[str, Decimal] = field(default_factory=dict)
    corrections: int = 0


@dataclass
class LedgerView:
    """A department's ledger as its receipts show it (only the events asked for)."""

    events: dict[str, HeldEvent] = field(default_factory=dict)
    # source_ref of every correction the ledger holds for the department (their identity)
    correction_refs: set[str] = field(default_factory=set)
    receipts_read: int = 0


class Waiting:
    """Records sent, waiting for their receipts: :meth:`take` each decoded receipts record
    in topic order."""

    def __init__(self, positions: Collection[Position]) -> None:
        self.outcomes = {p: Outcome(p) for p in positions}
        self._open: dict[tuple[str, int], set[int]] = {}
        for topic, partition, offset in self.outcomes:
            self._open.setdefault((topic, partition), set()).add(offset)
        self._left = len(self.outcomes)

    @property
    def done(self) -> bool:
        return self._left == 0

    def take(self, decoded: list[Receipt] | Mark) -> int:
        """Settle what ``decoded`` tells; returns how many records it settled."""
        settled = 0
        if isinstance(decoded, Mark):
            # Every receipt below the mark came before it: a record still open below it
            # had none — a duplicate whose receipt died with a worker (schemas.receipts).
            offsets = self._open.get((decoded.topic, decoded.partition))
            for offset in [o for o in offsets or () if o < decoded.next_offset]:
                self.outcomes[(decoded.topic, decoded.partition, offset)].passed = True
                offsets.discard(offset)  # type: ignore[union-attr]
                settled += 1
        else:
            for receipt in decoded:
                offsets = self._open.get((receipt.topic, receipt.partition))
                if offsets is not None and receipt.offset in offsets:
                    self.outcomes[receipt.position].receipt = receipt
                    offsets.discard(receipt.offset)
                    settled += 1
        self._left -= settled
        return settled


def fold(records: Iterable[list[Receipt] | Mark], event_ids: Collection[str]) -> LedgerView:
    """A department's receipts, in topic order, folded into what the ledger holds of the
    events ``event_ids`` (see :meth:`ReceiptReader.ledger`)."""
    wanted = set(event_ids)
    view = LedgerView()
    seen: set[tuple[str, int, int, int]] = set()
    for decoded in records:
        if isinstance(decoded, Mark):
            continue
        for receipt in decoded:
            view.receipts_read += 1
            if receipt.outcome == "refused" or receipt.event is None:
                continue
            event = receipt.event
            corrects = event.get("corrects")
            if isinstance(corrects, str):
                if isinstance(receipt.source_ref, str):
                    view.correction_refs.add(receipt.source_ref)
                if corrects not in wanted or receipt.outcome != "stored":
                    continue
                key = (receipt.topic, receipt.incarnation, receipt.partition, receipt.offset)
                if key in seen:
                    continue  # the same receipt published again
                seen.add(key)
                held = view.events.get(corrects)
                if held is None:
                    # The original's receipt comes first on the topic (it was stored
                    # first); should it be missing, the correction waits for it here.
                    held = view.events[corrects] = HeldEvent({})
                _add_delta(held, event)
            elif receipt.event_id in wanted:
                held = view.events.get(receipt.event_id)
                if held is None:
                    view.events[receipt.event_id] = HeldEvent(event)
                elif not held.event:
                    held.event = event
    view.events = {k: v for k, v in view.events.items() if v.event}
    return view


def _add_delta(held: HeldEvent, correction: dict[str, Any]) -> None:
    metric, delta = correction.get("metric"), correction.get("delta")
    if not isinstance(metric, str):
        return
    try:
        amount = Decimal(str(delta))
    except InvalidOperation:
        return
    held.corrected[metric] = held.corrected.get(metric, Decimal(0)) + amount
    held.corrections += 1

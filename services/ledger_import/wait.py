"""Stage 7, wait (``--wait``): the worker's verdict on every row sent, from the department's
receipts (:meth:`services.kafka.receipts.ReceiptReader.wait`), matched to the rows by the Kafka
position each send returned.

A row the worker refused (a correction of an event the ledger does not hold, a reused id,
…) becomes a line of the rejects file like any rejected row, with the worker's reason, so
the clerk fixes it where the other refusals are. A row whose receipt did not come within
the time is ``pending``: the worker is down or far behind; ``citystream receipts`` tells
later. Pure: the caller reads the receipts.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from schemas.rejections import Rejection
from services.ledger_import.base import RowRejection
from services.ledger_import.plan import Entry, Plan
from services.receipts.view import Outcome, Position


@dataclass(frozen=True)
class RowOutcome:
    """What became of one row (or of a correction made of it)."""

    row: int
    ref: str
    event_type: str
    outcome: str  # stored, duplicate, refused, pending (no receipt in time)
    reason: str = ""
    message: str = ""


def sent_positions(plan: Plan) -> dict[Position, Entry]:
    """Every entry Kafka acknowledged, by the position it got."""
    return {e.position: e for e in plan.to_send() if e.position is not None}


def row_outcomes(
    plan: Plan, sent: dict[Position, Entry], found: dict[Position, Outcome]
) -> tuple[list[RowOutcome], list[RowRejection]]:
    """(one outcome per row sent, in row order; the worker's refusals as rejected rows)."""
    outcomes: list[RowOutcome] = []
    refused: list[RowRejection] = []
    for position, entry in sorted(sent.items(), key=lambda item: item[1].row):
        result = found.get(position, Outcome(position))
        receipt = result.receipt
        ref = str(orjson.loads(entry.raw).get("source_ref") or "")
        if receipt is not None and receipt.outcome == "refused":
            why = Rejection(
                receipt.reason or "refused",
                receipt.field,
                receipt.value,
                receipt.rule or "",
                receipt.message_zh or "",
                receipt.message_en or "",
            )
            name = receipt.field or ""
            refused.append(
                RowRejection.of(
                    entry.row,
                    why,
                    column=plan.column_of.get(name, name),
                    value=(receipt.value or "").strip("'"),
                    cells=tuple(entry.cells.split("\x1f")),
                )
            )
            message = receipt.message_zh or receipt.message
        elif receipt is None and result.passed:
            message = "the ledger already held this event (its receipt was re-derived without it)"
        else:
            message = ""
        outcomes.append(
            RowOutcome(
                entry.row,
                ref,
                entry.event_type,
                result.outcome,
                reason=receipt.reason or "" if receipt is not None else "",
                message=message,
            )
        )
    return outcomes, refused

"""Stage 5, state: each valid row compared with what the ledger already holds for its
department and reference, before anything is sent.

What the ledger holds comes from the department's own receipts topic
(:class:`services.receipts.LedgerView`): every stored receipt carries the event as stored,
and corrections are events too, so the department sees its events and their restated
figures with nothing but its own Kafka credentials. A row is then:

- **new**: the ledger has no event under its id → sent;
- **unchanged** ("already imported"): the ledger holds it with the same content and the
  same figures, corrections included → not sent (a changed 上报日期 alone counts as
  unchanged: the ledger keeps the first report);
- **changed** in an amount: with ``--approved-by`` and ``--reason`` it becomes one
  correction event per changed metric (``<family>.correction`` of the difference, booked on
  the original's subdistrict, day and project, so the dashboards show a restatement); its
  reference (审批单号, a correction's identity) is derived from the row's reference, the
  number of corrections before it and the new figure, so importing the corrected file again
  finds the figure restated and the row unchanged — never a second correction. Without
  them the row is refused here (``changed_since_import``), saying old → new and how to
  submit the correction;
- **changed** in anything a correction cannot change (the subdistrict, the date, the
  project, the type, a correction row itself) → refused here (``changed_not_correctable``)
  with what changed and what to do instead.

So the worker never receives a changed row under a known id, which it would dead-letter as
``duplicate_event_id`` behind the clerk's back. Pure: no socket (the caller reads the view).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from schemas.corrections import Correction
from schemas.envelope import Envelope, ledger_event_id
from schemas.rejections import Rejection
from schemas.topics import BY_EVENT_TYPE
from schemas.validation import decode
from services.ledger_import.base import RowRejection
from services.ledger_import.cells import quoted
from services.ledger_import.headers import BASE_UNIT_LABELS
from services.ledger_import.plan import Entry, Plan
from services.ledger_import.totals import AMOUNT_FIELDS
from services.receipts.view import HeldEvent, LedgerView

# Fields a re-import may differ in without being a change: the ledger keeps the first report.
_NOT_COMPARED = frozenset({"reported_at", *AMOUNT_FIELDS})
# A correction's reference may be at most 200 characters (schemas.fields.Name).
_REF_ROOM = 150


@dataclass(frozen=True)
class Approval:
    """``--approved-by`` and ``--reason``: what turns a changed row into a correction."""

    approved_by: str
    reason: str


@dataclass(frozen=True)
class Change:
    """One amount of a row that differs from the ledger's (restated) figure."""

    field: str
    metric: str
    old: Decimal  # the ledger's figure now, corrections included (base unit)
    new: Decimal  # the row's (base unit)

    @property
    def delta(self) -> Decimal:
        return self.new - self.old


def compare(plan: Plan, view: LedgerView, approval: Approval | None) -> None:
    """Set each valid row's status against ``view``; refusals go to ``plan.rejected``,
    corrections to ``plan.corrections``."""
    plan.compared = True
    for entry in plan.entries.values():
        if entry.conflict or entry.status != "new":
            continue
        held = view.events.get(entry.event_id)
        if held is None:
            continue
        row = decode(BY_EVENT_TYPE[entry.event_type], entry.raw, now=plan.now)
        spec = BY_EVENT_TYPE.get(str(held.event.get("event_type")))
        stored = None if spec is None else decode(spec, orjson.dumps(held.event), now=plan.now)
        if isinstance(row, Rejection) or stored is None or isinstance(stored, Rejection):
            continue  # cannot happen for rows decode accepted; the worker judges
        _compare_one(plan, entry, row, stored, held, view, approval)
    plan.rejected.sort(key=lambda r: r.row)


def _compare_one(
    plan: Plan,
    entry: Entry,
    row: Envelope,
    stored: Envelope,
    held: HeldEvent,
    view: LedgerView,
    approval: Approval | None,
) -> None:
    new, old = row.model_dump(mode="json"), stored.model_dump(mode="json")
    differing = sorted(
        name
        for name in set(new) | set(old)
        if name not in _NOT_COMPARED and new.get(name) != old.get(name)
    )
    restated = {m: q + held.corrected.get(m, Decimal(0)) for m, q in stored.measures().items()}
    measures = row.measures()
    if not differing and measures == restated:
        entry.status = "unchanged"
        return
    entry.status = "changed"
    if differing or set(measures) != set(restated) or isinstance(row, Correction):
        _refuse(plan, entry, _not_correctable(plan, row, stored, differing, restated))
        return
    fields = _fields_of_metrics(row)
    changes = [
        Change(fields.get(metric, metric), metric, restated[metric], quantity)
        for metric, quantity in sorted(measures.items())
        if quantity != restated[metric]
    ]
    if approval is None:
        _refuse(plan, entry, _needs_approval(plan, entry, changes, held))
        return
    made: list[Entry] = []
    for change in changes:
        outcome = _correction(plan, entry, stored, change, held, approval)
        if isinstance(outcome, Rejection):
            _refuse(plan, entry, outcome)
            return
        made.append(outcome)
    for correction, change in zip(made, changes, strict=True):
        ref = str(orjson.loads(correction.raw)["source_ref"])
        view.correction_refs.add(ref)
        sign = "+" if change.delta > 0 else ""
        plan.correction_notes.append(
            (
                entry.row,
                f"{_header(plan, change.field)} {_in_column(plan, change.field, change.old)} → "
                f"{_in_column(plan, change.field, change.new)} "
                f"({sign}{_in_column(plan, change.field, change.delta)}), reference {ref}",
            )
        )
    plan.corrections.extend(made)


def correction_ref(ref: str, number: int, metric: str, new: Decimal) -> str:
    """The reference (审批单号) of the ``number``-th correction of the row ``ref`` setting
    ``metric`` to ``new``: a function of the row and its new figure only, so the same
    corrected file gives the same correction, and the worker counts it once."""
    figure = format(new.normalize(), "f")
    digest = hashlib.sha256(f"{ref}\x1f{metric}\x1f{figure}".encode()).hexdigest()[:8]
    return f"{ref[:_REF_ROOM]}~更正{number}~{metric.rpartition('.')[2]}~{digest}"


def _correction(
    plan: Plan, entry: Entry, stored: Envelope, change: Change, held: HeldEvent, by: Approval
) -> Entry | Rejection:
    """The correction event of one change, judged by decode like any event."""
    family = BY_EVENT_TYPE[entry.event_type].family
    event_type = f"{family}.correction"
    ref = correction_ref(str(stored.source_ref), held.corrections + 1, change.metric, change.new)
    # Booked where the original is (its subdistrict, day and project, so its partition
    # too): the dashboards then show the original's figure restated. Reported as of the
    # row's own report date at the earliest: the same row always gives the same event.
    row = decode(BY_EVENT_TYPE[entry.event_type], entry.raw, now=plan.now)
    reported = max(stored.occurred_at, row.reported_at) if isinstance(row, Envelope) else None
    data: dict[str, Any] = {
        "event_type": event_type,
        "event_id": str(ledger_event_id(entry.department, ref)),
        "department": entry.department,
        "district": str(stored.district),
        "occurred_at": stored.occurred_at.isoformat(),
        "reported_at": (reported or stored.reported_at).isoformat(),
        "source_ref": ref,
        "corrects": str(stored.event_id),
        "metric": change.metric,
        "delta": format(change.delta.normalize(), "f"),
        "reason": by.reason,
        "approved_by": by.approved_by,
    }
    if stored.project is not None:
        data["project"] = stored.project
    raw = orjson.dumps(data)
    outcome = decode(BY_EVENT_TYPE[event_type], raw, now=plan.now)
    if isinstance(outcome, Rejection):
        return outcome
    return Entry(
        entry.row,
        event_type,
        raw,
        entry.cells,
        department=entry.department,
        event_id=data["event_id"],
        status="correction",
    )


def _fields_of_metrics(event: Envelope) -> dict[str, str]:
    """metric → the field that feeds it (area_m2 → heating.connected_area_m2): the event
    rebuilt with a distinct figure in each amount field, and its measures read back."""
    values = {name: getattr(event, name) for name in type(event).model_fields}
    probes = {
        name: 7919 * (i + 1)
        for i, name in enumerate(n for n in AMOUNT_FIELDS if values.get(n) is not None)
    }
    probe = type(event).model_construct(**{**values, **probes})
    return {
        metric: name
        for metric, quantity in probe.measures().items()
        for name, value in probes.items()
        if quantity == value
    }


def _in_column(plan: Plan, name: str, value: Decimal) -> str:
    """A base-unit figure as the clerk's column shows it: 128600 → 12.86 in 万㎡."""
    column = plan.columns.get(name)
    scale = column.scale if column is not None else Decimal(1)
    unit = column.unit_label if column is not None else BASE_UNIT_LABELS.get(name, "")
    shown = format((value / scale).normalize(), "f")
    return f"{shown} {unit}".strip()


def _header(plan: Plan, name: str) -> str:
    return plan.column_of.get(name, name)


def _cell(plan: Plan, entry: Entry, name: str) -> str:
    """The row's cell of a field, as written."""
    column = plan.columns.get(name)
    cells = entry.cells.split("\x1f")
    return cells[column.index] if column is not None and column.index < len(cells) else ""


def _needs_approval(plan: Plan, entry: Entry, changes: list[Change], held: HeldEvent) -> Rejection:
    first = changes[0]
    listed_zh = "；".join(
        ("" if len(changes) == 1 else f"{_header(plan, c.field)} ")
        + f"{_in_column(plan, c.field, c.old)} → {_in_column(plan, c.field, c.new)}"
        for c in changes
    )
    deltas = ", ".join(
        f"{_header(plan, c.field)} {'+' if c.delta > 0 else ''}{_in_column(plan, c.field, c.delta)}"
        for c in changes
    )
    was = "（含已报更正）" if held.corrections else ""
    was_en = " (after the corrections already recorded)" if held.corrections else ""
    return Rejection.build(
        "changed_since_import",
        first.field,
        quoted(_cell(plan, entry, first.field) or _in_column(plan, first.field, first.new)),
        rule="a changed figure is sent as a correction, with --approved-by and --reason",
        zh=f"该行导入后被改动：{listed_zh}{was}。台账中仍是原数；如确需更正，请加 "
        f"--approved-by 审批人 --reason 更正原因 重新导入本台账，将以更正事件报送差额（{deltas}）",
        en=f"changed since it was imported: {listed_zh}{was_en}. The ledger still holds the "
        "old figure; to correct it, import this ledger again with --approved-by NAME "
        f"--reason TEXT and the difference is sent as a correction ({deltas})",
    )


def _not_correctable(
    plan: Plan,
    row: Envelope,
    stored: Envelope,
    differing: list[str],
    restated: dict[str, Decimal],
) -> Rejection:
    new, old = row.model_dump(mode="json"), stored.model_dump(mode="json")
    names = differing or sorted(n for n in AMOUNT_FIELDS if new.get(n) != old.get(n))
    listed = "；".join(
        f"{_header(plan, n)} {_plain(old.get(n))} → {_plain(new.get(n))}" for n in names
    )
    family = BY_EVENT_TYPE[row.event_type_name].family
    if isinstance(row, Correction):
        zh = "该更正已报送，不能修改；如需再次更正，请用新的参考号另报一条更正"
        en = "this correction is already recorded and cannot change; send a new correction "
        en += "with its own reference instead"
    else:
        metrics = ", ".join(
            f"metric={m} delta=-{format(q.normalize(), 'f')}" for m, q in restated.items()
        )
        zh = (
            "更正只能改数量，不能改街道、日期、项目或类型；请保留原行不动。若原行有误："
            f"先将原事件更正为 0（citystream emit {family}.correction corrects={stored.event_id} "
            f"{metrics} reason=… approved_by=… source_ref=审批单号），再以新的台账编号报送新行"
        )
        en = (
            "a correction changes amounts only, not the subdistrict, date, project or type; "
            "leave the row as it was imported. If it was wrong: correct the old event to zero "
            f"(citystream emit {family}.correction corrects={stored.event_id} {metrics} "
            "reason=… approved_by=… source_ref=<approval no.>), then send the new facts under a "
            "new reference (台账编号)"
        )
    return Rejection.build(
        "changed_not_correctable",
        names[0] if names else None,
        quoted(_plain(new.get(names[0]))) if names else None,
        rule="an imported row keeps its subdistrict, date, project and type",
        zh=f"该行导入后被改动：{listed}。{zh}",
        en=f"changed since it was imported: {listed}. {en}",
    )


def _plain(value: Any) -> str:
    return "" if value is None else str(value)


def _refuse(plan: Plan, entry: Entry, why: Rejection) -> None:
    name = why.field or ""
    plan.rejected.append(
        RowRejection.of(
            entry.row,
            why,
            column=plan.column_of.get(name, ""),
            value=why.value.strip("'") if why.value else "",
            cells=tuple(entry.cells.split("\x1f")),
        )
    )

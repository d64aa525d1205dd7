"""Which decoded events enter the ledger: the sink's acceptance rules as pure functions.

``streams.db.ledger.write_batch`` applies them to each batch against what it reads from
the ledger; ``services.audit.replay`` applies them to a replayed history against the state
it has built up itself, so a replay judges every record by the same code as the sink did.

- An event id already recorded with the same content is a redelivery and adds nothing;
  with other content it is refused (``duplicate_event_id``).
- A correction must name an original already recorded (or arriving in the same batch), of
  its own family, having the corrected metric, on the same district, and must not take
  that event's figure below zero (net of the corrections accepted before it).
- A correction is applied once: its department's reference (``source_ref``, 审批单号) is its
  identity, so the same correction re-sent under a new event_id is refused
  (``duplicate_correction``), while two corrections of one event with their own references
  both apply.

No I/O here: the callers fetch what the ledger holds and pass it in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TypeVar
from uuid import UUID

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.rejections import Rejection
from streams.batch import reused_event_id, sink_rejection

# What a correction is judged against: the corrected event's type, district and measures.
Original = tuple[str, str, Mapping[str, Decimal]]
# (corrected event id, metric) → sum of the deltas accepted so far.
NetCorrections = dict[tuple[UUID, str], Decimal]
# (department, source_ref) of every correction accepted so far.
CorrectionRefs = set[tuple[str, str | None]]

R = TypeVar("R")  # whatever the caller carries beside each event (a Kafka record, a row)
C = TypeVar("C")  # how the caller represents an event's content (payload, digest)


def split_known(
    accepted: Sequence[tuple[R, Envelope]],
    stored: Mapping[UUID, C],
    content: Callable[[Envelope], C],
) -> tuple[list[tuple[R, Envelope]], list[tuple[R, Rejection]]]:
    """New events, and events whose id is recorded (``stored``: id → content) for *other*
    content; an id recorded with equal content is a redelivery and is in neither list.

    The same id with the same content is a redelivery and simply adds nothing; the same id
    with other content is a department reusing an id, which would be silently lost.
    """
    fresh: list[tuple[R, Envelope]] = []
    conflicts: list[tuple[R, Rejection]] = []
    for record, event in accepted:
        if event.event_id not in stored:
            fresh.append((record, event))
        elif stored[event.event_id] != content(event):
            conflicts.append((record, reused_event_id(event)))
    return fresh, conflicts


def original_of(event: Envelope) -> Original:
    return (event.event_type_name, str(event.district), event.measures())


def correction_ref(event: Correction) -> tuple[str, str | None]:
    return (event.department, event.source_ref)


def judge_corrections(
    fresh: Sequence[tuple[R, Envelope]],
    originals: dict[UUID, Original],
    net: NetCorrections,
    refs: CorrectionRefs,
) -> tuple[list[tuple[R, Envelope]], list[tuple[R, Rejection]]]:
    """Keep every original and the corrections the rules accept, in the order given.

    ``originals`` (id → :data:`Original`) must hold at least the events the batch's
    corrections name, ``net`` their accepted corrections, ``refs`` at least the references
    of the batch's corrections that are already recorded; all three are updated in place
    with this batch's originals, accepted deltas and references, so a caller can carry them
    forward.
    """
    # Originals arriving in this very batch, ahead of their correction.
    for _, event in fresh:
        if not isinstance(event, Correction):
            originals.setdefault(event.event_id, original_of(event))
    kept: list[tuple[R, Envelope]] = []
    refused: list[tuple[R, Rejection]] = []
    for record, event in fresh:
        if not isinstance(event, Correction):
            kept.append((record, event))
            continue
        ref = correction_ref(event)
        if ref in refs:
            why: Rejection | None = duplicate_correction(event)
        else:
            why = judge_correction(event, originals.get(event.corrects), net)
        if why is None:
            key = (event.corrects, event.metric)
            net[key] = net.get(key, Decimal(0)) + event.delta
            refs.add(ref)
            kept.append((record, event))
        else:
            refused.append((record, why))
    return kept, refused


def judge_correction(
    event: Correction, original: Original | None, net: Mapping[tuple[UUID, str], Decimal]
) -> Rejection | None:
    """Why ``event`` cannot be accepted against ``original`` and the deltas so far, or None."""
    target = str(event.corrects)
    if original is None:
        return sink_rejection(
            "unknown_corrected_event",
            "corrects",
            target,
            "corrects names an event in the ledger",
            zh="被更正的事件不在台账中（请核对 event_id，或先报送原事件）",
            en="the corrected event is not in the ledger (check the event_id, or send it first)",
        )
    event_type, district, measures = original
    if event_type.partition(".")[0] != event.family or event_type.endswith(".correction"):
        return sink_rejection(
            "correction_family_mismatch",
            "corrects",
            target,
            f"an event of the {event.family} family",
            zh=f"被更正的事件是 {event_type}，不是本部门的原始事件",
            en=f"the corrected event is a {event_type}, not an original {event.family} event",
        )
    if event.metric not in measures:
        return sink_rejection(
            "correction_metric_mismatch",
            "metric",
            event.metric,
            f"one of {', '.join(sorted(measures))}",
            zh=f"被更正的事件没有指标 {event.metric}",
            en=f"the corrected event has no metric {event.metric}",
        )
    if str(event.district) != district:
        return sink_rejection(
            "correction_district_mismatch",
            "district",
            str(event.district),
            f"district = {district}",
            zh=f"更正必须记在原事件的街道（{district}）",
            en=f"a correction must be booked on the original event's district ({district})",
        )
    after = (
        measures[event.metric] + net.get((event.corrects, event.metric), Decimal(0)) + event.delta
    )
    if after < 0:
        return sink_rejection(
            "correction_exceeds_original",
            "delta",
            str(event.delta),
            "original + corrections >= 0",
            zh=f"更正后该事件的 {event.metric} 将为负数（{after}）",
            en=f"after this correction the event's {event.metric} would be negative ({after})",
        )
    return None


def duplicate_correction(event: Correction) -> Rejection:
    return sink_rejection(
        "duplicate_correction",
        "source_ref",
        str(event.source_ref),
        "one correction per reference and department",
        zh=f"部门 {event.department} 已报送过参考号为 {event.source_ref} 的更正（可能以另一个 "
        "event_id 重复发送）；同一更正只计一次，新的更正请使用新的参考号",
        en=f"department {event.department} already sent a correction with this reference "
        "(perhaps under another event_id); a correction counts once — give a new one its "
        "own reference",
    )

"""From drafts to the events a department reports: source refs and ids, report times (a
tenth of them late), and the few over-reports that a correction puts right later.

Pure: draws from the year's ``reporting`` and ``corrections`` streams and its names.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from schemas.envelope import Envelope, ledger_event_id
from schemas.topics import BY_EVENT_TYPE
from services.simulator.context import Context, Draft, working_hours
from services.simulator.scenario import CORRECTIONS, LATE_DAYS, LATE_SHARE, Correctable
from services.simulator.windows import M2


def number(drafts: list[Draft], ctx: Context) -> None:
    counters: dict[str, int] = {}
    for draft in drafts:
        event_type = draft.model.event_type_name
        counters[event_type] = counters.get(event_type, 0) + 1
        draft.source_ref = f"sim-{ctx.seed}:{ctx.year}:{event_type}:{counters[event_type]:04d}"


def report_times(drafts: list[Draft], rng: random.Random, status_end: datetime | None) -> None:
    """Most events reported within hours; ~10% 1–30 days late. Events up to the status
    date are reported by it, so the designed position on that date is what is known. A
    report time the scenario fixed (``Draft.reported_at`` already set) is kept."""

    def room(draft: Draft) -> timedelta:
        if status_end is None or draft.occurred_at > status_end:
            return timedelta(days=LATE_DAYS[1] + 1)
        return status_end - draft.occurred_at

    free = [i for i, draft in enumerate(drafts) if draft.reported_at is None]
    late_ok = [i for i in free if room(drafts[i]) >= timedelta(days=2)]
    late = set(rng.sample(late_ok, min(len(late_ok), round(LATE_SHARE * len(free)))))
    for i in free:
        draft = drafts[i]
        if i in late:
            days = rng.randint(LATE_DAYS[0], min(LATE_DAYS[1], room(draft).days - 1))
            reported = working_hours(rng, draft.occurred_at.date() + timedelta(days=days))
        else:
            reported = draft.occurred_at + timedelta(minutes=rng.randrange(10, 240))
        if status_end is not None and draft.occurred_at <= status_end < reported:
            reported = status_end
        draft.reported_at = reported


def choose_corrections(
    drafts: list[Draft],
    ctx: Context,
    status_end: datetime | None,
    correctable: Sequence[Correctable],
    officials: Callable[[str], tuple[str, ...]],
) -> None:
    """Over-report a few events, of different types, each to be corrected 7–40 days after
    its report. With a status date, the first one is corrected before that date. An
    over-report the scenario fixed (``Draft.excess`` already set) comes on top."""
    rng = ctx.rng("corrections")
    types = list(correctable)
    rng.shuffle(types)
    made = 0
    for kind in types:
        if made == CORRECTIONS:
            break
        candidates = []
        for draft in drafts:
            if draft.model.event_type_name != kind.event_type or draft.excess is not None:
                continue
            latest = draft.reported + timedelta(days=40)
            if status_end is not None:
                if draft.occurred_at <= status_end:
                    latest = min(latest, status_end)
                elif made == 0:
                    continue
            if latest - draft.reported >= timedelta(days=8):
                candidates.append((draft, latest))
        if not candidates:
            continue
        made += 1
        draft, latest = rng.choice(candidates)
        field_name = kind.field
        value = Decimal(draft.fields[field_name])
        if field_name == "area_m2":
            excess = (value * Decimal(rng.uniform(0.03, 0.12))).quantize(M2)
        elif field_name == "places":
            excess = Decimal(45 * rng.randint(1, 2))
        elif field_name == "length_km":  # a section's length measured along the wrong line
            excess = Decimal(rng.randint(50, 400)) / 1000
        else:
            excess = Decimal(rng.randint(8, 40))
        metric = kind.metric_of(draft.fields)
        days = rng.randint(7, (latest - draft.reported).days - 1)
        reported = working_hours(rng, draft.reported.date() + timedelta(days=days))
        reason = f"{kind.why_zh}，多报 {excess} / {kind.why_en}; over-reported by {excess}"
        draft.excess = (
            field_name,
            metric,
            excess,
            reason,
            ctx.names.official(officials(draft.family)),
            reported,
        )


def build(draft: Draft) -> Envelope:
    fields = dict(draft.fields)
    if draft.excess is not None:
        name, _, excess, *_ = draft.excess
        value = fields[name]
        fields[name] = value + excess if isinstance(value, Decimal) else value + int(excess)
    return draft.model.model_validate(
        {
            "event_id": ledger_event_id(draft.family, draft.source_ref),
            "department": draft.family,
            "district": draft.district,
            "occurred_at": draft.occurred_at,
            "reported_at": draft.reported,
            "project": draft.project,
            "source_ref": draft.source_ref,
            **fields,
        }
    )


def build_correction(draft: Draft, original: Envelope) -> Envelope:
    if draft.excess is None:
        raise ValueError(f"{draft.source_ref} was not over-reported")
    _, metric, excess, reason, approver, reported = draft.excess
    event_type = f"{draft.family}.correction"
    source_ref = f"{draft.source_ref}:correction"
    return (
        BY_EVENT_TYPE[event_type]
        .by_type[event_type]
        .model_validate(
            {
                "event_id": ledger_event_id(draft.family, source_ref),
                "department": draft.family,
                # Booked on the original's subdistrict, project and day: the rollup is restated
                # where the over-report landed, and the correction follows it on its partition.
                "district": draft.district,
                "occurred_at": draft.occurred_at,
                "reported_at": reported,
                "project": draft.project,
                "source_ref": source_ref,
                "corrects": original.event_id,
                "metric": metric,
                "delta": -excess,
                "reason": reason,
                "approved_by": approver,
            }
        )
    )

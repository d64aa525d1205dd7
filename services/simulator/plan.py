"""A year of department activity, planned in memory: :func:`plan` returns every record the
departments of the five subdistricts would send in a year, in the order they are sent.

Pure (no I/O, no topics, no tables, no environment variables): it reads the catalogue under
``seeds/`` and each family's scenario (``families/``); :mod:`services.simulator.run` prints
a plan or sends it through :class:`services.kafka.producer.Producer`. What a plan holds and
how the years are designed: :mod:`services.simulator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from schemas.catalogue import Catalogue, Pledge
from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.seeds import load_catalogue
from schemas.topics import ALL, BY_EVENT_TYPE
from services.pledges.rules import (
    PledgeProgress,
    Status,
    evaluate,
    items_done,
    level_now,
    level_readings,
    metric_actual,
)
from services.simulator import faults, reports
from services.simulator.context import Context, day_end
from services.simulator.families import simulators
from services.simulator.faults import InvalidRecord
from services.simulator.scenario import STATUS_DAYS, SimulationError
from streams.db.pledges import CorrectionRow, ItemEvent
from streams.rollup import local_day

DEFAULT_SEED = 7


RecordKind = Literal["event", "correction", "duplicate", "invalid"]


@dataclass(frozen=True)
class Outgoing:
    """One Kafka record of the plan, in send order."""

    kind: RecordKind
    topic: str
    key: bytes | None
    value: bytes
    sent_at: datetime  # simulated send time: orders the records, and --until cuts on it
    event: Envelope | None = None  # event, correction and duplicate records
    invalid: InvalidRecord | None = None


@dataclass(frozen=True)
class Plan:
    year: int
    seed: int
    until: date | None
    # The day the 2024 pledges' position is designed for (None for 2022).
    status_date: date | None
    # Every valid event once, originals and corrections, by reported_at.
    events: tuple[Envelope, ...]
    # Events sent a second time, identical to their first sending.
    duplicates: tuple[Envelope, ...]
    invalid: tuple[InvalidRecord, ...]
    records: tuple[Outgoing, ...]

    @property
    def corrections(self) -> tuple[Correction, ...]:
        return tuple(e for e in self.events if isinstance(e, Correction))

    @property
    def originals(self) -> tuple[Envelope, ...]:
        return tuple(e for e in self.events if not isinstance(e, Correction))


# Level metrics (a rate counted from time to time): never summed, their value is the
# latest reading (schemas/indicators.py).
LEVELS = frozenset(m.name for spec in ALL for m in spec.metrics if m.level)


def expected_totals(plan: Plan) -> dict[str, Decimal]:
    """Metric → what the valid events of the plan add up to, after dedupe and corrections;
    level metrics are not sums and are left out (:func:`latest_levels`)."""
    totals: dict[str, Decimal] = {}
    for event in plan.events:
        for metric, quantity in event.measures().items():
            if metric not in LEVELS:
                totals[metric] = totals.get(metric, Decimal(0)) + quantity
    return dict(sorted(totals.items()))


def latest_levels(plan: Plan) -> dict[str, Decimal]:
    """Level metric → its value at the end of the plan: the reading measured last (among
    readings of the same moment the one reported last, then the greater event id) plus the
    deltas of its corrections — what the platform shows (services/pledges/rules.py)."""
    deltas: dict[UUID, Decimal] = {}
    for correction in plan.corrections:
        if correction.metric in LEVELS:
            deltas[correction.corrects] = deltas.get(correction.corrects, Decimal(0)) + (
                correction.delta
            )
    latest: dict[str, tuple[tuple[datetime, datetime, UUID], Decimal]] = {}
    for event in plan.originals:
        for metric, level in event.measures().items():
            if metric not in LEVELS:
                continue
            order = (event.occurred_at, event.reported_at, event.event_id)
            if metric not in latest or latest[metric][0] < order:
                latest[metric] = (order, level + deltas.get(event.event_id, Decimal(0)))
    return {metric: value for metric, (_, value) in sorted(latest.items())}


@dataclass(frozen=True)
class PledgePosition:
    pledge: Pledge
    expected: Decimal
    actual: Decimal
    # Every figure of the pledge by the platform's rules: gap, projection, status.
    progress: PledgeProgress

    @property
    def ratio(self) -> Decimal | None:
        """Actual over expected; None where nothing is due yet, and for a level (a rate
        is not a share of its schedule)."""
        if not self.expected or self.pledge.progress_from == "level":
            return None
        return self.actual / self.expected

    @property
    def status(self) -> Status:
        return self.progress.status


def pledge_positions(
    plan: Plan, day: date, catalogue: Catalogue | None = None
) -> list[PledgePosition]:
    """Where each measurable pledge of the plan's year stands at the end of ``day``: the
    plan's events as the platform would hold them, through the platform's own rules
    (:mod:`services.pledges.rules`): a metric's daily totals, items done net of corrections,
    a level's latest reading and its trend."""
    catalogue = catalogue or load_catalogue()
    end = day_end(day)
    known = [e for e in plan.events if e.occurred_at <= end]
    corrections = [
        CorrectionRow(corrects=e.corrects, occurred_at=e.occurred_at, measures=e.measures())
        for e in known
        if isinstance(e, Correction)
    ]
    positions = []
    for pledge in catalogue.pledges_for(plan.year):
        metric = catalogue.metric(pledge.metric)
        if not pledge.measurable or not metric.event_types:
            continue
        trend = None
        if pledge.progress_from == "metric":
            rows = [
                (local_day(e.occurred_at), e.district.value, quantity)
                for e in known
                if (quantity := e.measures().get(pledge.metric)) is not None
            ]
            actual = metric_actual(rows, pledge, on=day)
        else:
            reports = [
                ItemEvent(
                    event_id=e.event_id,
                    project=e.project or "",
                    district=e.district.value,
                    occurred_at=e.occurred_at,
                    measures=e.measures(),
                    reported_at=e.reported_at,
                )
                for e in known
                if e.event_type_name in metric.event_types
            ]
            if pledge.progress_from == "level":
                actual, trend = level_now(level_readings(pledge, reports, corrections, on=day))
            else:
                actual = Decimal(items_done(pledge, reports, corrections, on=day))
        progress = evaluate(pledge, on=day, actual=actual, trend=trend)
        positions.append(PledgePosition(pledge, progress.expected_to_date, actual, progress))
    return positions


def plan(
    year: int,
    *,
    seed: int = DEFAULT_SEED,
    until: date | None = None,
    catalogue: Catalogue | None = None,
) -> Plan:
    """Every record of ``year``'s simulated activity reported by ``until`` (default: all)."""
    if year not in STATUS_DAYS:
        known = ", ".join(str(y) for y in STATUS_DAYS)
        raise SimulationError(f"no simulation profile for {year}; known years: {known}")
    if until is not None and until.year != year:
        raise SimulationError(f"--until {until} is not in {year}")
    catalogue = catalogue or load_catalogue()
    families = simulators()
    ctx = Context(year, seed, catalogue)
    drafts = [draft for step in families.steps(year) for draft in step.run(ctx)]
    status_day = STATUS_DAYS[year]
    status_date = ctx.day(*status_day) if status_day else None
    status_end = day_end(status_date) if status_date else None

    drafts.sort(key=lambda d: (d.occurred_at, d.model.event_type_name, d.project or ""))
    reports.number(drafts, ctx)
    reports.report_times(drafts, ctx.rng("reporting"), status_end)
    reports.choose_corrections(drafts, ctx, status_end, families.correctable, families.officials)

    cutoff = day_end(until) if until is not None else None
    originals = [reports.build(d) for d in drafts]
    corrections = [
        reports.build_correction(d, e) for d, e in zip(drafts, originals, strict=True) if d.excess
    ]
    events = sorted(
        (e for e in [*originals, *corrections] if cutoff is None or e.reported_at <= cutoff),
        key=lambda e: (e.reported_at, str(e.event_id)),
    )
    kept = [e for e in events if not isinstance(e, Correction)]
    duplicates = faults.duplicates(kept, ctx.rng("duplicates"), cutoff)
    invalid = faults.invalid_records(kept, ctx, cutoff, families.quantity_fields)

    records = [
        _outgoing("correction" if isinstance(e, Correction) else "event", e, e.reported_at)
        for e in events
    ]
    records += [_outgoing("duplicate", e, sent_at) for e, sent_at in duplicates]
    records += [
        Outgoing(
            kind="invalid", topic=r.topic, key=r.key, value=r.value, sent_at=r.sent_at, invalid=r
        )
        for r in invalid
    ]
    # Stable: an original keeps its place ahead of anything sent at the same moment.
    records.sort(key=lambda r: r.sent_at)
    return Plan(
        year=year,
        seed=seed,
        until=until,
        status_date=status_date,
        events=tuple(events),
        duplicates=tuple(e for e, _ in duplicates),
        invalid=tuple(invalid),
        records=tuple(records),
    )


def _outgoing(kind: RecordKind, event: Envelope, sent_at: datetime) -> Outgoing:
    return Outgoing(
        kind=kind,
        topic=BY_EVENT_TYPE[event.event_type_name].name,
        key=event.partition_key(),
        value=event.model_dump_json().encode(),
        sent_at=sent_at,
        event=event,
    )

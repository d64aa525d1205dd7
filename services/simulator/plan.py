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

from schemas.catalogue import Catalogue, Pledge
from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.seeds import load_catalogue
from schemas.topics import BY_EVENT_TYPE
from services.simulator import faults, reports
from services.simulator.context import Context, day_end
from services.simulator.families import simulators
from services.simulator.faults import InvalidRecord
from services.simulator.scenario import STATUS_DAYS, SimulationError

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


def expected_totals(plan: Plan) -> dict[str, Decimal]:
    """Metric → what the valid events of the plan add up to, after dedupe and corrections."""
    totals: dict[str, Decimal] = {}
    for event in plan.events:
        for metric, quantity in event.measures().items():
            totals[metric] = totals.get(metric, Decimal(0)) + quantity
    return dict(sorted(totals.items()))


@dataclass(frozen=True)
class PledgePosition:
    pledge: Pledge
    expected: Decimal
    actual: Decimal

    @property
    def ratio(self) -> Decimal | None:
        return self.actual / self.expected if self.expected else None


def pledge_positions(
    plan: Plan, day: date, catalogue: Catalogue | None = None
) -> list[PledgePosition]:
    """Where each measurable pledge of the plan's year stands at the end of ``day``, counting
    the plan's events that occurred by then (items: named projects reported done)."""
    catalogue = catalogue or load_catalogue()
    end = day_end(day)
    done = [e for e in plan.events if e.occurred_at <= end]
    positions = []
    for pledge in catalogue.pledges_for(plan.year):
        metric = catalogue.metric(pledge.metric)
        if not pledge.measurable or not metric.event_types:
            continue
        if pledge.progress_from == "items":
            codes = {item.code for item in pledge.items}
            found = {
                e.project for e in done if e.project in codes and pledge.metric in e.measures()
            }
            actual = Decimal(len(found))
        else:
            actual = sum((e.measures().get(pledge.metric, Decimal(0)) for e in done), Decimal(0))
        positions.append(PledgePosition(pledge, pledge.expected_by(day), actual))
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

    drafts.sort(key=lambda d: (d.occurred_at, d.model.event_type_name, d.project))
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

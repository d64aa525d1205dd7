"""A year of department activity, planned in memory: ``citystream simulate``.

:func:`plan` is pure (no I/O, no topics, no tables, no environment variables): it reads
the catalogue under ``seeds/`` and returns every record the departments of the five
subdistricts would send in a year — valid events, a few corrections, identical
re-sends and invalid records — in the order they are sent. :mod:`services.simulator_run`
sends a plan through :class:`services.kafka.producer.Producer` to ``city.<family>.v1``.

What a plan holds
-----------------
* **Project-sized events**: one event is one estate (20,000–150,000 m² completed or
  connected to heating), one school (500–2,700 places), one car park (50–600 spaces),
  one idle plot of temporary spaces (20–200), one section of heating main (0.4–2.2 km),
  one village moving back, one waterlogging point — always within the models' per-event
  bounds. Projects carry plausible (invented) Chinese names of their subdistrict
  (:mod:`services.simulator_names`) and are spread over the five subdistricts.
* **Seasons**: heating connections concentrate before the heating season starts on
  15 November; school openings and their places come with the 1 September intake (one
  school at the spring term); housing completions follow construction milestones, most
  in the second half; housing starts wait for the end of the winter earthworks ban;
  car parks and temporary spaces peak in spring and summer; waterlogging points are
  repaired before the flood season starts on 1 June.
* **Late reports**: 10% of events are reported 1–30 days after they occurred; the rest
  within hours.
* **Corrections**: three events of a year are over-reported and corrected 7–40 days later
  (``<family>.correction`` on the same subdistrict, project and day, with a reason and an
  approver); original plus correction equals the planned figure. With ``--until``, a
  correction not yet reported by then is not in the plan (its original may be).
* **Duplicates**: ~1% of events are sent a second time, byte for byte — half as a retry
  minutes later, half as a re-export weeks later. The ledger counts them once.
* **Invalid records**: ~0.5% of the events (at least one of each kind): a negative
  quantity, a department writing another family's topic, malformed JSON, an unknown
  district. They are raw bytes for ``send_raw``, each with the reason the worker's
  dead-letter path will give.

Ids are ``ledger_event_id(department, source_ref)`` with ``source_ref`` =
``sim-<seed>:<year>:<event type>:<n>``, so the same year, seed and ``--until`` give the same
bytes, and sending a plan again counts nothing twice.

2022 — the reported achievements, exactly
-----------------------------------------
For every 2022 achievement whose metric an event type produces (``seeds/metrics.yaml``),
the valid events (after dedupe and corrections) sum to the reported value exactly:
2,562,900 m² delivered, 107,700 m² started, 16,000 residents moved back (5 villages),
1,420,000 m² heating area, 11 km heating mains, 10 schools with 18,420 places, 14 car parks
and 12,620 temporary spaces. A car park's spaces come with its ``parking.lot_opened``:
11 of the 14 car parks are temporary (on idle plots) and their spaces are part of the
12,620; 3 are permanent garages (permanent spaces, which 2022 did not report). Drainage has
no 2022 figure: 36 points are repaired, most in March–May.

2024 — the position on 31 August, chosen per pledge
---------------------------------------------------
The 2024 plan is the whole year; ``--until`` keeps what was reported by that date. Events
up to 31 August are reported (and corrected) by 31 August, so with ``--until 2024-08-31``
each pledge stands exactly where it was designed to (expected = ``Pledge.expected_by``):

=========================================== ======= ================================ =========
pledge                                       pace    on 2024-08-31                    outcome
=========================================== ======= ================================ =========
2024-housing-completed-area (759,000 m²)     102%    ~570,500 of 559,350 m² expected   on track
2024-housing-started-area (358,000 m²)       75%     ~206,600 of 275,500 m² expected   behind
2024-education-school-places (2,160)         0%      0 of 2,092.5 expected             behind
                                                     (all 2,160 at the 1 Sep intake)
2024-education-foreign-language-school-      0%      not yet opened (opens 1 Sep)      behind
opened (1 item)
2024-heating-integration-area (1,420,000 m²) 52%     ~509,300 of 979,500 m² expected   at risk
                                                     (98% by 15 Nov, all by 20 Dec)
2024-drainage-waterlogging-points (2 items)  done    both named locations by 28 May    on track
=========================================== ======= ================================ =========

By 31 December every pledge above reaches its target. Metrics without a 2024 pledge get
plausible activity: 8.6 km of heating mains, 8 car parks and 5,200 further temporary
spaces, 3 villages (9,600 residents) moving back before National Day, 9 more waterlogging
points. Pledges no event family measures (roads, renewal, health …) get no events.
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Literal

import orjson

from schemas import drainage, education, heating, housing, parking
from schemas.catalogue import Catalogue, Pledge, load_catalogue
from schemas.corrections import Correction
from schemas.districts import SUBDISTRICTS, District
from schemas.envelope import CST, Envelope, ledger_event_id
from schemas.errors import CityStreamError
from schemas.topics import BY_EVENT_TYPE, DEPARTMENTS
from services.simulator_names import Names

DEFAULT_SEED = 7
YEARS = (2022, 2024)

LATE_SHARE = 0.10
LATE_DAYS = (1, 30)
DUPLICATE_SHARE = 0.01
INVALID_SHARE = 0.005
CORRECTIONS = 3

InvalidKind = Literal["negative_quantity", "wrong_department", "malformed_json", "unknown_district"]
INVALID_KINDS: tuple[InvalidKind, ...] = (
    "negative_quantity",
    "wrong_department",
    "malformed_json",
    "unknown_district",
)
# What schemas.validation.decode answers for each kind (the dead-letter reason).
INVALID_REASONS: dict[InvalidKind, str] = {
    "negative_quantity": "out_of_range",
    "wrong_department": "department_not_allowed",
    "malformed_json": "invalid_json",
    "unknown_district": "unknown_district",
}
# Names a clerk might type that are not the zone's: neighbouring districts and subdistricts,
# the townships the subdistricts were before 2003.
FOREIGN_DISTRICTS = ("须水街道", "中原区", "金水区", "石佛镇", "沟赵乡")
# The field a negative quantity is put in, per event type.
QUANTITY_FIELDS: dict[str, str] = {
    "housing.construction_started": "area_m2",
    "housing.units_completed": "area_m2",
    "housing.households_returned": "persons",
    "education.places_added": "places",
    "heating.area_connected": "area_m2",
    "heating.pipe_laid": "length_km",
    "parking.spaces_opened": "spaces",
    "parking.lot_opened": "spaces",
}

# 2024 activity with no pledge behind it (plausible figures, not the zone's).
PIPE_KM_2024 = Decimal("8.6")
LOTS_2024 = (6, 2)  # temporary, permanent
TEMPORARY_SPACES_2024 = 5200  # outside the new car parks
VILLAGES_2024 = 3
RETURNED_PERSONS_2024 = 9600
OTHER_POINTS_2024 = 9
# Car parks and temporary spaces by month (%): a spring and summer peak.
PARKING_MONTHS = (3, 3, 8, 12, 13, 13, 12, 11, 9, 7, 5, 4)


class SimulationError(CityStreamError, ValueError):
    """The simulation cannot be planned as asked (unknown year, --until outside it)."""


RecordKind = Literal["event", "correction", "duplicate", "invalid"]


@dataclass(frozen=True)
class InvalidRecord:
    """Bytes a department sends that the worker must dead-letter, and why it will."""

    kind: InvalidKind
    topic: str  # base topic name, e.g. city.heating.v1
    key: bytes | None
    value: bytes
    reason: str  # the rejection reason of schemas.validation.decode
    field: str | None
    sent_at: datetime


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
    end = _day_end(day)
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


# --------------------------------------------------------------------------- the plan


def plan(
    year: int,
    *,
    seed: int = DEFAULT_SEED,
    until: date | None = None,
    catalogue: Catalogue | None = None,
) -> Plan:
    """Every record of ``year``'s simulated activity reported by ``until`` (default: all)."""
    if year not in YEARS:
        known = ", ".join(str(y) for y in YEARS)
        raise SimulationError(f"no simulation profile for {year}; known years: {known}")
    if until is not None and until.year != year:
        raise SimulationError(f"--until {until} is not in {year}")
    catalogue = catalogue or load_catalogue()
    ctx = _Context(year, seed)
    if year == 2022:
        drafts, status_date = _year_2022(ctx, catalogue), None
    else:
        drafts, status_date = _year_2024(ctx, catalogue), date(2024, 8, 31)
    status_end = _day_end(status_date) if status_date else None

    drafts.sort(key=lambda d: (d.occurred_at, d.model.event_type_name, d.project))
    _number(drafts, ctx)
    _report_times(drafts, ctx.rng("reporting"), status_end)
    _choose_corrections(drafts, ctx, status_end)

    cutoff = _day_end(until) if until is not None else None
    originals = [_build(d) for d in drafts]
    corrections = [
        _build_correction(d, e) for d, e in zip(drafts, originals, strict=True) if d.excess
    ]
    events = sorted(
        (e for e in [*originals, *corrections] if cutoff is None or e.reported_at <= cutoff),
        key=lambda e: (e.reported_at, str(e.event_id)),
    )
    kept = [e for e in events if not isinstance(e, Correction)]
    duplicates = _duplicates(kept, ctx.rng("duplicates"), cutoff)
    invalid = _invalid(kept, ctx, cutoff)

    records = [
        Outgoing(
            kind="correction" if isinstance(e, Correction) else "event",
            topic=BY_EVENT_TYPE[e.event_type_name].name,
            key=e.partition_key(),
            value=e.model_dump_json().encode(),
            sent_at=e.reported_at,
            event=e,
        )
        for e in events
    ]
    records += [
        Outgoing(
            kind="duplicate",
            topic=BY_EVENT_TYPE[e.event_type_name].name,
            key=e.partition_key(),
            value=e.model_dump_json().encode(),
            sent_at=sent_at,
            event=e,
        )
        for e, sent_at in duplicates
    ]
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


# --------------------------------------------------------------------------- drafts


@dataclass
class _Draft:
    """An event before its report time, id and any over-report are settled."""

    model: type[Envelope]
    district: District
    occurred_at: datetime
    project: str
    fields: dict[str, Any]
    source_ref: str = ""
    reported_at: datetime | None = None
    # Over-reported, to be corrected: (field, metric, excess, reason, approver, reported_at).
    excess: tuple[str, str, Decimal, str, str, datetime] | None = None

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def reported(self) -> datetime:
        if self.reported_at is None:
            raise RuntimeError("report times are settled before this is read")
        return self.reported_at


class _Context:
    def __init__(self, year: int, seed: int) -> None:
        self.year = year
        self.seed = seed
        self.names = Names(self.rng("names"))
        self._districts: dict[str, list[District]] = {}
        self._district_rng = self.rng("districts")

    def rng(self, stream: str) -> random.Random:
        # One generator per stream, seeded by a string (hashed with SHA-512 by `random`,
        # independent of PYTHONHASHSEED): a change in one family leaves the others alone.
        return random.Random(f"citystream-sim:{self.seed}:{self.year}:{stream}")  # noqa: S311 - reproducible simulated data, not a secret

    def district(self, stream: str) -> District:
        """The next subdistrict for ``stream``: every five projects visit all five."""
        queue = self._districts.setdefault(stream, [])
        if not queue:
            queue.extend(SUBDISTRICTS)
            self._district_rng.shuffle(queue)
        return queue.pop()

    def day(self, month: int, day: int) -> date:
        return date(self.year, month, day)


@dataclass(frozen=True)
class _Window:
    start: date
    end: date
    amount: Decimal


def _day_end(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), CST)


def _working_hours(rng: random.Random, day: date) -> datetime:
    """A moment between 08:30 and 18:00 local time on ``day``."""
    return datetime.combine(day, time(8, 30), CST) + timedelta(minutes=rng.randrange(0, 570))


def _moment(rng: random.Random, start: date, end: date, *, weekdays: bool = True) -> datetime:
    """A working-hours moment on a day in start..end, weekdays preferred."""
    span = (end - start).days
    day = start
    for _ in range(10):
        day = start + timedelta(days=rng.randint(0, span))
        if not weekdays or day.weekday() < 5:
            break
    return _working_hours(rng, day)


def _month(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _split(
    total: Decimal,
    lo: Decimal,
    hi: Decimal,
    quantum: Decimal,
    rng: random.Random,
    *,
    count: int | None = None,
) -> list[Decimal]:
    """Project-sized parts in lo..hi, multiples of ``quantum``, that sum to ``total`` exactly.

    A total below ``lo`` is one part (a small project); ``count`` fixes the number of parts
    (the bounds then widen if they must).
    """
    if total <= 0:
        return []
    units = total / quantum
    if units != units.to_integral_value():
        raise ValueError(f"{total} is not a multiple of {quantum}")
    t = int(units)
    low = max(1, int((lo / quantum).to_integral_value(rounding=ROUND_CEILING)))
    high = max(low, int((hi / quantum).to_integral_value(rounding=ROUND_FLOOR)))
    if count is None:
        if t <= low:
            return [total]
        n_min = -(-t // high)
        n_max = max(n_min, t // low)
        n = round(t / ((low + high) / 2)) + rng.choice((-1, 0, 0, 1))
        n = min(max(n, n_min), n_max)
    else:
        n = count
        if t < n:
            raise ValueError(f"{total} cannot be split into {n} parts of at least {quantum}")
        low = min(low, t // n)
        high = max(high, -(-t // n))
    parts = [low] * n
    rest = t - low * n
    weights = [rng.lognormvariate(0, 0.5) for _ in range(n)]
    weight_sum = sum(weights)
    for i, weight in enumerate(weights):
        parts[i] += min(high - low, int(rest * weight / weight_sum))
    rest = t - sum(parts)
    order = list(range(n))
    while rest > 0:
        rng.shuffle(order)
        for i in order:
            give = min(high - parts[i], rest, max(1, rest // n))
            parts[i] += give
            rest -= give
            if rest == 0:
                break
    return [Decimal(p) * quantum for p in parts]


def _share_windows(
    total: Decimal,
    spec: Sequence[tuple[date, date, str]],
    unit: Decimal,
    rng: random.Random | None = None,
) -> list[_Window]:
    """The total spread over windows by share; the last window takes the remainder.

    With ``rng`` each share varies by up to 4%, so that a window holding a single project
    does not show a round figure such as 99,400.00 m².
    """
    windows = []
    left = total
    for i, (start, end, share) in enumerate(spec):
        if i == len(spec) - 1:
            amount = left
        else:
            wanted = total * Decimal(share)
            if rng is not None:
                wanted *= Decimal(rng.randint(960, 1040)) / 1000
            amount = (wanted / unit).to_integral_value(rounding=ROUND_FLOOR) * unit
        windows.append(_Window(start, end, amount))
        left -= amount
    return windows


def _paced_windows(
    pledge: Pledge,
    pace: Decimal,
    before: Sequence[tuple[date, date]],
    after: Sequence[tuple[date, date, str]],
    unit: Decimal,
) -> list[_Window]:
    """``pace`` × what the pledge's schedule expects in each window up to the status date,
    then the rest of the target over the windows after it."""
    windows = []
    previous = pledge.start - timedelta(days=1)
    for start, end in before:
        # From the previous window's end: what is due before the first window counts too.
        due = pledge.expected_by(end) - pledge.expected_by(previous)
        amount = (pace * due / unit).to_integral_value() * unit
        windows.append(_Window(start, end, amount))
        previous = end
    done = sum((w.amount for w in windows), Decimal(0))
    return windows + _share_windows(pledge.target - done, after, unit)


def _apportion(n: int, shares: Sequence[Decimal]) -> list[int]:
    """n things over shares, largest remainder first."""
    raw = [n * s for s in shares]
    counts = [int(r) for r in raw]
    order = sorted(range(len(shares)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


# --------------------------------------------------------------------------- families

M2 = Decimal("0.01")
ONE = Decimal(1)
ESTATE = (Decimal(20_000), Decimal(150_000))


def _housing_completed(ctx: _Context, windows: Sequence[_Window]) -> list[_Draft]:
    rng = ctx.rng("housing.units_completed")
    drafts = []
    for w in windows:
        for area in _split(w.amount, *ESTATE, M2, rng):
            district = ctx.district("housing")
            per_unit = Decimal(rng.randint(78, 112))
            units = max(1, int((area / per_unit).to_integral_value()))
            drafts.append(
                _Draft(
                    housing.HousingUnitsCompleted,
                    district,
                    _moment(rng, w.start, w.end),
                    ctx.names.resettlement_estate(district),
                    {"area_m2": area, "units": units},
                )
            )
    return drafts


def _housing_started(ctx: _Context, windows: Sequence[_Window]) -> list[_Draft]:
    rng = ctx.rng("housing.construction_started")
    drafts = []
    for w in windows:
        for area in _split(w.amount, *ESTATE, M2, rng):
            district = ctx.district("housing")
            units = max(1, int((area / Decimal(rng.randint(85, 105))).to_integral_value()))
            drafts.append(
                _Draft(
                    housing.HousingConstructionStarted,
                    district,
                    _moment(rng, w.start, w.end),
                    ctx.names.resettlement_estate(district),
                    {"area_m2": area, "units": units},
                )
            )
    return drafts


def _households_returned(
    ctx: _Context, persons: Decimal, windows: Sequence[tuple[date, date]]
) -> list[_Draft]:
    """One event per village; ``windows`` gives each village's moving-back period."""
    rng = ctx.rng("housing.households_returned")
    parts = _split(persons, Decimal(1500), Decimal(6000), ONE, rng, count=len(windows))
    drafts = []
    for (start, end), size in zip(windows, parts, strict=True):
        district = ctx.district("housing.return")
        _, estate = ctx.names.village_estate(district)
        people = int(size)
        households = max(1, round(people / rng.uniform(2.9, 3.5)))
        drafts.append(
            _Draft(
                housing.HousingHouseholdsReturned,
                district,
                _moment(rng, start, end, weekdays=False),
                estate,
                {"households": households, "persons": people},
            )
        )
    return drafts


def _schools(
    ctx: _Context, places: Decimal, windows: Sequence[tuple[date, date, int]]
) -> list[_Draft]:
    """New schools: an opening and its places, at the term's start."""
    rng = ctx.rng("education")
    count = sum(n for _, _, n in windows)
    sizes = _split(places, Decimal(500), Decimal(2700), Decimal(5), rng, count=count)
    drafts = []
    for start, end, n in windows:
        for _ in range(n):
            district = ctx.district("education")
            level, kind = rng.choice(
                (("primary", "小学"), ("primary", "小学"), ("junior_secondary", "初级中学"))
            )
            name = ctx.names.school(district, kind)
            when = _moment(rng, start, end, weekdays=False)
            drafts.append(
                _Draft(
                    education.EducationSchoolOpened,
                    district,
                    when,
                    name,
                    {"school_name": name, "level": level},
                )
            )
            drafts.append(
                _Draft(
                    education.EducationPlacesAdded,
                    district,
                    when,
                    name,
                    {"places": int(sizes.pop()), "level": level, "school_name": name},
                )
            )
    return drafts


def _heating_area(ctx: _Context, windows: Sequence[_Window]) -> list[_Draft]:
    rng = ctx.rng("heating.area_connected")
    drafts = []
    for w in windows:
        for area in _split(w.amount, *ESTATE, M2, rng):
            district = ctx.district("heating")
            drafts.append(
                _Draft(
                    heating.HeatingAreaConnected,
                    district,
                    _moment(rng, w.start, w.end),
                    ctx.names.estate(district),
                    {"area_m2": area},
                )
            )
    return drafts


def _heating_pipe(ctx: _Context, windows: Sequence[_Window]) -> list[_Draft]:
    rng = ctx.rng("heating.pipe_laid")
    drafts = []
    for w in windows:
        for km in _split(w.amount, Decimal("0.4"), Decimal("2.2"), Decimal("0.001"), rng):
            district = ctx.district("heating.pipe")
            drafts.append(
                _Draft(
                    heating.HeatingPipeLaid,
                    district,
                    _moment(rng, w.start, w.end),
                    ctx.names.pipe_section(district),
                    {"length_km": km},
                )
            )
    return drafts


def _parking(
    ctx: _Context,
    *,
    temporary_lots: int,
    permanent_lots: int,
    temporary_spaces: int | None = None,
    outside_lots: int | None = None,
) -> list[_Draft]:
    """Car parks and temporary spaces on idle plots, by month with a spring/summer peak.

    Either ``temporary_spaces``, the year's temporary spaces with the temporary car parks'
    own included, or ``outside_lots``, the temporary spaces opened outside new car parks.
    """
    rng = ctx.rng("parking")
    months = [_month(ctx.year, m) for m in range(1, 13)]
    shares = [Decimal(p) / 100 for p in PARKING_MONTHS]
    drafts = []
    lot_spaces = 0
    for temporary, n in ((True, temporary_lots), (False, permanent_lots)):
        for (start, end), k in zip(months, _apportion(n, shares), strict=True):
            for _ in range(k):
                district = ctx.district("parking.lot")
                size = rng.randint(50, 400) if temporary else rng.randint(150, 600)
                lot_spaces += size if temporary else 0
                name = ctx.names.car_park(district, temporary=temporary)
                drafts.append(
                    _Draft(
                        parking.ParkingLotOpened,
                        district,
                        _moment(rng, start, end),
                        name,
                        {
                            "lot_name": name,
                            "kind": "temporary" if temporary else "permanent",
                            "spaces": size,
                        },
                    )
                )
    spec = [(start, end, str(share)) for (start, end), share in zip(months, shares, strict=True)]
    if outside_lots is None:
        outside_lots = (temporary_spaces or 0) - lot_spaces
    for w in _share_windows(Decimal(outside_lots), spec, ONE):
        for plot in _split(w.amount, Decimal(20), Decimal(200), ONE, rng):
            district = ctx.district("parking.spaces")
            drafts.append(
                _Draft(
                    parking.ParkingSpacesOpened,
                    district,
                    _moment(rng, w.start, w.end),
                    ctx.names.idle_plot(district),
                    {"kind": "temporary", "spaces": int(plot)},
                )
            )
    return drafts


def _points(
    ctx: _Context,
    windows: Sequence[tuple[date, date, int]],
    *,
    project: str | None = None,
    road: tuple[District, str] | None = None,
) -> list[_Draft]:
    """Waterlogging points repaired; with ``road``, all along that road under one project."""
    rng = ctx.rng(f"drainage:{project or ''}")
    drafts = []
    for start, end, n in windows:
        for _ in range(n):
            district = road[0] if road else ctx.district("drainage")
            name = ctx.names.crossing(district, road[1] if road else None)
            lat, lon = ctx.names.location(district)
            drafts.append(
                _Draft(
                    drainage.DrainagePointRepaired,
                    district,
                    _moment(rng, start, end),
                    project or f"{name}积水点改造",
                    {"point_name": name, "location": {"lat": lat, "lon": lon}},
                )
            )
    return drafts


# --------------------------------------------------------------------------- the years


def _year_2022(ctx: _Context, catalogue: Catalogue) -> list[_Draft]:
    value = {a.metric: a.value for a in catalogue.achievements_for(2022)}
    d = ctx.day
    lots = int(value[parking.LOTS_OPENED])
    permanent = min(3, lots // 4)
    schools = int(value[education.SCHOOLS_OPENED])
    shares = ctx.rng("shares")
    return [
        # Construction milestones: little in winter (earthworks ban, Spring Festival), most
        # delivered in the second half.
        *_housing_completed(
            ctx,
            _share_windows(
                value[housing.COMPLETED_AREA_M2],
                [
                    (d(1, 4), d(3, 31), "0.08"),
                    (d(4, 1), d(6, 30), "0.22"),
                    (d(7, 1), d(9, 30), "0.40"),
                    (d(10, 1), d(12, 23), "0.30"),
                ],
                M2,
                shares,
            ),
        ),
        *_housing_started(
            ctx,
            _share_windows(
                value[housing.STARTED_AREA_M2],
                [(d(4, 1), d(6, 30), "0.55"), (d(7, 1), d(9, 30), "0.45")],
                M2,
                shares,
            ),
        ),
        # Five villages, each moving back after its estate is delivered.
        *_households_returned(
            ctx,
            value[housing.RETURNED_PERSONS],
            [
                (d(5, 10), d(6, 30)),
                (d(8, 15), d(9, 28)),
                (d(8, 15), d(9, 28)),
                (d(10, 10), d(11, 30)),
                (d(11, 15), d(12, 25)),
            ],
        ),
        # One school at the spring term, the others at the 1 September intake.
        *_schools(
            ctx,
            value[education.SCHOOL_PLACES],
            [(d(2, 10), d(2, 18), 1), (d(8, 22), d(9, 1), schools - 1)],
        ),
        # Connected before the heating season starts on 15 November; a few late ones.
        *_heating_area(
            ctx,
            _share_windows(
                value[heating.CONNECTED_AREA_M2],
                [
                    (d(4, 1), d(6, 30), "0.07"),
                    (d(7, 1), d(8, 31), "0.15"),
                    (d(9, 1), d(10, 31), "0.45"),
                    (d(11, 1), d(11, 15), "0.28"),
                    (d(11, 16), d(12, 20), "0.05"),
                ],
                M2,
                shares,
            ),
        ),
        *_heating_pipe(
            ctx,
            _share_windows(
                value[heating.PIPE_KM],
                [(d(3, 16), d(6, 30), "0.45"), (d(7, 1), d(10, 31), "0.55")],
                Decimal("0.001"),
                shares,
            ),
        ),
        *_parking(
            ctx,
            temporary_lots=lots - permanent,
            permanent_lots=permanent,
            temporary_spaces=int(value[parking.TEMPORARY_SPACES]),
        ),
        # Before the flood season starts on 1 June; some after the summer storms.
        *_points(ctx, [(d(3, 1), d(5, 31), 26), (d(6, 1), d(8, 31), 4), (d(9, 1), d(11, 30), 6)]),
    ]


FOREIGN_LANGUAGE_SCHOOL = ("foreign-language-experimental-primary", "外国语实验小学")
KEXUE_AVENUE = ("kexue-avenue", District.SHIFO, "科学大道")
WEST_3RD_RING = ("west-3rd-ring-north-extension", District.FENGYANG, "西三环北延段")


def _year_2024(ctx: _Context, catalogue: Catalogue) -> list[_Draft]:
    d = ctx.day
    pledge = catalogue.pledge
    drafts = [
        # On pace with the construction milestones (102%).
        *_housing_completed(
            ctx,
            _paced_windows(
                pledge("2024-housing-completed-area"),
                Decimal("1.02"),
                [(d(1, 8), d(3, 31)), (d(4, 1), d(6, 30)), (d(7, 1), d(8, 31))],
                [(d(9, 1), d(9, 28), "0.65"), (d(10, 8), d(12, 20), "0.35")],
                ONE,
            ),
        ),
        # Behind (75%): land handovers slipped; the starts catch up in the autumn.
        *_housing_started(
            ctx,
            _paced_windows(
                pledge("2024-housing-started-area"),
                Decimal("0.75"),
                [(d(3, 1), d(3, 31)), (d(4, 1), d(6, 30)), (d(7, 1), d(8, 31))],
                [(d(9, 1), d(9, 30), "0.5"), (d(10, 1), d(11, 30), "0.5")],
                ONE,
            ),
        ),
        # At risk (52%): connections pile up before the season; 98% by 15 November.
        *_heating_area(
            ctx,
            _paced_windows(
                pledge("2024-heating-integration-area"),
                Decimal("0.52"),
                [(d(3, 16), d(6, 30)), (d(7, 1), d(8, 31))],
                [
                    (d(9, 1), d(10, 31), "0.60"),
                    (d(11, 1), d(11, 15), "0.37"),
                    (d(11, 16), d(12, 20), "0.03"),
                ],
                ONE,
            ),
        ),
        *_heating_pipe(
            ctx,
            _share_windows(
                PIPE_KM_2024,
                [(d(3, 16), d(6, 30), "0.45"), (d(7, 1), d(10, 31), "0.55")],
                Decimal("0.001"),
                ctx.rng("shares"),
            ),
        ),
        # 力争十一前实现群众回迁安置: the villages move back before National Day.
        *_households_returned(
            ctx,
            Decimal(RETURNED_PERSONS_2024),
            [(d(7, 10), d(9, 28))] * VILLAGES_2024,
        ),
        *_parking(
            ctx,
            temporary_lots=LOTS_2024[0],
            permanent_lots=LOTS_2024[1],
            outside_lots=TEMPORARY_SPACES_2024,
        ),
        # The two named locations are done before the flood season (both items on track).
        *_points(ctx, [(d(3, 4), d(5, 24), 4)], project=KEXUE_AVENUE[0], road=KEXUE_AVENUE[1:]),
        *_points(ctx, [(d(4, 1), d(5, 28), 3)], project=WEST_3RD_RING[0], road=WEST_3RD_RING[1:]),
        *_points(ctx, [(d(3, 1), d(5, 31), 6), (d(6, 1), d(10, 31), OTHER_POINTS_2024 - 6)]),
    ]
    # The Foreign Language Experimental Primary School opens with all 2,160 places at the
    # 1 September intake: nothing before it, so places and the opening are behind on 31 Aug.
    code, name = FOREIGN_LANGUAGE_SCHOOL
    places = pledge("2024-education-school-places").target
    when = datetime.combine(d(9, 1), time(8, 0), CST)
    district = District.SHUANGQIAO
    drafts += [
        _Draft(
            education.EducationSchoolOpened,
            district,
            when,
            code,
            {"school_name": name, "level": "primary"},
        ),
        _Draft(
            education.EducationPlacesAdded,
            district,
            when,
            code,
            {"places": int(places), "level": "primary", "school_name": name},
        ),
    ]
    return drafts


# --------------------------------------------------------------------------- reporting


def _number(drafts: list[_Draft], ctx: _Context) -> None:
    counters: dict[str, int] = {}
    for draft in drafts:
        event_type = draft.model.event_type_name
        counters[event_type] = counters.get(event_type, 0) + 1
        draft.source_ref = f"sim-{ctx.seed}:{ctx.year}:{event_type}:{counters[event_type]:04d}"


def _report_times(drafts: list[_Draft], rng: random.Random, status_end: datetime | None) -> None:
    """Most events reported within hours; ~10% 1–30 days late. Events up to the status
    date are reported by it, so the designed position on that date is what is known."""

    def room(draft: _Draft) -> timedelta:
        if status_end is None or draft.occurred_at > status_end:
            return timedelta(days=LATE_DAYS[1] + 1)
        return status_end - draft.occurred_at

    late_ok = [i for i, draft in enumerate(drafts) if room(draft) >= timedelta(days=2)]
    late = set(rng.sample(late_ok, min(len(late_ok), round(LATE_SHARE * len(drafts)))))
    for i, draft in enumerate(drafts):
        if i in late:
            days = rng.randint(LATE_DAYS[0], min(LATE_DAYS[1], room(draft).days - 1))
            reported = _working_hours(rng, draft.occurred_at.date() + timedelta(days=days))
        else:
            reported = draft.occurred_at + timedelta(minutes=rng.randrange(10, 240))
        if status_end is not None and draft.occurred_at <= status_end < reported:
            reported = status_end
        draft.reported_at = reported


_CORRECTABLE: dict[str, tuple[str, str, str]] = {
    # event type → (field, why in Chinese, why in English)
    "heating.area_connected": (
        "area_m2",
        "现场复核：地下车库面积误计入供热面积",
        "on-site check: the basement garage was counted as heated area",
    ),
    "housing.units_completed": (
        "area_m2",
        "竣工备案复核：原报送含未交付的商业配套面积",
        "completion filing check: the report included commercial space not delivered",
    ),
    "parking.lot_opened": (
        "spaces",
        "现场清点车位数少于报送数（消防通道不得划线）",
        "on-site count found fewer spaces (fire lanes may not be marked)",
    ),
    "education.places_added": (
        "places",
        "按核定班额重新计算学位",
        "places recomputed with the approved class size",
    ),
}


def _choose_corrections(drafts: list[_Draft], ctx: _Context, status_end: datetime | None) -> None:
    """Over-report a few events, of different types, each to be corrected 7–40 days after
    its report. With a status date, the first one is corrected before that date."""
    rng = ctx.rng("corrections")
    types = list(_CORRECTABLE)
    rng.shuffle(types)
    made = 0
    for event_type in types:
        if made == CORRECTIONS:
            break
        candidates = []
        for draft in drafts:
            if draft.model.event_type_name != event_type:
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
        field_name, why_zh, why_en = _CORRECTABLE[event_type]
        value = Decimal(draft.fields[field_name])
        if field_name == "area_m2":
            excess = (value * Decimal(rng.uniform(0.03, 0.12))).quantize(M2)
        elif field_name == "places":
            excess = Decimal(45 * rng.randint(1, 2))
        else:
            excess = Decimal(rng.randint(8, 40))
        metric = _metric_of(draft, field_name)
        days = rng.randint(7, (latest - draft.reported).days - 1)
        reported = _working_hours(rng, draft.reported.date() + timedelta(days=days))
        reason = f"{why_zh}，多报 {excess} / {why_en}; over-reported by {excess}"
        draft.excess = (
            field_name,
            metric,
            excess,
            reason,
            ctx.names.official(draft.family),
            reported,
        )


def _metric_of(draft: _Draft, field_name: str) -> str:
    if draft.model is heating.HeatingAreaConnected:
        return heating.CONNECTED_AREA_M2
    if draft.model is housing.HousingUnitsCompleted:
        return housing.COMPLETED_AREA_M2
    if draft.model is education.EducationPlacesAdded:
        return education.SCHOOL_PLACES
    if draft.model is parking.ParkingLotOpened and field_name == "spaces":
        return parking.SPACES_METRIC[draft.fields["kind"]]
    raise ValueError(f"{draft.model.event_type_name}.{field_name} is not correctable")


def _build(draft: _Draft) -> Envelope:
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


def _build_correction(draft: _Draft, original: Envelope) -> Envelope:
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


def _duplicates(
    events: list[Envelope], rng: random.Random, cutoff: datetime | None
) -> list[tuple[Envelope, datetime]]:
    """~1% of events sent again, identical: a retry minutes later or a re-export weeks later."""
    if not events:
        return []
    count = max(1, round(DUPLICATE_SHARE * len(events)))
    out = []
    for i, event in enumerate(rng.sample(events, min(count, len(events)))):
        if i % 2 == 0:
            sent = event.reported_at + timedelta(minutes=rng.randint(1, 20))
        else:
            sent = event.reported_at + timedelta(days=rng.randint(20, 120))
        if cutoff is not None:
            sent = min(sent, cutoff)
        out.append((event, sent))
    return out


def _invalid(events: list[Envelope], ctx: _Context, cutoff: datetime | None) -> list[InvalidRecord]:
    """~0.5% of the events' number in invalid records, at least one of each kind."""
    if not events:
        return []
    rng = ctx.rng("invalid")
    count = max(len(INVALID_KINDS), round(INVALID_SHARE * len(events)))
    kinds = list(INVALID_KINDS)
    rng.shuffle(kinds)
    kinds += [rng.choice(INVALID_KINDS) for _ in range(count - len(kinds))]
    with_quantity = [e for e in events if e.event_type_name in QUANTITY_FIELDS]
    out = []
    for i, kind in enumerate(kinds):
        template = rng.choice(with_quantity if kind == "negative_quantity" else events)
        family = template.family
        source_ref = f"sim-{ctx.seed}:{ctx.year}:invalid:{i + 1:04d}"
        data = template.model_dump(mode="json")
        data["event_id"] = str(ledger_event_id(family, source_ref))
        data["source_ref"] = source_ref
        field_name: str | None
        if kind == "negative_quantity":
            field_name = QUANTITY_FIELDS[template.event_type_name]
            value = data[field_name]
            data[field_name] = f"-{value}" if isinstance(value, str) else -value
            raw = orjson.dumps(data)
        elif kind == "wrong_department":
            field_name = "department"
            data["department"] = rng.choice([d for d in DEPARTMENTS if d != family])
            raw = orjson.dumps(data)
        elif kind == "unknown_district":
            field_name = "district"
            data["district"] = rng.choice(FOREIGN_DISTRICTS)
            raw = orjson.dumps(data)
        else:
            field_name = None
            text = orjson.dumps(data).decode()
            variant = rng.randrange(3)
            if variant == 0:  # an export cut off mid-record
                text = text[: rng.randint(len(text) // 3, 2 * len(text) // 3)]
            elif variant == 1:  # a hand-edited record with a trailing comma
                text = text[:-1] + ",}"
            else:  # a Python dict printed instead of JSON
                text = text.replace('"', "'")
            raw = text.encode()
        sent = template.reported_at + timedelta(minutes=rng.randint(1, 90))
        if cutoff is not None:
            sent = min(sent, cutoff)
        out.append(
            InvalidRecord(
                kind=kind,
                topic=BY_EVENT_TYPE[template.event_type_name].name,
                key=template.partition_key(),
                value=raw,
                reason=INVALID_REASONS[kind],
                field=field_name,
                sent_at=sent,
            )
        )
    return out

"""What every generator of a simulated year shares: its random streams, the subdistrict
rotation, the project names, the catalogue, and the draft an event is before it is reported.

Pure: no I/O, no topics, no tables, no environment variables.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from schemas.catalogue import Catalogue
from schemas.districts import SUBDISTRICTS, District
from schemas.envelope import CST, Envelope
from services.simulator.names import Names


@dataclass
class Draft:
    """An event before its report time, id and any over-report are settled."""

    model: type[Envelope]
    district: District
    occurred_at: datetime
    # None for a zone-wide figure that no project carries (an indicator report).
    project: str | None
    fields: dict[str, Any]
    source_ref: str = ""
    # Set by a generator when the scenario fixes it (a report designed to arrive late);
    # otherwise drawn by reports.report_times.
    reported_at: datetime | None = None
    # Over-reported, to be corrected: (field, metric, excess, reason, approver, reported_at).
    # Set by a generator when the scenario fixes it; otherwise drawn by
    # reports.choose_corrections.
    excess: tuple[str, str, Decimal, str, str, datetime] | None = None

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def reported(self) -> datetime:
        if self.reported_at is None:
            raise RuntimeError("report times are settled before this is read")
        return self.reported_at


@dataclass(frozen=True)
class Window:
    """An amount of a metric that occurs between two days (both included)."""

    start: date
    end: date
    amount: Decimal


class Context:
    """One simulated year of one seed."""

    def __init__(self, year: int, seed: int, catalogue: Catalogue) -> None:
        self.year = year
        self.seed = seed
        self.catalogue = catalogue
        self.names = Names(self.rng("names"))
        self._districts: dict[str, list[District]] = {}
        self._district_rng = self.rng("districts")

    def rng(self, stream: str) -> random.Random:
        # One generator per stream, seeded by a string (hashed with SHA-512 by `random`,
        # independent of PYTHONHASHSEED): a change in one family leaves the others alone.
        return random.Random(f"citystream-sim:{self.seed}:{self.year}:{stream}")  # noqa: S311 - reproducible simulated data, not a secret

    @cached_property
    def shares(self) -> random.Random:
        """The stream that varies every spread's shares, drawn in step order."""
        return self.rng("shares")

    def district(self, stream: str) -> District:
        """The next subdistrict for ``stream``: every five projects visit all five."""
        queue = self._districts.setdefault(stream, [])
        if not queue:
            queue.extend(SUBDISTRICTS)
            self._district_rng.shuffle(queue)
        return queue.pop()

    def day(self, month: int, day: int) -> date:
        return date(self.year, month, day)

    def month(self, month: int) -> tuple[date, date]:
        """The first and the last day of ``month``."""
        return self.day(month, 1), self.day(month, calendar.monthrange(self.year, month)[1])


def day_end(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), CST)


def working_hours(rng: random.Random, day: date) -> datetime:
    """A moment between 08:30 and 18:00 local time on ``day``."""
    return datetime.combine(day, time(8, 30), CST) + timedelta(minutes=rng.randrange(0, 570))


def moment(rng: random.Random, start: date, end: date, *, weekdays: bool = True) -> datetime:
    """A working-hours moment on a day in start..end, weekdays preferred."""
    span = (end - start).days
    day = start
    for _ in range(10):
        day = start + timedelta(days=rng.randint(0, span))
        if not weekdays or day.weekday() < 5:
            break
    return working_hours(rng, day)

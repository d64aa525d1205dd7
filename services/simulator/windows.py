"""From a scenario's figures to project-sized events: the catalogue's figures, the windows a
total is spread or paced over, and the parts of a window, one project (one draft) each.

Pure: the only randomness is the generator passed in (or the year's ``shares`` stream).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from schemas.catalogue import Pledge
from schemas.districts import District
from schemas.envelope import Envelope
from services.simulator.context import Context, Draft, Window, moment
from services.simulator.scenario import Achieved, Amount, Day, Paced, Spread, Target

M2 = Decimal("0.01")
ONE = Decimal(1)
# One housing or heating event is one estate.
ESTATE = (Decimal(20_000), Decimal(150_000))


def amount(ctx: Context, figure: Amount) -> Decimal:
    if isinstance(figure, Achieved):
        reported = {a.metric: a.value for a in ctx.catalogue.achievements_for(ctx.year)}
        return reported[figure.metric]
    if isinstance(figure, Target):
        return ctx.catalogue.pledge(figure.pledge).target
    return Decimal(figure)


def days(ctx: Context, first: Day, last: Day) -> tuple[date, date]:
    return ctx.day(*first), ctx.day(*last)


def windows(ctx: Context, spec: Spread | Paced) -> list[Window]:
    if isinstance(spec, Spread):
        return share_windows(
            amount(ctx, spec.total),
            [(*days(ctx, first, last), share) for first, last, share in spec.windows],
            Decimal(spec.unit),
            ctx.shares if spec.jitter else None,
        )
    return paced_windows(
        ctx.catalogue.pledge(spec.pledge),
        Decimal(spec.pace),
        [days(ctx, first, last) for first, last in spec.before],
        [(*days(ctx, first, last), share) for first, last, share in spec.after],
        Decimal(spec.unit),
    )


def projects(
    ctx: Context,
    spread: Sequence[Window],
    *,
    model: type[Envelope],
    size: tuple[Decimal, Decimal],
    quantum: Decimal,
    rng: random.Random,
    rotation: str,
    name: Callable[[District], str],
    fields: Callable[[Decimal], dict[str, Any]],
) -> list[Draft]:
    """One event per project-sized part of each window's amount: in the next subdistrict of
    ``rotation``, on a working day of its window, named by ``name``; ``fields`` turns the
    part into the event's payload (and may draw from ``rng``)."""
    drafts = []
    for window in spread:
        for part in split(window.amount, *size, quantum, rng):
            # Drawn in this order (subdistrict, payload, day, name): another order gives
            # other events for the same seed.
            district = ctx.district(rotation)
            payload = fields(part)
            when = moment(rng, window.start, window.end)
            drafts.append(Draft(model, district, when, name(district), payload))
    return drafts


def split(
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


def share_windows(
    total: Decimal,
    spec: Sequence[tuple[date, date, str]],
    unit: Decimal,
    rng: random.Random | None = None,
) -> list[Window]:
    """The total spread over windows by share; the last window takes the remainder. With
    ``rng`` each share varies by up to 4%."""
    spread = []
    left = total
    for i, (start, end, share) in enumerate(spec):
        if i == len(spec) - 1:
            part = left
        else:
            wanted = total * Decimal(share)
            if rng is not None:
                wanted *= Decimal(rng.randint(960, 1040)) / 1000
            part = (wanted / unit).to_integral_value(rounding=ROUND_FLOOR) * unit
        spread.append(Window(start, end, part))
        left -= part
    return spread


def paced_windows(
    pledge: Pledge,
    pace: Decimal,
    before: Sequence[tuple[date, date]],
    after: Sequence[tuple[date, date, str]],
    unit: Decimal,
) -> list[Window]:
    """``pace`` × what the pledge's schedule expects in each window up to the status date,
    then the rest of the target over the windows after it."""
    paced = []
    previous = pledge.start - timedelta(days=1)
    for start, end in before:
        # From the previous window's end: what is due before the first window counts too.
        due = pledge.expected_by(end) - pledge.expected_by(previous)
        part = (pace * due / unit).to_integral_value() * unit
        paced.append(Window(start, end, part))
        previous = end
    done = sum((w.amount for w in paced), Decimal(0))
    return paced + share_windows(pledge.target - done, after, unit)


def apportion(n: int, shares: Sequence[Decimal]) -> list[int]:
    """n things over shares, largest remainder first."""
    raw = [n * s for s in shares]
    counts = [int(r) for r in raw]
    order = sorted(range(len(shares)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts

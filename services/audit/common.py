"""What the audit commands share: reading a moment in time, naming topics, the error type,
the progress hook."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal

from schemas.errors import CityStreamError
from schemas.topics import ALL, BY_FAMILY, TopicSpec
from streams.rollup import LOCAL_TZ

# How a long audit reports progress: called with the total, it returns ``advance(n)``.
ProgressHook = Callable[[int], Callable[[int], None]]


class AuditInputError(CityStreamError, ValueError):
    """An audit argument is invalid; the message names it and says what is expected."""


def parse_instant(text: str, *, name: str = "TIME") -> datetime:
    """An ISO 8601 date and time; without an offset it is Asia/Shanghai time.

    A bare date is refused: "as of 2024-06-30" could mean its first or its last moment, and
    an audit must not guess.
    """
    value = text.strip()
    if len(value) == 10 and value[4:5] == "-" and value[7:8] == "-":
        raise AuditInputError(
            f"{name}: {text!r} is a date without a time; give the moment, e.g. "
            f"{value}T23:59:59 (Asia/Shanghai unless an offset such as +00:00 is given)"
        )
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise AuditInputError(
            f"{name}: {text!r} is not an ISO 8601 date and time; expected e.g. "
            "2024-06-30T18:00:00+08:00 or 2024-06-30 18:00 (Asia/Shanghai)"
        ) from None
    if when.utcoffset() is None:
        when = when.replace(tzinfo=LOCAL_TZ)
    return when


def select_topics(names: Iterable[str] | None) -> tuple[TopicSpec, ...]:
    """Topic specs for ``--topics`` values: topic names (``city.heating.v1``) or families
    (``heating``); every family's topic when none are given."""
    wanted = [n.strip() for name in names or () for n in name.split(",") if n.strip()]
    if not wanted:
        return ALL
    by_name = {spec.name: spec for spec in ALL}
    chosen: list[TopicSpec] = []
    for name in wanted:
        spec = by_name.get(name) or BY_FAMILY.get(name)
        if spec is None:
            known = ", ".join(spec.name for spec in ALL)
            raise AuditInputError(f"--topics: {name!r} is not a city topic; use some of {known}")
        if spec not in chosen:
            chosen.append(spec)
    return tuple(spec for spec in ALL if spec in chosen)


def quantity(value: Decimal) -> str:
    """An exact decimal as written, without exponent or trailing zeros after the point."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text

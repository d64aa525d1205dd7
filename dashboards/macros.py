"""Expand a panel's SQL the way Grafana does before PostgreSQL sees it, so tests can run it.

Grafana cannot run on our machines (see ../shared/DESIGN.md, "Grafana without Grafana"), so
this module re-implements, from Grafana's documentation, the two steps between the SQL
stored in a dashboard and the SQL its PostgreSQL data source sends:

1. **Variables** (the browser): template variables ``$var``, ``${var}``, ``${var:format}``
   and ``[[var]]``; the global variables ``$__interval``, ``$__interval_ms``, ``$__from``,
   ``$__to`` (with ``:date``, ``:date:iso``, ``:date:seconds`` and ``:date:<format>``),
   ``$__range``, ``$__range_s`` and ``$__range_ms``. Without a format, the PostgreSQL data
   source quotes the values of a multi-value (or "include All") variable as SQL strings and
   joins them with commas (``'a','b'``); a single-value variable goes in as it is, with any
   single quote doubled so that it cannot end the SQL string it is written inside.
2. **Macros** (the server): ``$__time``, ``$__timeEpoch``, ``$__timeFilter``,
   ``$__timeFrom``, ``$__timeTo``, ``$__timeGroup``, ``$__timeGroupAlias``,
   ``$__unixEpochFilter``, ``$__unixEpochFrom``, ``$__unixEpochTo``, the ``Nano`` variants,
   ``$__unixEpochGroup`` and ``$__unixEpochGroupAlias``. With the data source's TimescaleDB
   option on, ``$__timeGroup`` uses ``time_bucket``.

Stricter than Grafana where Grafana would send broken SQL: an undefined variable, a variable
without a value, an unknown macro, a macro with the wrong number of arguments or with
parentheses inside its arguments (Grafana's macro pattern stops at the first ``)``) are
errors here, naming the variable or macro.

Pure functions; no I/O. tests/unit/test_dashboard_macros.py holds Grafana's documented
examples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from schemas.errors import CityStreamError

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


class ExpansionError(CityStreamError, ValueError):
    """The SQL names a variable or macro that cannot be expanded; the message says which."""


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range, in nanoseconds since the epoch (Grafana keeps
    milliseconds; the ``Nano`` macros print nanoseconds)."""

    from_ns: int
    to_ns: int

    def __post_init__(self) -> None:
        if self.to_ns < self.from_ns:
            raise ExpansionError("time range: 'to' is before 'from'")

    @classmethod
    def of(cls, start: datetime, end: datetime) -> TimeRange:
        if start.tzinfo is None or end.tzinfo is None:
            raise ExpansionError("time range: give timezone-aware datetimes")
        return cls(_epoch_ns(start), _epoch_ns(end))

    @property
    def start(self) -> datetime:
        return _from_ns(self.from_ns)

    @property
    def end(self) -> datetime:
        return _from_ns(self.to_ns)


@dataclass(frozen=True)
class Variable:
    """A template variable's current value(s). "All" is given as every option's value."""

    name: str
    values: tuple[str, ...]
    texts: tuple[str, ...] | None = None
    multi: bool = False
    include_all: bool = False

    @property
    def is_list(self) -> bool:
        # Grafana hands a multi-value or "include All" variable's value over as an array.
        return self.multi or self.include_all

    @property
    def display(self) -> tuple[str, ...]:
        return self.texts if self.texts is not None else self.values


@dataclass(frozen=True)
class Context:
    time_range: TimeRange
    # What Grafana computes from the time range and the panel's width (and its minimum).
    interval: timedelta = timedelta(minutes=1)
    variables: Mapping[str, Variable] = field(default_factory=dict)
    # The data source's "TimescaleDB" option (jsonData.timescaledb).
    timescaledb: bool = False


# --------------------------------------------------------------------------- time helpers


def _epoch_ns(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def _from_ns(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


def rfc3339(ns: int) -> str:
    """UTC, fractional seconds only as far as needed (Go's RFC3339Nano, as Grafana prints)."""
    seconds, fraction = divmod(ns, NS_PER_S)
    text = _from_ns(seconds * NS_PER_S).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86_400,
    "w": 7 * 86_400,
    "y": 365 * 86_400,
}


def parse_duration(text: str) -> timedelta:
    """``'5m'``, ``1h``, ``500ms``, ``1d`` … (quotes around it are allowed)."""
    cleaned = text.strip().strip("'\"")
    match = _DURATION.match(cleaned)
    if match is None:
        raise ExpansionError(f"{text!r} is not a duration such as 5m, 1h or 1d")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])


def format_interval(interval: timedelta) -> str:
    """The largest whole unit: 1d, 6h, 30m, 15s, 500ms (how Grafana prints $__interval)."""
    ms = round(interval.total_seconds() * 1000)
    if ms <= 0:
        raise ExpansionError("the interval must be positive")
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _number(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else repr(seconds)


# --------------------------------------------------------------------------- variables

# ${name}, ${name.path}, ${name:format}, [[name]], [[name:format]], $name
_REFERENCE = re.compile(
    r"\$\{(?P<braced>\w+)(?:\.(?P<path>[^:}]+))?(?::(?P<bformat>[^}]+))?\}"
    r"|\[\[(?P<bracket>\w+)(?::(?P<sformat>[^\]]+))?\]\]"
    r"|\$(?P<plain>\w+)"
)
GLOBALS = frozenset(
    {"__interval", "__interval_ms", "__from", "__to", "__range", "__range_s", "__range_ms"}
)


def variable_names(text: str) -> set[str]:
    """The template variables ``text`` refers to (Grafana's own ``__`` names excluded)."""
    names = set()
    for match in _REFERENCE.finditer(text):
        name = match["braced"] or match["bracket"] or match["plain"]
        if not name.startswith("__"):
            names.add(name)
    return names


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_REGEX_SPECIAL = re.compile(r"[-\[\]/{}()*+?.\\^$|]")


def _regex_escape(value: str) -> str:
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m[0], value)


def _format_variable(variable: Variable, fmt: str | None) -> str:
    values = variable.values
    if not values:
        raise ExpansionError(f"variable ${variable.name} has no value")
    if fmt is None:
        # The PostgreSQL data source's own interpolation.
        if variable.is_list:
            return ",".join(_sql_literal(v) for v in values)
        return values[0].replace("'", "''")
    formats: dict[str, Callable[[], str]] = {
        "csv": lambda: ",".join(values),
        "raw": lambda: ",".join(values),
        "sqlstring": lambda: ",".join(_sql_literal(v) for v in values),
        "singlequote": lambda: ",".join("'" + v.replace("'", "\\'") + "'" for v in values),
        "doublequote": lambda: ",".join('"' + v.replace('"', '\\"') + '"' for v in values),
        "pipe": lambda: "|".join(values),
        "json": lambda: json.dumps(list(values) if variable.is_list else values[0]),
        "text": lambda: " + ".join(variable.display),
        "queryparam": lambda: "&".join(
            f"var-{variable.name}={quote(v, safe='-_.~')}" for v in values
        ),
        "percentencode": lambda: quote(",".join(values), safe="-_.~"),
        "regex": lambda: (
            "(" + "|".join(_regex_escape(v) for v in values) + ")"
            if len(values) > 1
            else _regex_escape(values[0])
        ),
        "glob": lambda: "{" + ",".join(values) + "}" if len(values) > 1 else values[0],
    }
    # Documented: an unknown format falls back to glob.
    return formats.get(fmt, formats["glob"])()


_MOMENT_TOKEN = re.compile(r"YYYY|MM|DD|HH|hh|mm|ss|SSS")


def _format_time(ns: int, fmt: str | None) -> str:
    if fmt is None:
        return str(ns // NS_PER_MS)
    kind, _, pattern = fmt.partition(":")
    if kind != "date":
        raise ExpansionError(f"unknown time format {fmt!r}: use date, date:iso, date:seconds")
    moment = _from_ns(ns)
    if pattern in ("", "iso"):
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if pattern == "seconds":
        return str(ns // NS_PER_S)
    tokens = {
        "YYYY": f"{moment.year:04d}",
        "MM": f"{moment.month:02d}",
        "DD": f"{moment.day:02d}",
        "HH": f"{moment.hour:02d}",
        "hh": f"{(moment.hour % 12) or 12:02d}",
        "mm": f"{moment.minute:02d}",
        "ss": f"{moment.second:02d}",
        "SSS": f"{moment.microsecond // 1000:03d}",
    }
    return _MOMENT_TOKEN.sub(lambda m: tokens[m[0]], pattern)


def _global(name: str, fmt: str | None, ctx: Context) -> str | None:
    span_ns = ctx.time_range.to_ns - ctx.time_range.from_ns
    if name == "__from":
        return _format_time(ctx.time_range.from_ns, fmt)
    if name == "__to":
        return _format_time(ctx.time_range.to_ns, fmt)
    simple = {
        "__interval": lambda: format_interval(ctx.interval),
        "__interval_ms": lambda: str(round(ctx.interval.total_seconds() * 1000)),
        "__range": lambda: f"{round(span_ns / NS_PER_S)}s",
        "__range_s": lambda: str(round(span_ns / NS_PER_S)),
        "__range_ms": lambda: str(round(span_ns / NS_PER_MS)),
    }
    return simple[name]() if name in simple else None


def interpolate(text: str, ctx: Context) -> str:
    """Step 1: template and global variables (macros are left for :func:`expand_macros`)."""

    def replace(match: re.Match[str]) -> str:
        name = match["braced"] or match["bracket"] or match["plain"]
        fmt = match["bformat"] or match["sformat"]
        if name.startswith("__"):
            if match["path"] is not None:
                return match[0]  # ${__field.labels.x}, ${__data.fields.x}: panel-side only
            value = _global(name, fmt, ctx)
            return match[0] if value is None else value  # a macro: step 2
        if match["path"] is not None:
            raise ExpansionError(f"${{{name}.{match['path']}}}: variable properties unsupported")
        variable = ctx.variables.get(name)
        if variable is None:
            raise ExpansionError(f"variable ${name} is not defined")
        return _format_variable(variable, fmt)

    return _REFERENCE.sub(replace, text)


# --------------------------------------------------------------------------- macros

_MACRO = re.compile(r"\$(__\w+)\(")
_FILL = re.compile(r"^(?:-?\d+(?:\.\d+)?|NULL|previous)$", re.IGNORECASE)


def _arguments(sql: str, start: int, name: str) -> tuple[list[str], int]:
    """The comma-separated arguments after ``$__name(`` at ``start``; the end index."""
    end = sql.find(")", start)
    if end < 0:
        raise ExpansionError(f"${name}: no closing parenthesis")
    inner = sql[start:end]
    if "(" in inner:
        raise ExpansionError(
            f"${name}: no parentheses inside a macro's arguments (Grafana's macro pattern "
            "stops at the first ')'); compute the expression in a subquery instead"
        )
    args = [a.strip() for a in inner.split(",")] if inner.strip() else []
    return args, end + 1


def _group_seconds(name: str, args: list[str]) -> float:
    if len(args) not in (2, 3):
        raise ExpansionError(f"${name} takes a column, an interval and an optional fill")
    if len(args) == 3 and not _FILL.match(args[2]):
        raise ExpansionError(f"${name}: fill must be a number, NULL or previous, not {args[2]!r}")
    return parse_duration(args[1]).total_seconds()


def _macro(name: str, args: list[str], ctx: Context) -> str:
    tr = ctx.time_range
    from_s, to_s = tr.from_ns // NS_PER_S, tr.to_ns // NS_PER_S

    def one() -> str:
        if len(args) != 1 or not args[0]:
            raise ExpansionError(f"${name} takes exactly one argument (a column)")
        return args[0]

    def none() -> None:
        if args:
            raise ExpansionError(f"${name} takes no arguments")

    if name == "__time":
        return f"{one()} as time"
    if name == "__timeEpoch":
        return f"extract(epoch from {one()}) as time"
    if name == "__timeFilter":
        return f"{one()} BETWEEN '{rfc3339(tr.from_ns)}' AND '{rfc3339(tr.to_ns)}'"
    if name in ("__timeFrom", "__timeTo"):
        none()
        return f"'{rfc3339(tr.from_ns if name == '__timeFrom' else tr.to_ns)}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        seconds = _group_seconds(name, args)
        column = args[0]
        if ctx.timescaledb:
            expression = f"time_bucket('{_number(seconds)}s',{column})"
        else:
            expression = (
                f"floor(extract(epoch from {column})/{_number(seconds)})*{_number(seconds)}"
            )
        return expression + (' AS "time"' if name.endswith("Alias") else "")
    if name == "__unixEpochFilter":
        column = one()
        return f"{column} >= {from_s} AND {column} <= {to_s}"
    if name in ("__unixEpochFrom", "__unixEpochTo"):
        none()
        return str(from_s if name == "__unixEpochFrom" else to_s)
    if name == "__unixEpochNanoFilter":
        column = one()
        return f"{column} >= {tr.from_ns} AND {column} <= {tr.to_ns}"
    if name in ("__unixEpochNanoFrom", "__unixEpochNanoTo"):
        none()
        return str(tr.from_ns if name == "__unixEpochNanoFrom" else tr.to_ns)
    if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
        seconds = _group_seconds(name, args)
        expression = f"floor({args[0]}/{_number(seconds)})*{_number(seconds)}"
        return expression + (' AS "time"' if name.endswith("Alias") else "")
    raise ExpansionError(f"undefined macro: ${name}")


def expand_macros(sql: str, ctx: Context) -> str:
    """Step 2: the data source's macros, left to right."""
    out: list[str] = []
    position = 0
    for match in _MACRO.finditer(sql):
        if match.start() < position:
            continue
        args, end = _arguments(sql, match.end(), match[1])
        out.append(sql[position : match.start()])
        out.append(_macro(match[1], args, ctx))
        position = end
    out.append(sql[position:])
    return "".join(out)


def expand(sql: str, ctx: Context) -> str:
    """Both steps, in Grafana's order: variables first, then macros."""
    return expand_macros(interpolate(sql, ctx), ctx)

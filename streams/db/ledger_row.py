"""The ledger row: the columns of ``events``, defined once, for the sink that writes them
(:mod:`streams.db.ledger`) and every reader (:mod:`streams.db.audit`, the receipts'
re-derivation in :mod:`streams.db.receipts`).

Each field carries its PostgreSQL type beside its Python type, because the sink's binary
COPY must name it. Reads select the columns by the fields' names (:func:`select_list`) and
check what came back against them (:func:`rows_of`), so no column list can drift from the
row. A reader that must not pay for the whole row reads a :func:`projection` of it, whose
fields are checked against the row's when it is made (:class:`ReplayRow`). The table itself
is made by ``migrations/0001_ledger.sql`` and those after it.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, NamedTuple, TypeVar, get_type_hints
from uuid import UUID

from psycopg import sql
from psycopg.rows import RowMaker

from streams.db import DatabaseError


class LedgerRow(NamedTuple):
    """One row of ``events``: the event's own fields (copies of its payload's, kept for
    queries), when it was ingested, what it adds to the rollups, the event itself, where
    Kafka held it, and its link in the partition's hash chain (:mod:`streams.chain`)."""

    event_id: Annotated[UUID, "uuid"]
    event_type: Annotated[str, "text"]
    schema_version: Annotated[int, "int4"]
    department: Annotated[str, "text"]
    district: Annotated[str, "text"]
    occurred_at: Annotated[datetime, "timestamptz"]
    reported_at: Annotated[datetime, "timestamptz"]
    # When the sink's transaction began: one instant per batch written.
    ingested_at: Annotated[datetime, "timestamptz"]
    project: Annotated[str | None, "text"]
    source_ref: Annotated[str | None, "text"]
    corrects: Annotated[UUID | None, "uuid"]  # a correction's original event
    # Metric → quantity as exact decimal text.
    measures: Annotated[dict[str, str], "jsonb"]
    # The event as validated, a JSON object; None where a read left it out (select_list).
    payload: Annotated[Any, "jsonb"]
    topic: Annotated[str, "text"]
    incarnation: Annotated[int, "int4"]
    partition: Annotated[int, "int4"]
    kafka_offset: Annotated[int, "int8"]
    prev_hash: Annotated[bytes, "bytea"]
    hash: Annotated[bytes, "bytea"]

    def mismatched_copies(self) -> list[tuple[str, str, str]]:
        """(column, payload value, stored value) for every column copied from the payload
        (:data:`COPIED_COLUMNS`) that differs from it: what the hash does not cover."""
        payload = self.payload
        if not isinstance(payload, dict):
            return [("payload", "a JSON object", type(payload).__name__)]
        get = payload.get
        corrects = get("corrects")
        expected = (
            get("event_type"),
            get("schema_version"),
            get("department"),
            get("district"),
            _instant(get("occurred_at")),
            _instant(get("reported_at")),
            get("project"),
            get("source_ref"),
            None if corrects is None else _event_id(corrects),
        )
        found = _copied(self)
        # One comparison for the whole row: the audit runs this for every row of the ledger.
        if expected == found:
            return []
        return [
            (name, _text(want), _text(have))
            for name, want, have in zip(COPIED_COLUMNS, expected, found, strict=True)
            if want != have
        ]


Row = TypeVar("Row", bound=NamedTuple)  # LedgerRow or a projection of it
COLUMNS: tuple[str, ...] = LedgerRow._fields
# Columns kept beside the payload for queries, each a copy of the payload's field of the
# same name (in this order in mismatched_copies).
COPIED_COLUMNS = (
    "event_type",
    "schema_version",
    "department",
    "district",
    "occurred_at",
    "reported_at",
    "project",
    "source_ref",
    "corrects",
)
# The copied columns of a row, picked by name in one call.
_copied = operator.itemgetter(*(COLUMNS.index(name) for name in COPIED_COLUMNS))
# The PostgreSQL type of each column, in the row's order.
PG_TYPES: tuple[str, ...] = tuple(
    hint.__metadata__[0] for hint in get_type_hints(LedgerRow, include_extras=True).values()
)


def projection(row_type: type[Row]) -> type[Row]:
    """Check, when the class is made, that each field of ``row_type`` is the
    :class:`LedgerRow` column of that name with the same Python type: a narrower read of the
    ledger row for a reader that must not pay for the rest, not a second definition of it."""
    full = get_type_hints(LedgerRow)
    for name, hint in get_type_hints(row_type).items():
        if full.get(name) != hint:
            raise TypeError(f"{row_type.__name__}.{name} is not the ledger row's column {name}")
    return row_type


@projection
class ReplayRow(NamedTuple):
    """What ``audit replay`` reads of each ledger row: what the rollups and the acceptance
    rules need. Reading the whole row made a replay from the ledger a third slower."""

    event_id: UUID
    event_type: str
    district: str
    occurred_at: datetime
    measures: dict[str, str]
    corrects: UUID | None
    ingested_at: datetime
    payload: Any


def select_list(
    alias: str | None = None,
    instead: Mapping[str, sql.Composable] | None = None,
    row_type: type[NamedTuple] = LedgerRow,
) -> sql.Composed:
    """The columns of ``row_type`` (the ledger row or a projection of it), in order, for a
    SELECT (qualified by ``alias``); ``instead`` puts an expression in a column's place
    (named as the column), e.g. NULL for a payload the reader does not need."""
    columns = row_type._fields
    replaced = instead or {}
    unknown = set(replaced) - set(columns)
    if unknown:  # a caller's mistake, found by any test that reads
        raise ValueError(f"not columns of {row_type.__name__}: {sorted(unknown)}")
    return sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(replaced[name], sql.Identifier(name))
        if name in replaced
        else sql.Identifier(*((alias,) if alias else ()), name)
        for name in columns
    )


def rows_of(row_type: type[Row]) -> Callable[[Any], RowMaker[Row]]:
    """A psycopg row factory, for its sync and async cursors alike: each row a ``row_type``
    (the ledger row or a projection of it), once the query is known to have selected exactly
    its fields, in order."""
    columns, make = row_type._fields, row_type._make

    def factory(cursor: Any) -> RowMaker[Row]:
        names = tuple(column.name for column in cursor.description or ())
        if names != columns:
            raise DatabaseError(f"a ledger read selected {names}, not {columns}")
        return make

    return factory


ledger_rows = rows_of(LedgerRow)


def _text(value: object) -> str:
    return "NULL" if value is None else str(value)


def _instant(value: object) -> object:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value)
    return value


def _event_id(value: object) -> object:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return UUID(value)
    return value

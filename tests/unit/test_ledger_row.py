"""The ledger row is defined once (streams.db.ledger_row): what the sink stages and what the
readers select come from its fields, and a narrower read must be a true projection of it."""

from __future__ import annotations

from typing import NamedTuple
from uuid import UUID

import pytest
from psycopg import sql

from streams.db import DatabaseError
from streams.db.ledger_row import (
    COLUMNS,
    PG_TYPES,
    LedgerRow,
    ReplayRow,
    projection,
    rows_of,
    select_list,
)


def test_every_column_has_its_postgresql_type() -> None:
    assert len(PG_TYPES) == len(COLUMNS) == 19
    assert dict(zip(COLUMNS, PG_TYPES, strict=True))["payload"] == "jsonb"


def test_a_projection_must_repeat_the_rows_columns_exactly() -> None:
    assert set(ReplayRow._fields) <= set(LedgerRow._fields)

    class WrongType(NamedTuple):
        event_id: str

    class NoSuchColumn(NamedTuple):
        event_id: UUID
        amount: int

    for row_type in (WrongType, NoSuchColumn):
        with pytest.raises(TypeError):
            projection(row_type)


class _Column:
    def __init__(self, name: str) -> None:
        self.name = name


class _Cursor:
    def __init__(self, names: tuple[str, ...]) -> None:
        self.description = [_Column(name) for name in names]


def test_a_read_must_select_the_rows_columns_in_order() -> None:
    make = rows_of(ReplayRow)(_Cursor(ReplayRow._fields))
    values = tuple(range(len(ReplayRow._fields)))
    assert make(values) == ReplayRow._make(values)
    with pytest.raises(DatabaseError):
        rows_of(ReplayRow)(_Cursor(tuple(reversed(ReplayRow._fields))))


def test_select_list_names_the_columns_and_refuses_others() -> None:
    assert isinstance(select_list("e", {"payload": sql.SQL("NULL")}, ReplayRow), sql.Composed)
    with pytest.raises(ValueError):
        select_list(instead={"no_such_column": sql.SQL("NULL")})

"""Least privilege in PostgreSQL (streams.db.roles), tried as each role would: the workers'
role can append to the ledger but never change it, the auditors' role and Grafana's reader
can change nothing, even with their read-only default turned off; the owner role owns
everything and nobody logs in as it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors, sql

from streams.db import connect
from streams.db.roles import APP_PRIVILEGES, AUDITOR_ROLE, OWNER_ROLE
from streams.settings import Settings

pytestmark = pytest.mark.integration

# Each table with a column of it (an UPDATE must name one before its privilege is checked).
COLUMN = {
    "events": "event_id",
    "event_keys": "event_id",
    "correction_keys": "event_id",
    "deadletters": "topic",
    "topic_incarnations": "topic",
    "metric_daily": "total",
    "consumer_offsets": "next_offset",
    "pledges": "target",
    "schema_migrations": "version",
}
LEDGER = ("events", "event_keys", "correction_keys", "deadletters", "topic_incarnations")
EVERY_TABLE = tuple(COLUMN)


def _refused(conn: psycopg.Connection, statement: sql.Composable | str) -> bool:
    """True if ``statement`` is refused for want of a privilege (rolled back either way)."""
    try:
        conn.execute(statement if isinstance(statement, sql.Composable) else statement.encode())
    except (errors.InsufficientPrivilege, errors.ReadOnlySqlTransaction):
        conn.rollback()
        return True
    conn.rollback()
    return False


@pytest.fixture
def as_worker(isolated: Settings) -> Iterator[psycopg.Connection]:
    with connect(isolated) as conn:
        yield conn


@pytest.fixture
def as_auditor(isolated: Settings) -> Iterator[psycopg.Connection]:
    with connect(isolated, audit=True) as conn:
        # Turned off, as an auditor's session could: the privileges must hold on their own.
        conn.execute("SET default_transaction_read_only = off")
        conn.commit()
        yield conn


def test_the_workers_role_cannot_change_the_ledger(
    as_worker: psycopg.Connection, isolated: Settings
) -> None:
    for table in LEDGER:
        name = sql.Identifier(table)
        for statement in (
            sql.SQL("UPDATE {} SET {} = {}").format(name, *[sql.Identifier(COLUMN[table])] * 2),
            sql.SQL("DELETE FROM {}").format(name),
            sql.SQL("TRUNCATE {}").format(name),
            sql.SQL("ALTER TABLE {} ADD COLUMN x int").format(name),
            sql.SQL("DROP TABLE {}").format(name),
        ):
            assert _refused(as_worker, statement), statement.as_string(as_worker)
    for statement in (
        "CREATE TABLE mine (x int)",
        "DROP TRIGGER pledges_immutable ON pledges",
        "DELETE FROM metric_daily",
        "DELETE FROM consumer_offsets",
        "DELETE FROM pledges",
    ):
        assert _refused(as_worker, statement), statement
    # A GRANT without the grant option only warns: what counts is that nothing was granted.
    as_worker.execute("GRANT UPDATE, DELETE ON events TO PUBLIC")
    changes = as_worker.execute(
        "SELECT has_table_privilege('events', 'UPDATE'), has_table_privilege('events', 'DELETE')"
    ).fetchone()
    assert changes == (False, False)
    as_worker.rollback()
    # Nor a temporary table: the sink needs none (it COPYs straight into its tables).
    assert _refused(as_worker, "CREATE TEMP TABLE stage (x int) ON COMMIT DROP")
    # What the sink does is allowed: appending ledger rows, maintaining rollups and cursors
    # (the sink's own tests write through this role).
    as_worker.execute("UPDATE metric_daily SET total = total")
    as_worker.execute("UPDATE consumer_offsets SET next_offset = next_offset")
    as_worker.rollback()
    with connect(isolated, admin=True) as conn:
        owners = conn.execute(
            """SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s""",
            (isolated.db_schema,),
        ).fetchall()
        schema_owner = conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s",
            (isolated.db_schema,),
        ).fetchone()
        # LOGIN (TimescaleDB's policies run as a hypertable's owner) but no password.
        password = conn.execute(
            "SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = %s", (OWNER_ROLE,)
        ).fetchone()
    assert owners == [(OWNER_ROLE,)]
    assert schema_owner == (OWNER_ROLE,)
    assert password == (True,)
    assert set(APP_PRIVILEGES) <= set(EVERY_TABLE) | {"pledge_schedule"}


def test_the_auditors_role_writes_nothing(as_auditor: psycopg.Connection) -> None:
    role = as_auditor.execute("SELECT current_user").fetchone()
    assert role == (AUDITOR_ROLE,)
    assert as_auditor.execute("SELECT count(*) FROM events").fetchone() == (0,)
    as_auditor.commit()
    for table in EVERY_TABLE:
        name = sql.Identifier(table)
        for statement in (
            sql.SQL("UPDATE {} SET {} = {}").format(name, *[sql.Identifier(COLUMN[table])] * 2),
            sql.SQL("DELETE FROM {}").format(name),
            sql.SQL("TRUNCATE {}").format(name),
        ):
            assert _refused(as_auditor, statement), statement.as_string(as_auditor)
    for statement in (
        "INSERT INTO deadletters (topic, partition, kafka_offset, reason, message) "
        "VALUES ('t', 0, 0, 'r', 'm')",
        "CREATE TABLE mine (x int)",
        "CREATE TEMP TABLE mine (x int)",
    ):
        assert _refused(as_auditor, statement), statement

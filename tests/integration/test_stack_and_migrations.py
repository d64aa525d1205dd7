"""The local stack and the migration runner, against the real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from streams.db import connect
from streams.db.migrate import Migration, available, migrate
from streams.db.roles import OWNER_ROLE
from streams.settings import Settings
from tests.conftest import ROOT, DbMode

pytestmark = pytest.mark.integration


def test_migrate_is_idempotent(isolated: Settings, db_mode: DbMode) -> None:
    # On TimescaleDB every file is applied; on plain PostgreSQL the *.timescale.sql ones wait.
    def applies(m: Migration) -> bool:
        return db_mode == "timescaledb" or not m.timescale_only

    again = migrate(isolated)
    assert {o.migration.version: o.status for o in again} == {
        m.version: "already applied" if applies(m) else "pending: needs timescaledb"
        for m in available()
    }
    with connect(isolated) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in available() if applies(m)]


def test_an_edited_migration_is_refused(isolated: Settings) -> None:
    # Edited as only a superuser could: the application role may not touch the history.
    with connect(isolated, admin=True) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
        conn.commit()
    with pytest.raises(Exception, match="changed after it was applied"):
        migrate(isolated)


def test_tables_belong_to_the_owner_role_not_the_application_role(isolated: Settings) -> None:
    # The workers' role owns nothing: an owner could grant itself anything (test_roles.py
    # tries what it may not do).
    with connect(isolated) as conn:
        owners = {
            r[0]
            for r in conn.execute(
                "SELECT tableowner FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
    assert owners == {OWNER_ROLE}
    assert (
        psycopg.conninfo.conninfo_to_dict(isolated.database_url.get_secret_value())["user"]
        not in owners
    )


def test_stack_status_names_each_component_with_pid(stack_settings: Settings) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "stack", "status"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=os.environ | {"COLUMNS": "200"},
    ).stdout
    for name in ("kafka", "postgres"):
        line = next(line for line in out.splitlines() if name in line)
        assert "running" in line or "external" in line, out


def test_stack_status_names_each_databases_engine(
    stack_settings: Settings, db_mode: DbMode
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "stack", "status"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=os.environ | {"COLUMNS": "250"},
    ).stdout
    # The row of the database this session runs on: the stack's main cluster, or the one
    # the environment points at (the plain pass of `make test`).
    line = next(line for line in out.splitlines() if "│ postgres " in line)
    if db_mode == "timescaledb":
        assert "TimescaleDB 2." in line and "preloaded" in line, out
    else:
        assert "plain PostgreSQL: timescaledb" in line, out

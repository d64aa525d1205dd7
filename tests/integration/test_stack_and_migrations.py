"""The local stack and the migration runner, against the real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from services.settings import Settings
from streams.db import connect
from streams.db.migrate import available, migrate
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_migrate_is_idempotent(isolated: Settings) -> None:
    again = migrate(isolated)
    assert {o.status for o in again if not o.migration.timescale_only} == {"already applied"}
    with connect(isolated) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in available() if not m.timescale_only]


def test_an_edited_migration_is_refused(isolated: Settings) -> None:
    with connect(isolated) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
        conn.commit()
    with pytest.raises(Exception, match="changed after it was applied"):
        migrate(isolated)


def test_tables_belong_to_the_application_role(isolated: Settings) -> None:
    with connect(isolated) as conn:
        owners = {
            r[0]
            for r in conn.execute(
                "SELECT tableowner FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
    assert owners == {
        psycopg.conninfo.conninfo_to_dict(isolated.database_url.get_secret_value())["user"]
    }


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

"""``citystream migrate`` in every state of the server and the database, on the real PostgreSQL.

The session runs on TimescaleDB (the stack's main cluster, the extension preloaded) or on
plain PostgreSQL (its plain cluster: the extension installed but not preloaded; or a machine
without the extension); each test states the outcome for the engine it runs on. States no
real server here can be put in (the extension created in a database whose server no longer
preloads it) are covered by ``tests/unit/test_db_engine.py``.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from streams.db import DatabaseError, connect
from streams.db.migrate import apply
from streams.db.roles import OWNER_ROLE
from streams.db.timescale import facts
from streams.settings import Settings
from tests.conftest import ROOT, DbMode, isolated_schema, settings_env

pytestmark = pytest.mark.integration


def _hypertables(settings: Settings) -> list[str]:
    with connect(settings) as conn:
        view = conn.execute("SELECT to_regclass('timescaledb_information.hypertables')")
        if view.fetchone() == (None,):  # no extension in this database
            return []
        return [
            row[0]
            for row in conn.execute(
                """SELECT hypertable_name FROM timescaledb_information.hypertables
                   WHERE hypertable_schema = %s ORDER BY 1""",
                (settings.db_schema,),
            )
        ]


def _continuous_aggregates(settings: Settings) -> list[str]:
    with connect(settings) as conn:
        return [
            row[0]
            for row in conn.execute(
                """SELECT view_name FROM timescaledb_information.continuous_aggregates
                   WHERE view_schema = %s ORDER BY 1""",
                (settings.db_schema,),
            )
        ]


def _ledger_indexes(settings: Settings) -> set[str]:
    with connect(settings) as conn:
        return {
            row[0]
            for row in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'events'",
                (settings.db_schema,),
            )
        }


def test_migrate_reports_the_engine_and_why(isolated: Settings, db_mode: DbMode) -> None:
    report = apply(isolated)
    with connect(isolated, admin=True) as conn:
        server = facts(conn)
    assert report.mode.timescale is (db_mode == "timescaledb")
    if db_mode == "timescaledb":
        assert report.mode.summary == f"TimescaleDB {server.created} (extension in schema public)"
        assert report.mode.warning is None
        assert _hypertables(isolated) == ["events", "metric_daily"]
        assert _continuous_aggregates(isolated) == []  # views (0010): exact after every commit
        # 0014: a compressed chunk keeps no index, so (event_type, district, occurred_at)
        # only covered the newest chunks, where events_occurred_at serves its queries.
        assert _ledger_indexes(isolated) == {
            "events_chain",
            "events_corrects",
            "events_ingested_at",
            "events_occurred_at",
        }
        return
    # Plain PostgreSQL: the (event_type, district, occurred_at) index covers the whole history.
    assert "events_type_district" in _ledger_indexes(isolated)
    if server.installed is not None:
        # Installed (the files are shared by every cluster of the machine) but not preloaded.
        assert report.mode.summary == (
            f"plain PostgreSQL: timescaledb {server.installed} is installed but not preloaded"
        )
        assert report.mode.warning is not None
        assert "shared_preload_libraries = 'timescaledb'" in report.mode.warning
        assert server.created is None
    else:
        assert report.mode.summary == "plain PostgreSQL: the timescaledb extension is not installed"
        assert report.mode.warning is None


def test_the_cli_says_which_engine(isolated: Settings, db_mode: DbMode) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "migrate"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=settings_env(isolated) | {"COLUMNS": "250"},
    )
    first = result.stdout.splitlines()[0]
    if db_mode == "timescaledb":
        assert first.startswith("database: TimescaleDB 2."), result.stdout
    else:
        assert first.startswith("database: plain PostgreSQL: "), result.stdout
        assert "0002_timescale: pending: needs timescaledb" in result.stdout
        if "installed but not preloaded" in first:
            assert "warning: to run TimescaleDB, set shared_preload_libraries" in result.stderr


@pytest.fixture
def fresh_database(stack_settings: Settings) -> Iterator[Settings]:
    """A new database owned by the application role, on the session's server; dropped after."""
    assert stack_settings.admin_database_url is not None, "the local stack provides one"
    admin = stack_settings.admin_database_url.get_secret_value()
    app_role = conninfo_to_dict(stack_settings.database_url.get_secret_value())["user"]
    name = f"citystream_t{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(str(app_role))
            )
        )
    try:
        yield stack_settings.model_copy(
            update={
                "database_url": SecretStr(
                    make_conninfo(stack_settings.database_url.get_secret_value(), dbname=name)
                ),
                "admin_database_url": SecretStr(make_conninfo(admin, dbname=name)),
            }
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            # FORCE: TimescaleDB's job scheduler keeps a session in every database that has it.
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.parametrize("schema", ["public", "t_custom"])
def test_a_fresh_database_in_any_schema(
    fresh_database: Settings, db_mode: DbMode, schema: str
) -> None:
    settings = fresh_database.model_copy(update={"db_schema": schema})
    first = apply(settings)
    again = apply(settings)
    assert {o.status for o in first.outcomes} <= {"applied", "pending: needs timescaledb"}
    assert {o.status for o in again.outcomes} <= {"already applied", "pending: needs timescaledb"}
    if db_mode == "timescaledb":
        assert first.mode.summary.endswith("(extension created in schema public)")
        assert again.mode.summary.endswith("(extension in schema public)")
        assert _hypertables(settings) == ["events", "metric_daily"]
        assert _continuous_aggregates(settings) == []  # views (0010): exact after every commit
    else:
        assert _hypertables(settings) == []


@pytest.mark.timescaledb
def test_an_extension_created_beforehand_in_another_schema(fresh_database: Settings) -> None:
    assert fresh_database.admin_database_url is not None
    with psycopg.connect(fresh_database.admin_database_url.get_secret_value()) as conn:
        conn.execute("CREATE SCHEMA tsdb")
        conn.execute("CREATE EXTENSION timescaledb SCHEMA tsdb")
    settings = fresh_database.model_copy(update={"db_schema": "t_app"})
    report = apply(settings)
    assert report.mode.summary.endswith("(extension in schema tsdb)")
    assert _hypertables(settings) == ["events", "metric_daily"]
    assert _continuous_aggregates(settings) == []  # views (0010): exact after every commit
    # Nothing of ours went into the extension's schema, nothing of the extension into ours.
    with connect(settings) as conn:
        tables = conn.execute(
            "SELECT table_schema, count(*) FROM information_schema.tables "
            "WHERE table_schema IN ('tsdb', 't_app') GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [schema for schema, _ in tables] == ["t_app"]
    # The application role was given what it needs to call the extension's functions.
    with connect(settings) as conn:
        usage = conn.execute("SELECT has_schema_privilege('tsdb', 'USAGE')").fetchone()
    assert usage == (True,)


def test_migrate_without_a_superuser(fresh_database: Settings) -> None:
    # The application role alone: it may not read shared_preload_libraries, create the
    # extension (not a trusted one), nor create the roles and set their privileges.
    settings = fresh_database.model_copy(update={"admin_database_url": None, "db_schema": "t_app"})
    # On either engine: the roles and their privileges (streams.db.roles) need one.
    with pytest.raises(
        DatabaseError, match=r"needs a superuser .* set CITYSTREAM_ADMIN_DATABASE_URL"
    ):
        apply(settings)


def test_a_failed_migration_leaves_no_test_schema(stack_settings: Settings) -> None:
    # A migration that fails after the schema exists (here: a file changed after it was
    # applied) must not leak the schema of the test that was being set up.
    suffix = uuid.uuid4().hex[:10]
    schema = f"t_{suffix}"
    with connect(stack_settings.model_copy(update={"db_schema": schema}), admin=True) as conn:
        # As an earlier migrate would have left it: made by the owner role.
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(OWNER_ROLE)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("INSERT INTO schema_migrations VALUES (1, 'ledger', 'edited')")
        conn.commit()
    with (
        pytest.raises(DatabaseError, match="changed after it was applied"),
        isolated_schema(stack_settings, suffix),
    ):
        pytest.fail("the migration should have failed")
    with connect(stack_settings) as conn:
        left = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchall()
    assert left == []

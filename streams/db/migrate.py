"""Numbered SQL migrations, applied once each, in order, recorded in ``schema_migrations``.

A file named ``NNNN_name.timescale.sql`` is applied only in TimescaleDB mode (see
``streams.db.timescale``: the server preloads the extension); it stays pending (and is
applied by a later run) on plain PostgreSQL. In TimescaleDB mode the extension's schema
follows the application schema on the session's ``search_path``, so the migrations call
``create_hypertable``, ``time_bucket`` and the policy functions unqualified whatever
``CITYSTREAM_DB_SCHEMA`` is and wherever the extension was created.

Migrations run as the application role, so the workers own their tables. A file named
``NNNN_name.admin.sql`` runs with the admin connection's own rights instead, for what the
application role may not do (create the read-only role ``grafana_reader``); it reads the
application role's name from the setting ``citystream.app_role``. When
``CITYSTREAM_GRAFANA_DB_PASSWORD`` is set, every run also sets that role's password.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from psycopg import Connection, errors, sql
from psycopg.conninfo import conninfo_to_dict

from services.settings import Settings
from streams.db import DatabaseError, connect, schema_identifier
from streams.db.timescale import EXTENSION, Mode, decide, facts

# Any constant will do; it only has to be the same for every migrating process.
MIGRATION_LOCK = 0x63697479


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str
    timescale_only: bool
    # Runs with the admin connection's rights, not as the application role.
    as_admin: bool = False

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    migration: Migration
    status: Literal["applied", "already applied", "pending: needs timescaledb"]


def available() -> list[Migration]:
    found = []
    for entry in resources.files("streams.db.migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        stem = entry.name.removesuffix(".sql")
        timescale_only = stem.endswith(".timescale")
        stem = stem.removesuffix(".timescale")
        as_admin = stem.endswith(".admin")
        stem = stem.removesuffix(".admin")
        number, _, name = stem.partition("_")
        text = entry.read_text(encoding="utf-8")
        found.append(Migration(int(number), name, text, timescale_only, as_admin))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise DatabaseError(f"two migrations share a number: {versions}")
    return found


@dataclass(frozen=True)
class Report:
    # The engine this run used, and why (with a warning when the operator should act).
    mode: Mode
    outcomes: list[Outcome]


def migrate(settings: Settings) -> list[Outcome]:
    return apply(settings).outcomes


def apply(settings: Settings) -> Report:
    """Apply the pending migrations; report the engine used and each migration's outcome."""
    outcomes = []
    with connect(settings, admin=True) as conn:
        # Held for the whole run: a second `migrate` (another container, a test) waits here.
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        # Read as the admin connection: only a privileged role may see shared_preload_libraries.
        mode = decide(facts(conn))
        # Everything else is created as the application role, so the workers own their tables.
        app_role = conninfo_to_dict(settings.database_url.get_secret_value()).get("user")
        _as_app_role(conn, app_role)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema_identifier(settings)))
        if mode.timescale:
            mode = _use_extension(conn, settings, mode, app_role)
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY, name text NOT NULL,
                   checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        conn.commit()
        done: dict[int, str] = dict(
            conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        )
        for migration in available():
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise DatabaseError(
                        f"migration {migration.version:04d}_{migration.name} was changed after "
                        "it was applied; add a new migration instead of editing an applied one"
                    )
                outcomes.append(Outcome(migration, "already applied"))
                continue
            if migration.timescale_only and not mode.timescale:
                outcomes.append(Outcome(migration, "pending: needs timescaledb"))
                continue
            with conn.transaction():
                if migration.as_admin:
                    _apply_as_admin(conn, migration, app_role)
                else:
                    conn.execute(migration.text.encode())  # our own file, not user input
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            outcomes.append(Outcome(migration, "applied"))
        if settings.grafana_db_password is not None:
            _set_reader_password(conn, settings.grafana_db_password.get_secret_value(), app_role)
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        conn.commit()
    return Report(mode, outcomes)


def _use_extension(conn: Connection[Any], settings: Settings, mode: Mode, app_role: object) -> Mode:
    """Create the extension if this database lacks it; put its schema on the search path."""
    server = facts(conn)
    if server.created is None:
        # Not a trusted extension: only a superuser may create it. In `public`, where
        # Timescale's images and guides put it: on every role's default search_path (Grafana's
        # data source writes time_bucket unqualified) and never an application schema, which
        # a DROP SCHEMA ... CASCADE (every test's clean-up) would take the extension with.
        conn.execute("RESET ROLE")
        try:
            conn.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS {} SCHEMA public").format(
                    sql.Identifier(EXTENSION)
                )
            )
        except errors.InsufficientPrivilege as exc:
            raise DatabaseError(
                "creating the timescaledb extension needs a superuser: set "
                f"CITYSTREAM_ADMIN_DATABASE_URL, or have one run CREATE EXTENSION timescaledb "
                f"SCHEMA public in this database ({exc})".strip()
            ) from exc
        _as_app_role(conn, app_role)
        server = facts(conn)
        mode = Mode(True, f"TimescaleDB {server.created} (extension created in schema public)")
    if server.schema is None:
        raise DatabaseError("the timescaledb extension vanished while migrating; migrate again")
    if app_role:
        _grant_usage(conn, server.schema, str(app_role))
    # The application schema first: every object is created and found there. The extension's
    # schema after it, so its functions resolve without naming their schema in the files.
    path = [settings.db_schema] + ([server.schema] if server.schema != settings.db_schema else [])
    conn.execute(
        sql.SQL("SET search_path TO {}").format(sql.SQL(", ").join(map(sql.Identifier, path)))
    )
    return mode


def _grant_usage(conn: Connection[Any], schema: str, app_role: str) -> None:
    """The application role calls the extension's functions: it needs USAGE on their schema
    (``public`` has it; a schema an operator made for the extension may not)."""
    query = "SELECT has_schema_privilege(%s, %s, 'USAGE')"
    if conn.execute(query, (app_role, schema)).fetchone() == (True,):
        return
    conn.execute("RESET ROLE")
    # Without the right to grant it, PostgreSQL only warns: the check below decides.
    conn.execute(
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
            sql.Identifier(schema), sql.Identifier(app_role)
        )
    )
    _as_app_role(conn, app_role)
    if conn.execute(query, (app_role, schema)).fetchone() != (True,):
        raise DatabaseError(
            f"the role {app_role} may not use schema {schema}, where the timescaledb extension "
            f"lives: have a superuser run GRANT USAGE ON SCHEMA {schema} TO {app_role}, or set "
            "CITYSTREAM_ADMIN_DATABASE_URL"
        )


def _as_app_role(conn: Connection[Any], app_role: object) -> None:
    if app_role:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(str(app_role))))


def _apply_as_admin(conn: Connection[Any], migration: Migration, app_role: object) -> None:
    """Run ``migration`` with the admin connection's rights, inside the open transaction."""
    conn.execute("RESET ROLE")
    conn.execute(
        "SELECT set_config('citystream.app_role', coalesce(%s, current_user), true)",
        (str(app_role) if app_role else None,),
    )
    try:
        conn.execute(migration.text.encode())  # our own file, not user input
    except errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"migration {migration.version:04d}_{migration.name} needs a superuser: set "
            f"CITYSTREAM_ADMIN_DATABASE_URL ({exc})".strip()
        ) from exc
    _as_app_role(conn, app_role)


def _set_reader_password(conn: Connection[Any], password: str, app_role: object) -> None:
    """LOGIN and the password for ``grafana_reader``; again on every run, so that changing
    CITYSTREAM_GRAFANA_DB_PASSWORD and migrating again is how the password is rotated."""
    # The SCRAM verifier is computed here (libpq), so the password itself never reaches the
    # server, its logs or pg_stat_statements; ALTER ROLE takes it as a quoted literal.
    verifier = conn.pgconn.encrypt_password(password.encode(), b"grafana_reader", b"scram-sha-256")
    statement = sql.SQL("ALTER ROLE grafana_reader WITH LOGIN PASSWORD {}").format(
        sql.Literal(verifier.decode())
    )
    conn.execute("RESET ROLE")
    try:
        conn.execute(statement)
    except errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            "setting the password of grafana_reader needs a superuser: set "
            f"CITYSTREAM_ADMIN_DATABASE_URL ({exc})".strip()
        ) from exc
    _as_app_role(conn, app_role)
    conn.commit()

"""Numbered SQL migrations, applied once each, in order, recorded in ``schema_migrations``.

A file named ``NNNN_name.timescale.sql`` is applied only in TimescaleDB mode (see
``streams.db.timescale``: the server preloads the extension); it stays pending (and is
applied by a later run) on plain PostgreSQL. In TimescaleDB mode the extension's schema
follows the application schema on the session's ``search_path``, so the migrations call
``create_hypertable``, ``time_bucket`` and the policy functions unqualified whatever
``CITYSTREAM_DB_SCHEMA`` is and wherever the extension was created.

Migrations run as the owner role ``citystream_owner`` (``streams.db.roles``), which owns the
schema and every table; the application role owns nothing and gets exactly the privileges
``streams.db.roles`` lists, set again by every run after the migrations. Migrating needs a
superuser (``CITYSTREAM_ADMIN_DATABASE_URL``). A file named ``NNNN_name.admin.sql`` runs
with the admin connection's own rights, for what the owner may not do (create the
read-only role ``grafana_reader``); it reads the owner role's name from the setting
``citystream.app_role``. When ``CITYSTREAM_GRAFANA_DB_PASSWORD`` or
``CITYSTREAM_AUDIT_DB_PASSWORD`` is set, every run also sets that role's password.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from psycopg import Connection, errors, sql
from psycopg.conninfo import conninfo_to_dict

from streams.db import DatabaseError, connect, roles, schema_identifier
from streams.db.timescale import EXTENSION, Mode, decide, facts
from streams.settings import Settings

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
        app_role = str(conninfo_to_dict(settings.database_url.get_secret_value()).get("user"))
        roles.prepare(conn, schema=settings.db_schema, app_role=app_role)
        # Everything else is created as the owner role: the workers' role owns nothing, so it
        # has no more rights on the ledger than streams.db.roles grants it.
        _as_owner(conn)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema_identifier(settings)))
        if mode.timescale:
            mode = _use_extension(conn, settings, mode, app_role)
        # Qualified: a name that resolved anywhere else on the search path (the extension's
        # schema) would make another schema's history this one's.
        history = sql.Identifier(settings.db_schema, "schema_migrations")
        conn.execute(
            sql.SQL(
                """CREATE TABLE IF NOT EXISTS {} (
                   version integer PRIMARY KEY, name text NOT NULL,
                   checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"""
            ).format(history)
        )
        conn.commit()
        done: dict[int, str] = dict(
            conn.execute(sql.SQL("SELECT version, checksum FROM {}").format(history)).fetchall()
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
                    _apply_as_admin(conn, migration)
                else:
                    conn.execute(migration.text.encode())  # our own file, not user input
                conn.execute(
                    sql.SQL("INSERT INTO {} (version, name, checksum) VALUES (%s, %s, %s)").format(
                        history
                    ),
                    (migration.version, migration.name, migration.checksum),
                )
            outcomes.append(Outcome(migration, "applied"))
        conn.execute("RESET ROLE")
        roles.grant(conn, schema=settings.db_schema, app_role=app_role)
        for role, password in (
            (roles.READER_ROLE, settings.grafana_db_password),
            (roles.AUDITOR_ROLE, settings.audit_db_password),
        ):
            if password is not None:
                roles.set_password(conn, role, password.get_secret_value())
        conn.commit()
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        conn.commit()
    return Report(mode, outcomes)


def _use_extension(conn: Connection[Any], settings: Settings, mode: Mode, app_role: str) -> Mode:
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
        _as_owner(conn)
        server = facts(conn)
        mode = Mode(True, f"TimescaleDB {server.created} (extension created in schema public)")
    if server.schema is None:
        raise DatabaseError("the timescaledb extension vanished while migrating; migrate again")
    # The owner creates hypertables; the application role inserts into them.
    for role in (roles.OWNER_ROLE, app_role):
        _grant_usage(conn, server.schema, role)
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
    _as_owner(conn)
    if conn.execute(query, (app_role, schema)).fetchone() != (True,):
        raise DatabaseError(
            f"the role {app_role} may not use schema {schema}, where the timescaledb extension "
            f"lives: have a superuser run GRANT USAGE ON SCHEMA {schema} TO {app_role}, or set "
            "CITYSTREAM_ADMIN_DATABASE_URL"
        )


def _as_owner(conn: Connection[Any]) -> None:
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(roles.OWNER_ROLE)))


def _apply_as_admin(conn: Connection[Any], migration: Migration) -> None:
    """Run ``migration`` with the admin connection's rights, inside the open transaction."""
    conn.execute("RESET ROLE")
    # The role that creates the schema's tables (0005 grants readers SELECT on what it
    # creates later); the setting's name is older than the owner role.
    conn.execute("SELECT set_config('citystream.app_role', %s, true)", (roles.OWNER_ROLE,))
    try:
        conn.execute(migration.text.encode())  # our own file, not user input
    except errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"migration {migration.version:04d}_{migration.name} needs a superuser: set "
            f"CITYSTREAM_ADMIN_DATABASE_URL ({exc})".strip()
        ) from exc
    _as_owner(conn)

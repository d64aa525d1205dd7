"""Numbered SQL migrations, applied once each, in order, recorded in ``schema_migrations``.

A file named ``NNNN_name.timescale.sql`` is applied only where the ``timescaledb``
extension is available; it stays pending (and is applied later) where it is not.

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


def migrate(settings: Settings) -> list[Outcome]:
    outcomes = []
    with connect(settings, admin=True) as conn:
        # Held for the whole run: a second `migrate` (another container, a test) waits here.
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        timescale = timescale_available(conn)
        if timescale:
            # Not a trusted extension: only the admin connection may create it.
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        # Everything else is created as the application role, so the workers own their tables.
        app_role = conninfo_to_dict(settings.database_url.get_secret_value()).get("user")
        if app_role:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(str(app_role))))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema_identifier(settings)))
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
            if migration.timescale_only and not timescale:
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
    return outcomes


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


def timescale_available(conn: Connection[Any]) -> bool:
    """Installed *and* preloaded: an installed library that the server does not preload
    is listed in ``pg_available_extensions`` yet cannot be created."""
    row = conn.execute(
        """SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
                  AND 'timescaledb' = ANY(string_to_array(
                      replace(current_setting('shared_preload_libraries'), ' ', ''), ','))"""
    ).fetchone()
    return bool(row and row[0])

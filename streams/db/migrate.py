"""Numbered SQL migrations, applied once each, in order, recorded in ``schema_migrations``.

A file named ``NNNN_name.timescale.sql`` is applied only where the ``timescaledb``
extension is available; it stays pending (and is applied later) where it is not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from psycopg import Connection, sql
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
        number, _, name = stem.partition("_")
        found.append(
            Migration(int(number), name, entry.read_text(encoding="utf-8"), timescale_only)
        )
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
                conn.execute(migration.text.encode())  # our own file, not user input
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            outcomes.append(Outcome(migration, "applied"))
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        conn.commit()
    return outcomes


def timescale_available(conn: Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None

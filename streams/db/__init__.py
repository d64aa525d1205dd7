"""The only package that opens database connections.

Reads ``CITYSTREAM_DATABASE_URL`` and ``CITYSTREAM_DB_SCHEMA``; every connection's
``search_path`` is set to that schema, so tests can give each test its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from schemas.errors import CityStreamError
from streams.settings import Settings


class DatabaseError(CityStreamError):
    """A database operation failed; the message says which and why."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached right now; retrying later may succeed."""


@contextmanager
def errors(what: str) -> Iterator[None]:
    """Driver errors leave as the project's own, naming what was being done."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"{what} failed: {exc}".strip()) from exc
    except psycopg.Error as exc:
        raise DatabaseError(f"{what} failed: {exc}".strip()) from exc


def conninfo(
    settings: Settings,
    *,
    admin: bool = False,
    audit: bool = False,
    statement_timeout_s: float | None = None,
) -> str:
    """``statement_timeout_s`` bounds every statement of the session (the worker's sink:
    a write stuck behind a lock fails and is retried instead of stalling the family).
    ``audit``: as the read-only role of the audit commands (streams.db.roles)."""
    url = settings.database_url
    if admin and settings.admin_database_url is not None:
        url = settings.admin_database_url
    if audit:
        if settings.audit_database_url is None:
            raise DatabaseError(
                "the audit commands connect as the read-only role citystream_auditor: set "
                "CITYSTREAM_AUDIT_DATABASE_URL (and CITYSTREAM_AUDIT_DB_PASSWORD for migrate)"
            )
        url = settings.audit_database_url
    options = f"-c search_path={settings.db_schema}"
    if statement_timeout_s is not None:
        options += f" -c statement_timeout={int(statement_timeout_s * 1000)}"
    return psycopg.conninfo.make_conninfo(
        url.get_secret_value(),
        options=options,
        application_name="citystream",
        # A server that accepts the connection but never answers (starting up, or a
        # half-open network path) must not hang a worker: it fails and is retried.
        connect_timeout=10,
    )


def connect(
    settings: Settings, *, admin: bool = False, audit: bool = False, autocommit: bool = False
) -> psycopg.Connection:
    try:
        return psycopg.connect(conninfo(settings, admin=admin, audit=audit), autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}".strip()) from exc


async def connect_async(
    settings: Settings, *, statement_timeout_s: float | None = None
) -> psycopg.AsyncConnection:
    try:
        return await psycopg.AsyncConnection.connect(
            conninfo(settings, statement_timeout_s=statement_timeout_s)
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}".strip()) from exc


def schema_identifier(settings: Settings) -> sql.Identifier:
    return sql.Identifier(settings.db_schema)

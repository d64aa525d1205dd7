"""TimescaleDB or plain PostgreSQL: which engine a database runs, decided from the server.

Reads ``pg_available_extensions`` (is the extension installed on the server),
``shared_preload_libraries`` (does the server preload it: only then can it be created and
used) and ``pg_extension`` (is it created in this database, in which schema). Touches no
table. ``streams.db.migrate`` decides with :func:`decide` on every run; ``citystream stack
status`` shows the same summary line.

Installed but not preloaded runs **plain PostgreSQL with a warning**, not an error: the
extension's files are shared by every cluster of that PostgreSQL version on a machine, and
a cluster that chose not to preload it (another project's, or the local stack's plain-mode
cluster the tests run against) must keep working. The ``*.timescale.sql`` migrations then
stay pending and are applied by the first ``migrate`` after the server preloads it. The
one state that is an error is an extension already created in the database of a server
that no longer preloads it: its hypertables cannot be used until the server is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from streams.db import DatabaseError

EXTENSION = "timescaledb"

PRELOAD_HINT = (
    "set shared_preload_libraries = 'timescaledb' in postgresql.conf and restart PostgreSQL"
)

_FACTS = """
SELECT (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'),
       coalesce(
           (SELECT 'timescaledb' = ANY (string_to_array(replace(setting, ' ', ''), ','))
              FROM pg_settings WHERE name = 'shared_preload_libraries'),
           -- A role without pg_read_all_settings does not see that row; the loader that
           -- the server preloads defines this setting in every session.
           EXISTS (SELECT FROM pg_settings WHERE name = 'timescaledb.disable_load')),
       e.extversion,
       n.nspname
FROM (VALUES (1)) AS one (x)
LEFT JOIN pg_extension e ON e.extname = 'timescaledb'
LEFT JOIN pg_namespace n ON n.oid = e.extnamespace
"""


@dataclass(frozen=True)
class ServerFacts:
    # The version the server would create; None: the extension is not installed.
    installed: str | None
    preloaded: bool
    # The version created in this database, and the schema its functions live in.
    created: str | None = None
    schema: str | None = None


@dataclass(frozen=True)
class Mode:
    timescale: bool
    # One line for people: the engine, and why.
    summary: str
    # Something the operator should do; the mode works without it.
    warning: str | None = None


def facts(conn: Connection[Any]) -> ServerFacts:
    # One row by construction (the VALUES on the left of the joins).
    installed, preloaded, created, schema = conn.execute(_FACTS).fetchone() or (None,) * 4
    return ServerFacts(installed, bool(preloaded), created, schema)


def decide(server: ServerFacts) -> Mode:
    """The engine ``migrate`` uses, for every state the server and database can be in."""
    if server.created is not None:
        where = f"TimescaleDB {server.created} (extension in schema {server.schema})"
        if not server.preloaded:
            raise DatabaseError(
                f"this database has the timescaledb extension ({server.created}, schema "
                f"{server.schema}) but the server does not preload it: {PRELOAD_HINT}"
            )
        if server.installed is not None and server.installed != server.created:
            return Mode(
                True,
                where,
                f"the server has TimescaleDB {server.installed}: update the extension with "
                "ALTER EXTENSION timescaledb UPDATE as the first statement of a new session "
                "(psql -X) in every database that has it",
            )
        return Mode(True, where)
    if server.installed is None:
        return Mode(False, "plain PostgreSQL: the timescaledb extension is not installed")
    if not server.preloaded:
        return Mode(
            False,
            f"plain PostgreSQL: timescaledb {server.installed} is installed but not preloaded",
            f"to run TimescaleDB, {PRELOAD_HINT}, then migrate again "
            "(the *.timescale.sql migrations wait until then)",
        )
    return Mode(True, f"TimescaleDB {server.installed} (preloaded; extension not created yet)")

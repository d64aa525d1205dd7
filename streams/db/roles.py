"""Who may do what in the database: the roles and their privileges, set by every
``citystream migrate`` (idempotently, with the admin connection's rights).

- ``citystream_owner`` owns the database, the application schema and everything in it;
  migrations run as this role. It has no password, so nobody can log in as it; it has the
  LOGIN attribute only because TimescaleDB's job scheduler runs a hypertable's policies
  (the ledger's compression) as the hypertable's owner and requires it.
- the application role (the user of ``CITYSTREAM_DATABASE_URL``: the workers, and the
  commands that write) may append to the ledger and its keys, the dead letters, the topic
  incarnations and the pledge versions, and maintain the rollup and the cursors
  (:data:`APP_PRIVILEGES`); it can never UPDATE, DELETE or TRUNCATE the ledger, and reads
  everything else.
- ``citystream_auditor`` (``CITYSTREAM_AUDIT_DATABASE_URL``: the ``audit`` commands) and
  ``grafana_reader`` (Grafana's data source) read, and nothing else: they have no privilege
  to write any table, no CREATE anywhere and no TEMPORARY on the database, so even a session
  that turns its read-only default off can write nothing. What PostgreSQL leaves to the
  session (a role cannot be kept from SET-ting ``statement_timeout``) is bounded by a
  connection limit per reader role instead.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection, sql

from streams.db import DatabaseError

OWNER_ROLE = "citystream_owner"
AUDITOR_ROLE = "citystream_auditor"
READER_ROLE = "grafana_reader"
READER_ROLES = (AUDITOR_ROLE, READER_ROLE)

# What the application role may do beyond reading, table by table.
APP_PRIVILEGES: dict[str, tuple[str, ...]] = {
    # The ledger and what keeps it unique: appended to, never changed.
    "events": ("INSERT",),
    "event_keys": ("INSERT",),
    "correction_keys": ("INSERT",),
    "deadletters": ("INSERT",),
    "topic_incarnations": ("INSERT",),
    # Derived state the sink maintains in the same transaction as the ledger rows.
    "metric_daily": ("INSERT", "UPDATE"),
    "consumer_offsets": ("INSERT", "UPDATE"),
    # New versions of a pledge (`citystream pledges load`); a trigger refuses changes.
    "pledges": ("INSERT",),
    "pledge_schedule": ("INSERT",),
}

# Session defaults of the reader roles, and how many sessions each may hold: a runaway
# query is cancelled, and a role that turns that off can still only hold so many.
READER_DEFAULTS = {
    "default_transaction_read_only": "on",
    "statement_timeout": "30s",
    "idle_in_transaction_session_timeout": "60s",
}
READER_CONNECTION_LIMIT = 20


def prepare(conn: Connection[Any], *, schema: str, app_role: str) -> None:
    """Create the owner and auditor roles; hand the database, the schema and its objects
    that the application role still owns (deployments from before this module) to the
    owner. Runs with the admin connection's rights."""
    _require_superuser(conn)
    for role in (OWNER_ROLE, AUDITOR_ROLE):
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    conn.execute(
        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD NULL").format(sql.Identifier(OWNER_ROLE))
    )
    conn.execute(
        sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
            _current_database(conn), sql.Identifier(OWNER_ROLE)
        )
    )
    owned = conn.execute(
        """SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                 WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
                  c.relname
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND pg_get_userbyid(c.relowner) = %s
             AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
             -- a serial's sequence follows its table
             AND NOT (c.relkind = 'S' AND EXISTS (
                 SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'a'))""",
        (schema, app_role),
    ).fetchall()
    for kind, name in owned:
        conn.execute(
            sql.SQL("ALTER {} {}.{} OWNER TO {}").format(
                sql.SQL(kind),
                sql.Identifier(schema),
                sql.Identifier(name),
                sql.Identifier(OWNER_ROLE),
            )
        )
    functions = conn.execute(
        """SELECT p.oid::regprocedure::text FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = %s AND pg_get_userbyid(p.proowner) = %s""",
        (schema, app_role),
    ).fetchall()
    for (signature,) in functions:
        # regprocedure's text form is the function's qualified signature, quoted as needed.
        conn.execute(
            sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(
                sql.SQL(signature), sql.Identifier(OWNER_ROLE)
            )
        )
    # The schema itself, whoever made it (the application role before this module, an
    # operator by hand): the owner role must find and create its tables there. Left to
    # another role, the schema would be skipped on the search path, silently.
    if conn.execute(
        "SELECT 1 FROM pg_namespace WHERE nspname = %s AND pg_get_userbyid(nspowner) <> %s",
        (schema, OWNER_ROLE),
    ).fetchone():
        conn.execute(
            sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(
                sql.Identifier(schema), sql.Identifier(OWNER_ROLE)
            )
        )


def grant(conn: Connection[Any], *, schema: str, app_role: str) -> None:
    """Every role's privileges on the database and the schema, as this module says; run
    after the migrations, with the admin connection's rights."""
    db = _current_database(conn)
    target = sql.Identifier(schema)
    app = sql.Identifier(app_role)
    readers = sql.SQL(", ").join(map(sql.Identifier, READER_ROLES))
    statements = [
        # Nobody but the roles named here connects, and nobody needs temporary tables (the
        # sink COPYs straight into its tables: streams.db.ledger).
        sql.SQL("REVOKE CONNECT, TEMPORARY, CREATE ON DATABASE {} FROM PUBLIC").format(db),
        sql.SQL("REVOKE TEMPORARY, CREATE ON DATABASE {} FROM {}, {}").format(db, app, readers),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(db, app, readers),
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(target),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}").format(target, app, readers),
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}, {}").format(target, app, readers),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}, {}").format(target, app, readers),
        sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(target, app),
        # What later migrations create is readable at once (they add their own writes here).
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}, {}"
        ).format(sql.Identifier(OWNER_ROLE), target, app, readers),
    ]
    existing = {
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
    }
    for table, privileges in APP_PRIVILEGES.items():
        if table in existing:
            statements.append(
                sql.SQL("GRANT {} ON {}.{} TO {}").format(
                    sql.SQL(", ").join(map(sql.SQL, privileges)),
                    target,
                    sql.Identifier(table),
                    app,
                )
            )
    for role in READER_ROLES:
        for name, value in READER_DEFAULTS.items():
            statements.append(
                sql.SQL("ALTER ROLE {} SET {} = {}").format(
                    sql.Identifier(role), sql.Identifier(name), sql.Literal(value)
                )
            )
        statements.append(
            sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
                sql.Identifier(role), sql.Literal(READER_CONNECTION_LIMIT)
            )
        )
    for statement in statements:
        conn.execute(statement)


def set_password(conn: Connection[Any], role: str, password: str) -> None:
    """LOGIN and ``password`` for ``role``; again on every run, so that changing the setting
    and migrating again is how the password is rotated."""
    # The SCRAM verifier is computed here (libpq), so the password itself never reaches the
    # server, its logs or pg_stat_statements; ALTER ROLE takes it as a quoted literal.
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    conn.execute(
        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(verifier.decode())
        )
    )


def _current_database(conn: Connection[Any]) -> sql.Identifier:
    row = conn.execute("SELECT current_database()").fetchone()
    return sql.Identifier(str(row[0] if row else ""))


def _require_superuser(conn: Connection[Any]) -> None:
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if not (row and row[0]):
        raise DatabaseError(
            "migrate needs a superuser to set up the roles (owner, auditor, Grafana's reader) "
            "and their privileges: set CITYSTREAM_ADMIN_DATABASE_URL"
        )

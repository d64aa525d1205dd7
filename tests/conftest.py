"""Fixtures shared by every test tier.

Integration tests need the local stack (``make test`` starts it). A component they cannot
reach is a failure, never a skip. Each test gets its own database schema, topic namespace
and consumer group, so tests never see each other's data.

The database engine a session runs on (``timescaledb`` or ``plain``) is named by
``CITYSTREAM_TEST_DB_MODE`` (``tests/modes.py`` sets it for each pass of ``make test``);
unset, it is TimescaleDB when this machine's PostgreSQL has the extension installed and the
database is the local stack's. Before the first integration test the session migrates a
schema and checks that the database really runs that engine, so a run that silently fell
back to plain PostgreSQL fails. Tests marked ``timescaledb`` need that engine and are
deselected on plain PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import psycopg
import pytest
from psycopg import sql

from streams.settings import Settings, child_env, user_overrides

ROOT = Path(__file__).resolve().parents[1]

DbMode = Literal["timescaledb", "plain"]
MODE_VARIABLE = "CITYSTREAM_TEST_DB_MODE"


def expected_db_mode() -> DbMode | None:
    """The engine this session must run on; None: whatever the external database runs."""
    named = os.environ.get(MODE_VARIABLE)
    if named == "timescaledb" or named == "plain":
        return named
    if named:
        raise pytest.UsageError(f"{MODE_VARIABLE} must be 'timescaledb' or 'plain', not {named!r}")
    if "database_url" in user_overrides():
        return None
    from services.stack import StackError, postgres, timescale

    try:
        installed = timescale.installed_version(postgres.bindir())
    except StackError:  # no PostgreSQL server on this machine (fine for tests/unit)
        installed = None
    return "timescaledb" if installed else "plain"


def pytest_report_header() -> str:
    mode = expected_db_mode()
    return f"database engine: {mode or 'not checked'} ({MODE_VARIABLE})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if expected_db_mode() != "plain":
        return
    kept, needs_timescaledb = [], []
    for item in items:
        (needs_timescaledb if item.get_closest_marker("timescaledb") else kept).append(item)
    if needs_timescaledb:
        config.hook.pytest_deselected(items=needs_timescaledb)
        items[:] = kept


# The one function for it: tests start workers and CLI commands as child processes.
settings_env = child_env


def kafka_options(settings: Settings, principal: str) -> dict[str, Any]:
    """kafka-python keyword arguments: the bootstrap address and ``principal``'s login."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        **settings.kafka_client_options(principal),
    }


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    context: Callable[[], str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            detail = f"\n{context()}" if context else ""
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}{detail}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def stack_settings() -> Settings:
    from services.kafka.client import wait_for_broker

    settings = Settings()
    try:
        wait_for_broker(settings, principal="admin", timeout_s=10)
    except TimeoutError as exc:
        pytest.fail(f"Kafka is not reachable at {settings.kafka_bootstrap} ({exc}); run 'make up'")
    except Exception as exc:  # no or wrong credentials: the stack's stack.env is stale
        pytest.fail(f"Kafka refuses the admin ({exc}); run 'make up'")
    try:
        psycopg.connect(settings.database_url.get_secret_value(), connect_timeout=10).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable ({exc}); run 'make up'")
    _check_engine(settings, expected_db_mode())
    return settings


def _check_engine(settings: Settings, expected: DbMode | None) -> None:
    """Migrate a throw-away schema and fail the session unless the engine is the expected one:
    TimescaleDB mode and a hypertable in the schema, or plain mode and none."""
    from streams.db.migrate import apply

    probe = settings.model_copy(update={"db_schema": f"t_engine_{uuid.uuid4().hex[:10]}"})
    try:
        report = apply(probe)
        with psycopg.connect(settings.database_url.get_secret_value()) as conn:
            extension = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            ).fetchone()
            hypertables = 0
            if extension is not None:
                row = conn.execute(
                    """SELECT count(*) FROM timescaledb_information.hypertables
                       WHERE hypertable_schema = %s""",
                    (probe.db_schema,),
                ).fetchone()
                hypertables = row[0] if row else 0
    finally:
        _drop_schema(probe)
    found: DbMode = "timescaledb" if report.mode.timescale and hypertables else "plain"
    if expected is not None and found != expected:
        pytest.fail(
            f"the session must run on {expected} but the database runs {found}: "
            f"{report.mode.summary}; {hypertables} hypertable(s) after migrating "
            f"{probe.db_schema} ({MODE_VARIABLE} names the expected engine)"
        )


@pytest.fixture(scope="session")
def db_mode(stack_settings: Settings) -> DbMode:
    """The engine the session runs on (checked by ``stack_settings``)."""
    expected = expected_db_mode()
    if expected is not None:
        return expected
    from streams.db import connect
    from streams.db.timescale import decide, facts

    with connect(stack_settings, admin=True) as conn:
        return "timescaledb" if decide(facts(conn)).timescale else "plain"


def _drop_schema(settings: Settings) -> None:
    drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(settings.db_schema))
    # As the admin: the owner role owns the schema; the application role may not drop it.
    url = settings.admin_database_url or settings.database_url
    with psycopg.connect(url.get_secret_value(), autocommit=True) as conn:
        for attempt in range(5):
            try:
                conn.execute(drop)
                return
            except psycopg.errors.InternalError:
                # A TimescaleDB background job (a policy) working on one of the schema's
                # tables at that moment: "tuple concurrently deleted". Try again.
                if attempt == 4:
                    raise
                time.sleep(0.5 * (attempt + 1))


def _pause_policies(settings: Settings) -> None:
    """Pause TimescaleDB's policy jobs on the schema's hypertables (none without it).

    Tests write rows dated years back with plain INSERTs (a pledge's rollups, ledger rows),
    into chunks the compression policy may be compressing at that moment: the INSERT and the
    job deadlock (seen once in CI, test_pledge_progress). The worker retries a deadlock like
    any failure of the moment; a test's plain INSERT does not. The policies stay defined,
    since the migrations are what is tested. A test that needs a chunk compressed compresses
    it itself."""
    url = settings.admin_database_url or settings.database_url
    with psycopg.connect(url.get_secret_value(), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
            conn.execute(
                """SELECT alter_job(job_id, scheduled => false)
                   FROM timescaledb_information.jobs WHERE hypertable_schema = %s""",
                (settings.db_schema,),
            )


@contextmanager
def isolated_schema(base: Settings, suffix: str | None = None) -> Iterator[Settings]:
    """Fresh schema (migrated), topic namespace and consumer group; the schema is dropped
    afterwards, also when migrating it failed half-way.

    The namespace's topics are created by the admin with the same ACLs as production
    (``services.kafka.access.grants``, literal on this namespace's topic names and this group), so
    every principal has exactly its production rights there and none elsewhere; the ACLs
    are deleted afterwards."""
    from services.kafka.acls import remove_grants
    from services.kafka.topics import ensure_topics
    from streams.db.migrate import migrate

    suffix = suffix or uuid.uuid4().hex[:10]
    settings = base.model_copy(
        update={
            "db_schema": f"t_{suffix}",
            "topic_namespace": f"t{suffix}.",
            "consumer_group": f"citystream-t{suffix}",
            "topic_partitions": 3,
        }
    )
    try:
        migrate(settings)
        _pause_policies(settings)
        ensure_topics(settings)
        yield settings
    finally:
        try:
            _drop_schema(settings)
        finally:
            try:
                remove_grants(settings)
            finally:
                drop_topics(settings)


def drop_topics(settings: Settings) -> None:
    """Delete the namespace's topics: every partition keeps a few files open on the broker,
    and a run of the suite makes about a hundred namespaces of some seventy partitions —
    beyond the broker's open-file limit if they were all kept."""
    from kafka import KafkaAdminClient

    if not settings.topic_namespace:  # the stack's own topics are never a test's to drop
        return
    admin = KafkaAdminClient(**kafka_options(settings, "admin"))
    try:
        mine = [t for t in admin.list_topics() if t.startswith(settings.topic_namespace)]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()


@pytest.fixture
def isolated(stack_settings: Settings) -> Iterator[Settings]:
    """Fresh schema (migrated), topic namespace and consumer group for one test."""
    with isolated_schema(stack_settings) as settings:
        yield settings


class WorkerProcess:
    """A real `citystream worker` process, so tests can SIGKILL it."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, **overrides: Any) -> None:
        self.starts += 1
        settings = self.settings.model_copy(update=overrides)
        log = (self.log_dir / f"worker-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "worker"],
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, grace_s: float = 30) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self, tail: int | None = 3000) -> str:
        """The worker's output; by default the end of each run's log, for failure messages."""
        texts = (p.read_text(errors="replace") for p in sorted(self.log_dir.glob("worker-*.log")))
        return "\n".join(text if tail is None else text[-tail:] for text in texts)


@pytest.fixture
def worker(isolated: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(isolated, tmp_path)
    yield process
    # The test is over: 10 s, not 30, before SIGKILL. A worker that has dead-lettered records
    # does not finish faust's consumer-thread stop on SIGTERM (py-spy: every thread idle,
    # a future nobody resolves); a SIGKILL loses nothing by design (the chaos suite).
    process.stop(grace_s=10)

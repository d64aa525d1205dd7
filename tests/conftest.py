"""Fixtures shared by every test tier.

Integration tests need the local stack (``make test`` starts it). A component they cannot
reach is a failure, never a skip. Each test gets its own database schema, topic namespace
and consumer group, so tests never see each other's data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from services.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process read exactly these settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"CITYSTREAM_{name.upper()}"] = str(value)
    return env


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
    from services.producer import wait_for_broker

    settings = Settings()
    try:
        wait_for_broker(settings.kafka_bootstrap, timeout_s=10)
    except TimeoutError as exc:
        pytest.fail(f"Kafka is not reachable at {settings.kafka_bootstrap} ({exc}); run 'make up'")
    try:
        psycopg.connect(settings.database_url.get_secret_value(), connect_timeout=10).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable ({exc}); run 'make up'")
    return settings


@pytest.fixture
def isolated(stack_settings: Settings) -> Iterator[Settings]:
    """Fresh schema (migrated), topic namespace and consumer group for one test."""
    from services.producer import ensure_topics
    from streams.db.migrate import migrate

    suffix = uuid.uuid4().hex[:10]
    settings = stack_settings.model_copy(
        update={
            "db_schema": f"t_{suffix}",
            "topic_namespace": f"t{suffix}.",
            "consumer_group": f"citystream-t{suffix}",
            "topic_partitions": 3,
        }
    )
    migrate(settings)
    ensure_topics(settings)
    yield settings
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(settings.db_schema)))


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

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
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
    process.stop()

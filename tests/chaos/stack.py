"""A private local stack for the chaos suite: its own broker and PostgreSQL cluster.

The suite stops and restarts Kafka and PostgreSQL; doing that to the shared stack would
break every other test running against it. ``citystream stack up`` with its own
``CITYSTREAM_STACK_DIR`` gives a second, independent pair; the Kafka jars are shared with
the main stack (a symlink), so nothing is fetched twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
from pydantic import SecretStr

from services.stack import kafka
from streams.settings import PRINCIPALS, Settings, password_variable

ROOT = Path(__file__).resolve().parents[2]


class PrivateStack:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CITYSTREAM_")}
        self.env["CITYSTREAM_STACK_DIR"] = str(home)
        # Every cluster the private stack made (the plain one too, when TimescaleDB is installed).
        self.pg_homes: set[Path] = set()

    def prepare(self) -> None:
        kafka.ensure_jars()  # into the main stack's folder, once
        (self.home / "kafka").mkdir(parents=True, exist_ok=True)
        libs = self.home / "kafka" / "libs"
        if not libs.exists():
            libs.symlink_to(kafka.LIBS.resolve(), target_is_directory=True)

    def _cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "services.cli", "stack", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )
        if result.returncode != 0:
            raise RuntimeError(f"stack {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def up(self) -> str:
        out = self._cli("up")
        state = orjson.loads((self.home / "state.json").read_bytes())
        # As root a cluster may live outside the stack folder (services/stack/postgres.py).
        self.pg_homes |= {
            Path(component["cmdline_marker"]).parent
            for name, component in state.items()
            if name.startswith("postgres")
        }
        return out

    def down(self, only: str | None = None) -> str:
        return self._cli("down", *(("--only", only) if only else ()))

    def settings(self, **overrides: object) -> Settings:
        values = dict(
            line.split("=", 1)
            for line in (self.home / "stack.env").read_text().splitlines()
            if "=" in line
        )
        # Every principal's Kafka password too: the private broker has its own users.
        passwords = {
            f"kafka_{principal}_password": SecretStr(values[password_variable(principal)])
            for principal in PRINCIPALS
        }
        return Settings(
            kafka_bootstrap=values["CITYSTREAM_KAFKA_BOOTSTRAP"],
            database_url=SecretStr(values["CITYSTREAM_DATABASE_URL"]),
            admin_database_url=SecretStr(values["CITYSTREAM_ADMIN_DATABASE_URL"]),
            audit_database_url=SecretStr(values["CITYSTREAM_AUDIT_DATABASE_URL"]),
            audit_db_password=SecretStr(values["CITYSTREAM_AUDIT_DB_PASSWORD"]),
            **passwords,  # type: ignore[arg-type]
            **overrides,  # type: ignore[arg-type]
        )

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        for home in self.pg_homes:
            shutil.rmtree(home, ignore_errors=True)

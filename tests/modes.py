"""``make test``'s pytest passes, one per database engine (``python -m tests.modes [ARGS]``).

1. Every test (unit, integration, chaos) against the local stack's main cluster: TimescaleDB
   when the server has the extension installed (the production engine), plain PostgreSQL
   otherwise.
2. When TimescaleDB is installed, the tests that touch SQL (``tests/integration``; the chaos
   suite runs a stack of its own) again against the stack's plain cluster
   (``CITYSTREAM_PLAIN_DATABASE_URL`` / ``CITYSTREAM_PLAIN_ADMIN_DATABASE_URL`` in
   ``.stack/stack.env``): the engine of every deployment without the extension.

Each pass names its engine in ``CITYSTREAM_TEST_DB_MODE``; ``tests/conftest.py`` checks that
the database really runs it before the first integration test, so a pass that silently ran
on the other engine fails. ARGS go to both pytest runs. Prints each pass's wall time; the
exit code is the first failing pass's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from services.stack import postgres, state, timescale
from streams.settings import STACK_DIR, user_overrides


@dataclass
class Pass:
    name: str
    paths: list[str]
    env: dict[str, str] = field(default_factory=dict)


def plan() -> list[Pass]:
    if "database_url" in user_overrides():
        # Someone else's server: its engine is whatever it is (name it in
        # CITYSTREAM_TEST_DB_MODE to have it checked), and there is no plain twin.
        return [Pass("the database in CITYSTREAM_DATABASE_URL", [])]
    version = timescale.installed_version(postgres.bindir())
    if version is None:
        return [Pass("plain PostgreSQL (TimescaleDB is not installed)", [], _mode("plain"))]
    stack_env = state.read_env()
    plain = {
        f"CITYSTREAM_{name}": stack_env[f"CITYSTREAM_PLAIN_{name}"]
        for name in (
            "DATABASE_URL",
            "ADMIN_DATABASE_URL",
            "AUDIT_DATABASE_URL",
            "AUDIT_DB_PASSWORD",
        )
    }
    return [
        Pass(f"TimescaleDB {version}", [], _mode("timescaledb")),
        Pass("plain PostgreSQL", ["tests/integration"], plain | _mode("plain")),
    ]


def _mode(name: str) -> dict[str, str]:
    return {"CITYSTREAM_TEST_DB_MODE": name}


def main(args: list[str]) -> int:
    results = []
    for number, step in enumerate(plan(), start=1):
        print(f"\n=== pass {number}: {step.name}: pytest {' '.join(step.paths) or 'tests'}")
        began = time.monotonic()
        code = subprocess.run(
            # Temporary files under this checkout's stack folder: pytest's default, shared by
            # every checkout on the machine, keeps only the newest three runs' folders, and a
            # run beside ours (another checkout) would delete the logs of our workers.
            [
                sys.executable,
                "-m",
                "pytest",
                f"--basetemp={STACK_DIR / 'pytest'}",
                *args,
                *step.paths,
            ],
            env=os.environ | step.env,
            check=False,
        ).returncode
        results.append((number, step, code, time.monotonic() - began))
    print()
    for number, step, code, seconds in results:
        outcome = "passed" if code == 0 else f"FAILED (exit {code})"
        print(f"pass {number} ({step.name}): {outcome} in {seconds:.0f} s")
    return next((code for _, _, code, _ in results if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What the local stack runs: one record per component in ``.stack/state.json``."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import orjson
from pydantic import BaseModel

from schemas.errors import CityStreamError
from streams.settings import STACK_DIR, STACK_ENV_FILE

STATE_FILE = STACK_DIR / "state.json"


class StackError(CityStreamError):
    """A component of the local stack could not be set up; the message says what to do."""


class Component(BaseModel):
    name: str
    address: str
    pid: int
    # A string that must appear in /proc/PID/cmdline, so that a recycled PID is never killed.
    cmdline_marker: str
    log: str
    # Seconds from launch until the component answered (a metadata request, a connection).
    ready_in_s: float | None = None

    def running(self) -> bool:
        return pid_matches(self.pid, self.cmdline_marker)


def pid_matches(pid: int, marker: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return marker.encode() in cmdline


def load() -> dict[str, Component]:
    if not STATE_FILE.exists():
        return {}
    raw = orjson.loads(STATE_FILE.read_bytes())
    return {name: Component.model_validate(item) for name, item in raw.items()}


def save(components: dict[str, Component]) -> None:
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    data = {name: c.model_dump() for name, c in components.items()}
    STATE_FILE.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


def read_env() -> dict[str, str]:
    """What ``stack.env`` holds (nothing before the first ``stack up``)."""
    current: dict[str, str] = {}
    if STACK_ENV_FILE.exists():
        for line in STACK_ENV_FILE.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                current[key] = value
    return current


def write_env(values: dict[str, str]) -> None:
    """Merge ``values`` into ``stack.env``; the file holds passwords, so only we may read it."""
    current = read_env()
    current.update(values)
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(STACK_ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.writelines(f"{k}={v}\n" for k, v in sorted(current.items()))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Nothing listens on ``port``. Connections of a just-stopped server linger in TIME_WAIT;
    Kafka and PostgreSQL bind with SO_REUSEADDR, which ignores them, so the probe does too
    (without it a restart would think its port taken and move)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def stop_pid(pid: int, marker: str, *, grace_s: float = 30.0) -> None:
    """SIGTERM exactly this process (if it is still ours), then SIGKILL after ``grace_s``."""
    if not pid_matches(pid, marker):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not pid_matches(pid, marker):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)

"""The pledge report as a browser draws it: a PNG screenshot (:func:`screenshot`, for
``citystream report --screenshot`` and the README's picture) and the rendered DOM
(:func:`rendered_dom`, for the tests), from Debian's ``chromium`` in headless mode with a
throw-away profile. The page is our own file; nothing is fetched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from services.pledges.report import ReportError

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # we may run as root (CI); the page is our own file
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--no-first-run",
)


def chromium_path() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise ReportError(
            "chromium is not installed: run 'make system-deps' as root, or "
            "'sudo apt-get install chromium' (Debian's package)"
        )
    return found


def _chromium(args: Sequence[str], *, timeout_s: float) -> bytes:
    """Run headless chromium with its own throw-away profile; return its stdout."""
    with tempfile.TemporaryDirectory(prefix="citystream-chromium-") as profile:
        command = [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        # Its own session, so a hung browser is stopped with all of its helper processes.
        proc = subprocess.Popen(  # noqa: S603 - fixed binary, our own arguments
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ReportError(f"chromium did not finish within {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace")[-800:]
        raise ReportError(f"chromium exited with code {proc.returncode}: {tail}")
    return stdout


def screenshot(
    html: Path, png: Path, *, width: int = 1280, height: int = 1800, timeout_s: float = 120
) -> Path:
    """A PNG of the page's first ``width`` × ``height`` pixels, as headless chromium draws it."""
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    _chromium(
        [
            f"--window-size={width},{height}",
            f"--screenshot={png.resolve()}",
            html.resolve().as_uri(),
        ],
        timeout_s=timeout_s,
    )
    if not png.is_file():
        raise ReportError(f"chromium wrote no screenshot to {png}")
    return png


def rendered_dom(html: Path, *, timeout_s: float = 120) -> str:
    """The page's DOM after chromium parsed and laid it out (``--dump-dom``)."""
    return _chromium(["--dump-dom", html.resolve().as_uri()], timeout_s=timeout_s).decode()

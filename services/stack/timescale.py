"""Is TimescaleDB installed in the server the local stack runs, and how a cluster preloads it.

Reads the server's folders (``pg_config --sharedir`` / ``--pkglibdir``, Debian's layout when
``pg_config`` is absent); opens no connection. ``deploy/local/install-timescaledb.sh``
(``make install``) puts the files there.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

CONTROL = "extension/timescaledb.control"
DEFAULT_VERSION = re.compile(r"^\s*default_version\s*=\s*'([^']+)'", re.MULTILINE)


def _folders(bindir: Path) -> tuple[Path, Path]:
    """(sharedir, pkglibdir) of the server whose binaries are in ``bindir``."""
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        result = subprocess.run(  # noqa: S603 - fixed argv
            [str(pg_config), "--sharedir", "--pkglibdir"],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = result.stdout.split()
        if result.returncode == 0 and len(lines) == 2:
            return Path(lines[0]), Path(lines[1])
    major = bindir.parent.name
    return Path("/usr/share/postgresql") / major, bindir.parent / "lib"


def installed_version(bindir: Path) -> str | None:
    """The version ``CREATE EXTENSION timescaledb`` would create, when both the control file
    and its library are installed (a half-removed install counts as none)."""
    share, lib = _folders(bindir)
    try:
        control = (share / CONTROL).read_text(encoding="utf-8")
    except OSError:
        return None
    match = DEFAULT_VERSION.search(control)
    if match is None:
        return None
    version = match.group(1)
    # The loader (what the server preloads) and the versioned library it loads.
    if (lib / "timescaledb.so").exists() and (lib / f"timescaledb-{version}.so").exists():
        return version
    return None


def preload_options() -> list[str]:
    """Server options of a cluster that runs TimescaleDB.

    Telemetry off: our machines reach no network but package registries (the vendored build
    has no telemetry code at all; Timescale's packages do, and default it on).
    """
    return ["-c", "shared_preload_libraries=timescaledb", "-c", "timescaledb.telemetry_level=off"]

"""Installing the peers, once, into ``.bench/`` (ignored by git); quick when already there.

- Kafka Connect 3.9.1's jars (``deploy/local/connect-pom.xml``, Maven) into
  ``.bench/connect/libs``; the Debezium JDBC sink's plugin archive (the same POM) unpacked
  into ``.bench/connect/plugins``, its own ``plugin.path`` folder.
- quixstreams with its PostgreSQL extra in its own virtual environment,
  ``.bench/quixstreams``: never one of the project's dependencies.

Each step writes a marker naming what it installed last, so a version change in this file
installs again and an interrupted install is redone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HOME = ROOT / ".bench"
POM = ROOT / "deploy" / "local" / "connect-pom.xml"
CONNECT = HOME / "connect"
CONNECT_LIBS = CONNECT / "libs"
CONNECT_PLUGINS = CONNECT / "plugins"
QUIX_VENV = HOME / "quixstreams"
QUIX_PYTHON = QUIX_VENV / "bin" / "python"

KAFKA_CONNECT = "3.9.1"
DEBEZIUM_JDBC = "3.1.2.Final"
QUIXSTREAMS = "3.28.1"


class InstallError(RuntimeError):
    """A peer could not be installed; the message holds the tool's own words."""


def _done(marker: Path, what: str) -> bool:
    return marker.exists() and marker.read_text() == what


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise InstallError(f"{what} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def _mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InstallError("'mvn' not found: install Debian's 'maven' package (make install)")
    return mvn


def connect() -> None:
    """Kafka Connect's jars and the Debezium JDBC sink plugin."""
    what = f"connect-runtime {KAFKA_CONNECT}, debezium-connector-jdbc {DEBEZIUM_JDBC}\n"
    marker = CONNECT / ".complete"
    if _done(marker, what):
        return
    shutil.rmtree(CONNECT, ignore_errors=True)
    archives = CONNECT / "archives"
    CONNECT_PLUGINS.mkdir(parents=True)
    maven = [_mvn(), "-q", "-B", "-f", str(POM), "dependency:copy-dependencies"]
    _run(
        [
            *maven,
            "-DincludeScope=runtime",
            "-DexcludeTypes=tar.gz",
            f"-DoutputDirectory={CONNECT_LIBS}",
        ],
        "Maven fetching Kafka Connect's jars",
    )
    _run(
        [*maven, "-DincludeTypes=tar.gz", f"-DoutputDirectory={archives}"],
        "Maven fetching the Debezium JDBC sink plugin",
    )
    for archive in archives.glob("*.tar.gz"):
        _unpack(archive, CONNECT_PLUGINS)
    if not any(CONNECT_PLUGINS.glob("*/debezium-connector-jdbc-*.jar")):
        raise InstallError(f"no debezium-connector-jdbc jar under {CONNECT_PLUGINS}")
    shutil.rmtree(archives)
    marker.write_text(what)


def _unpack(archive: Path, into: Path) -> None:
    """Unpack plain files and folders only, each inside ``into``."""
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
            tar.extractall(into, filter="data")
            return
        for member in tar.getmembers():
            path = Path(member.name)
            if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
                raise InstallError(f"{archive.name}: refusing to unpack {member.name!r}")
        tar.extractall(into)  # noqa: S202 - every member checked above


def quixstreams() -> None:
    """quixstreams and its PostgreSQL sink (psycopg2) in their own virtual environment."""
    what = f"quixstreams[postgresql]=={QUIXSTREAMS}\n"
    marker = QUIX_VENV / ".complete"
    if _done(marker, what):
        return
    shutil.rmtree(QUIX_VENV, ignore_errors=True)
    _run([sys.executable, "-m", "venv", str(QUIX_VENV)], "creating quixstreams' venv")
    _run(
        [str(QUIX_PYTHON), "-m", "pip", "install", "--quiet", what.strip()],
        "pip installing quixstreams",
    )
    marker.write_text(what)


def all_peers() -> None:
    connect()
    quixstreams()

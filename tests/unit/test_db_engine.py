"""TimescaleDB or plain PostgreSQL: ``migrate``'s decision for every state (no socket), and how
the local stack finds an installed TimescaleDB in the server's folders."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.stack.timescale import installed_version
from streams.db import DatabaseError
from streams.db.timescale import PRELOAD_HINT, ServerFacts, decide


def test_not_installed_is_plain_postgresql_without_a_warning() -> None:
    mode = decide(ServerFacts(installed=None, preloaded=False))
    assert not mode.timescale
    assert mode.summary == "plain PostgreSQL: the timescaledb extension is not installed"
    assert mode.warning is None


def test_installed_but_not_preloaded_is_plain_postgresql_with_what_to_set() -> None:
    mode = decide(ServerFacts(installed="2.28.3", preloaded=False))
    assert not mode.timescale
    assert "2.28.3 is installed but not preloaded" in mode.summary
    assert mode.warning is not None
    assert PRELOAD_HINT in mode.warning
    assert "shared_preload_libraries = 'timescaledb'" in PRELOAD_HINT


def test_preloaded_is_timescaledb() -> None:
    mode = decide(ServerFacts(installed="2.28.3", preloaded=True))
    assert mode.timescale
    assert mode.warning is None


def test_created_in_any_schema_is_timescaledb_naming_the_schema() -> None:
    mode = decide(ServerFacts("2.28.3", True, created="2.28.3", schema="tsdb"))
    assert mode.timescale
    assert mode.summary == "TimescaleDB 2.28.3 (extension in schema tsdb)"


def test_created_but_no_longer_preloaded_is_a_one_line_error() -> None:
    with pytest.raises(DatabaseError) as caught:
        decide(ServerFacts("2.28.3", False, created="2.28.3", schema="public"))
    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith(PRELOAD_HINT)


def test_an_older_extension_than_the_server_has_asks_for_the_update() -> None:
    # The compose stack after its image moved from 2.17.2 to 2.28.x (README, TimescaleDB).
    mode = decide(ServerFacts("2.28.3", True, created="2.17.2", schema="public"))
    assert mode.timescale
    assert mode.warning is not None
    assert "ALTER EXTENSION timescaledb UPDATE" in mode.warning


def _server(tmp_path: Path, files: dict[str, str]) -> Path:
    """A fake server: bin/pg_config naming share/ and lib/ under tmp_path, and ``files``."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    pg_config = bindir / "pg_config"
    pg_config.write_text(f"#!/bin/sh\necho {tmp_path / 'share'}\necho {tmp_path / 'lib'}\n")
    pg_config.chmod(pg_config.stat().st_mode | stat.S_IXUSR)
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return bindir


CONTROL = "share/extension/timescaledb.control"


def test_installed_version_reads_the_control_file_and_needs_both_libraries(
    tmp_path: Path,
) -> None:
    files = {
        CONTROL: "comment = 'x'\ndefault_version = '2.28.3'\nmodule_pathname = '$libdir/x'\n",
        "lib/timescaledb.so": "",
        "lib/timescaledb-2.28.3.so": "",
    }
    assert installed_version(_server(tmp_path, files)) == "2.28.3"


@pytest.mark.parametrize("missing", [CONTROL, "lib/timescaledb.so", "lib/timescaledb-2.28.3.so"])
def test_a_partial_install_counts_as_none(tmp_path: Path, missing: str) -> None:
    files = {
        CONTROL: "default_version = '2.28.3'\n",
        "lib/timescaledb.so": "",
        "lib/timescaledb-2.28.3.so": "",
    }
    del files[missing]
    assert installed_version(_server(tmp_path, files)) is None

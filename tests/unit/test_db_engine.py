"""TimescaleDB or plain PostgreSQL: ``migrate``'s decision for every state (no socket)."""

from __future__ import annotations

import pytest

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

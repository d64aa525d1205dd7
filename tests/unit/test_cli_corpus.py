"""The bad-input corpus at the command line: `citystream emit --json` refuses each case
with the exact reason and field, before anything is sent (so no broker is needed).

Cases the command line cannot express are left to the worker-level test: bytes that are
not UTF-8 JSON objects, and records missing a field `emit` fills in on purpose
(event_id, occurred_at, reported_at, department, event_type). "In the future" is judged
against the wall clock at the command line (the corpus's clock is 2024), and a type sent
to another family's topic is simply that family's event there: those stay worker-level."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from schemas.topics import BY_EVENT_TYPE
from services.cli import main
from tests.unit.bad_inputs import CASES, Case

FILLED_BY_EMIT = {"event_id", "occurred_at", "reported_at", "department", "event_type"}


def _expressible(case: Case) -> bool:
    if case.stage != "decode" or case.raw is None or len(case.raw) > 64 * 1024:
        return False
    try:
        data = orjson.loads(case.raw)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(data, dict) or not isinstance(data.get("event_type"), str):
        return False
    if case.reason == "unknown_event_type" and data["event_type"] in BY_EVENT_TYPE:
        return False
    return case.reason != "in_future" and not (
        case.reason == "missing_field" and case.field in FILLED_BY_EMIT
    )


CLI_CASES = [c for c in CASES if _expressible(c)]


def test_the_cli_covers_most_of_the_corpus() -> None:
    assert len(CLI_CASES) >= 40


class _MustNotSend:
    def __init__(self, *_: object, **__: object) -> None:
        raise AssertionError("emit tried to send a record it should have refused")


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.name)
def test_emit_refuses_with_reason_and_field(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.producer.Producer", _MustNotSend)
    data = orjson.loads(case.raw or b"")
    result = CliRunner().invoke(main, ["emit", data["event_type"], "--json", case.raw.decode()])
    assert result.exit_code == 1, result.output
    assert f"[{case.reason}]" in result.output
    if case.field is not None:
        assert f"{case.field}: " in " ".join(result.output.split())

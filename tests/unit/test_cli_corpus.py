"""The bad-input corpus at the command line: `citystream emit --json` refuses each case
with the exact reason and field, before anything is sent (so no broker is needed).

Cases the command line cannot express are left to the worker-level test: bytes that are
not UTF-8 JSON objects, and records missing a field `emit` fills in on purpose
(event_id, occurred_at, reported_at, department, event_type). "In the future" is judged
against the wall clock at the command line (the corpus's clock is 2024), and a type sent
to another family's topic is simply that family's event there: those stay worker-level."""

from __future__ import annotations

import csv
from pathlib import Path

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
    monkeypatch.setattr("services.kafka.producer.Producer", _MustNotSend)
    data = orjson.loads(case.raw or b"")
    result = CliRunner().invoke(main, ["emit", data["event_type"], "--json", case.raw.decode()])
    assert result.exit_code == 1, result.output
    assert f"[{case.reason}]" in result.output
    if case.field is not None:
        assert f"{case.field}: " in " ".join(result.output.split())


# The ledger import is deliberately more forgiving than the wire contract (it fills in the
# department, reads dates as a clerk writes them, numbers given as text), and it checks
# references across the whole file; these cases are therefore judged differently there.
IMPORT_DIFFERS = {
    "event_type_of_other_topic",
    "missing_department",
    "missing_event_id",
    "district_as_number",
    "naive_datetime",
    "chinese_date_format",
    "project_as_number",
    "source_ref_as_object",
    "misspelt_quantity",
    "nul_in_field_name",
    "area_float_noise",
    "area_null",
    "drainage_lat_lon_swapped",
    "drainage_location_extra_field",
}


def test_import_dry_run_reports_each_jsonl_line_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every corpus case that can be a JSON Lines line, one ledger per family, through
    `citystream import --dry-run`: each line's reason in the rejects file, by row number."""
    monkeypatch.setattr("services.kafka.producer.Producer", _MustNotSend)
    cases = [
        c
        for c in CASES
        if c.stage == "decode"
        and c.raw
        and b"\n" not in c.raw
        and c.raw.strip()
        and c.reason != "in_future"
        and c.name not in IMPORT_DIFFERS
    ]
    assert len(cases) >= 70
    by_family: dict[str, list[Case]] = {}
    for case in cases:
        by_family.setdefault(case.family, []).append(case)
    csv.field_size_limit(1 << 24)
    for family, family_cases in by_family.items():
        ledger = tmp_path / f"{family}.jsonl"
        ledger.write_bytes(b"\n".join(c.raw or b"" for c in family_cases) + b"\n")
        rejects = tmp_path / f"{family}.rejects.csv"
        result = CliRunner().invoke(
            main, ["import", str(ledger), "--dry-run", "--rejects", str(rejects)]
        )
        assert result.exit_code == 2, result.output
        with rejects.open(encoding="utf-8-sig", newline="") as fh:
            rows = {int(row["row"]): row for row in csv.DictReader(fh)}
        for line, case in enumerate(family_cases, start=1):
            assert line in rows, f"{case.name}: line {line} not reported"
            assert rows[line]["reason"] == case.reason, case.name
            if case.field and rows[line]["column"]:
                assert rows[line]["column"] == case.field, case.name

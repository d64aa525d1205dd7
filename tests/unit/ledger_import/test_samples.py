"""The sample ledgers of seeds/samples: what make_samples.py writes, and what each imports
as seeds/samples/README.md says. No socket."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from services import ledger_import as li
from tests.unit.ledger_import.support import (
    SAMPLES,
    events_of,
    plan_of,
)

# --- the samples -----------------------------------------------------------------------------


def test_samples_are_what_make_samples_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(SAMPLES / "make_samples.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "options", "events"),
    [
        ("heating_2024.xlsx", li.Options("heating.area_connected"), 12),
        ("housing_2024.xlsx", li.Options(), 6),
        ("parking_2024.csv", li.Options(), 6),
        ("drainage_2024.csv", li.Options(), 5),
        ("education_2024.jsonl", li.Options(), 9),
    ],
)
def test_sample_ledgers_import_without_rejects(name: str, options: li.Options, events: int) -> None:
    plan = plan_of(SAMPLES / name, options)
    assert plan.rejected == [], plan.rejected[:3]
    assert len(events_of(plan)) == events == plan.rows_read


def test_sample_with_errors_gives_the_rejects_its_readme_documents() -> None:
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Expected result of `heating_2024_with_errors.csv`")[1]
    documented = [
        (int(m[1]), m[2].strip(), m[3].strip(), m[4].strip())
        for m in re.finditer(r"^\| (\d+) \|([^|]*)\|([^|]*)\| (\w+) \|", section, re.M)
    ]
    plan = plan_of(SAMPLES / "heating_2024_with_errors.csv")
    assert [(r.row, r.column, r.value, r.reason) for r in plan.rejected] == documented
    assert plan.rows_read == 15 and plan.duplicates == 1
    assert [(t.row, t.why) for t in plan.totals] == [(9, "全区合计")]
    assert sorted(str(e.source_ref) for e in events_of(plan)) == ["HX-001", "HX-002", "HX-014"]

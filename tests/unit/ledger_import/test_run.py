"""Stage 8, run, through the command in dry-run (no Kafka): exit codes, the rejects file,
file-level errors."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from services.cli import main
from tests.unit.ledger_import.support import (
    HEAT_HEADERS,
    write_csv,
)

# --- the command, in dry-run (no Kafka) --------------------------------------------------------


def test_cli_exit_codes_and_rejects_file(tmp_path: Path) -> None:
    runner = CliRunner()
    good = write_csv(tmp_path / "good.csv", HEAT_HEADERS, [["R1", "甲", "石佛", "2024-10-08", "1"]])
    result = runner.invoke(
        main, ["import", str(good), "--type", "heating.area_connected", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "good.rejects.csv").exists()

    bad = write_csv(
        tmp_path / "bad.csv",
        HEAT_HEADERS,
        [["R1", "甲", "火星", "2024-10-08", "1"], ["R2", "乙", "石佛", "2024-10-08", "2"]],
    )
    result = runner.invoke(
        main, ["import", str(bad), "--type", "heating.area_connected", "--dry-run"]
    )
    assert result.exit_code == 2, result.output
    assert "unknown_district" in result.output
    assert (tmp_path / "bad.rejects.csv").exists()

    unknown = write_csv(tmp_path / "u.csv", [*HEAT_HEADERS, "负责人"], [])
    result = runner.invoke(
        main, ["import", str(unknown), "--type", "heating.area_connected", "--dry-run"]
    )
    assert result.exit_code == 1
    assert "负责人" in result.output and "--mapping" in result.output

    result = runner.invoke(main, ["import", str(tmp_path / "missing.csv"), "--dry-run"])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = runner.invoke(
        main, ["import", str(good), "--type", "heating.area_heated", "--dry-run"]
    )
    assert result.exit_code == 1 and "heating.area_connected" in result.output

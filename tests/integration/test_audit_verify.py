"""``audit verify`` against the real database: an intact ledger written by the sink's own
code passes, and each kind of tampering done behind the application's back (through the
admin connection) is detected, naming the row."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from schemas.topics import HEATING
from services.audit.verify import Break, VerifyReport, verify
from streams.chain import canonical, link
from streams.db import connect
from streams.settings import Settings
from tests.conftest import ROOT, settings_env
from tests.integration.audit_support import heating, sink

pytestmark = pytest.mark.integration

DAY = datetime(2024, 10, 8, 2, tzinfo=UTC)


def _ledger(settings: Settings) -> None:
    """Two partitions, two batches, offsets 0, 2, 4, … (gaps, as in a real topic)."""
    for batch in range(2):
        events = [heating(DAY + timedelta(days=batch * 6 + i), f"{1000 + i}.5") for i in range(6)]
        result = sink(settings, HEATING, events, partition=lambda i: i % 2, offset_step=2)
        assert result.inserted == 6


Row = dict[str, Any]


def _rows(settings: Settings, partition: int) -> list[Row]:
    with connect(settings) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT * FROM events WHERE partition = %s ORDER BY kafka_offset", (partition,))
        return cur.fetchall()


def _admin(settings: Settings, statement: str, params: tuple[Any, ...] = ()) -> None:
    with connect(settings, admin=True, autocommit=True) as conn:
        conn.execute(statement.encode(), params)


def _first(report: VerifyReport, partition: int) -> Break:
    found = [b for b in report.breaks if b.partition == partition]
    assert found, f"no break found in partition {partition}: {report.breaks}"
    return found[0]


def _forge(settings: Settings, after: Row, offset: int) -> uuid.UUID:
    """Insert a well-formed row chained to ``after``: only the chain can tell it is forged."""
    forged = uuid.uuid4()
    payload = dict(after["payload"], event_id=str(forged), area_m2="50000.00")
    measures = {"heating.connected_area_m2": "50000.00"}
    ingested_at = after["ingested_at"]
    content = canonical(
        event_id=forged,
        topic=after["topic"],
        partition=after["partition"],
        offset=offset,
        ingested_at=ingested_at,
        payload=payload,
        measures=measures,
    )
    _admin(
        settings,
        """INSERT INTO events (event_id, event_type, schema_version, department, district,
               occurred_at, reported_at, ingested_at, project, source_ref, corrects, measures,
               payload, topic, partition, kafka_offset, prev_hash, hash)
           SELECT %s, event_type, schema_version, department, district, occurred_at,
                  reported_at, ingested_at, project, source_ref, corrects, %s::jsonb,
                  %s::jsonb, topic, partition, %s, %s, %s
           FROM events WHERE event_id = %s""",
        (
            forged,
            orjson.dumps(measures).decode(),
            orjson.dumps(payload).decode(),
            offset,
            bytes(after["hash"]),
            link(bytes(after["hash"]), content),
            after["event_id"],
        ),
    )
    return forged


def test_an_intact_ledger_verifies_and_the_cli_says_so(isolated: Settings) -> None:
    _ledger(isolated)
    report = verify(isolated)
    assert report.ok, report.breaks
    assert report.rows == 12
    assert [(p.partition, p.rows) for p in report.partitions] == [(0, 6), (1, 6)]

    ok = _cli(isolated)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "every link holds" in ok.stdout

    target = _rows(isolated, 0)[2]
    _admin(
        isolated,
        "UPDATE events SET payload = jsonb_set(payload, '{area_m2}', '\"99999.00\"') "
        "WHERE event_id = %s",
        (target["event_id"],),
    )
    broken = _cli(isolated)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert str(target["event_id"]) in broken.stdout
    assert bytes(target["hash"]).hex() in broken.stdout  # the hash found
    assert "BROKEN" in broken.stdout and "content" in broken.stdout


def _cli(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "audit", "verify"],
        env=settings_env(settings) | {"COLUMNS": "200"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _edit_value(settings: Settings, rows: list[Row]) -> tuple[str, uuid.UUID, int]:
    target = rows[2]
    _admin(
        settings,
        "UPDATE events SET measures = jsonb_set(measures, '{heating.connected_area_m2}', "
        "'\"99999.00\"'), payload = jsonb_set(payload, '{area_m2}', '\"99999.00\"') "
        "WHERE event_id = %s",
        (target["event_id"],),
    )
    return "content", target["event_id"], target["kafka_offset"]


def _edit_column(settings: Settings, rows: list[Row]) -> tuple[str, uuid.UUID, int]:
    # district is stored beside the payload for queries and not hashed itself.
    target = rows[3]
    _admin(
        settings, "UPDATE events SET district = 'shifo' WHERE event_id = %s", (target["event_id"],)
    )
    return "column", target["event_id"], target["kafka_offset"]


def _delete_row(settings: Settings, rows: list[Row]) -> tuple[str, uuid.UUID, int]:
    _admin(settings, "DELETE FROM events WHERE event_id = %s", (rows[2]["event_id"],))
    # Named: the row after the gap, whose prev_hash is the deleted row's hash.
    return "link", rows[3]["event_id"], rows[3]["kafka_offset"]


def _delete_last_row(settings: Settings, rows: list[Row]) -> tuple[str, uuid.UUID, int]:
    _admin(settings, "DELETE FROM events WHERE event_id = %s", (rows[-1]["event_id"],))
    return "head", rows[-2]["event_id"], rows[-2]["kafka_offset"]


def _insert_forged_row(settings: Settings, rows: list[Row]) -> tuple[str, uuid.UUID, int]:
    offset = rows[1]["kafka_offset"] + 1  # the gap between two real offsets (2 and 4)
    assert offset < rows[2]["kafka_offset"]
    return "inserted", _forge(settings, rows[1], offset), offset


def _append_forged_row(settings: Settings, rows: list[Row]) -> tuple[str, uuid.UUID, int]:
    offset = rows[-1]["kafka_offset"] + 1
    return "inserted", _forge(settings, rows[-1], offset), offset


def _swap_rows(settings: Settings, rows: list[Row]) -> tuple[str, uuid.UUID, int]:
    a, b = rows[1], rows[4]
    with connect(settings, admin=True) as conn:
        conn.execute("UPDATE events SET kafka_offset = -1 WHERE event_id = %s", (a["event_id"],))
        conn.execute(
            "UPDATE events SET kafka_offset = %s WHERE event_id = %s",
            (a["kafka_offset"], b["event_id"]),
        )
        conn.execute(
            "UPDATE events SET kafka_offset = %s WHERE event_id = %s",
            (b["kafka_offset"], a["event_id"]),
        )
        conn.commit()
    # b now sits where a was: the first break names it; a is named further on.
    return "content", b["event_id"], a["kafka_offset"]


def _edit_head(settings: Settings, rows: list[Row]) -> tuple[str, uuid.UUID, int]:
    _admin(
        settings,
        "UPDATE consumer_offsets SET last_hash = %s WHERE partition = 0",
        (bytes(rows[2]["hash"]),),
    )
    return "head", rows[-1]["event_id"], rows[-1]["kafka_offset"]


TAMPERING: dict[str, Callable[[Settings, list[Row]], tuple[str, uuid.UUID, int]]] = {
    "change a value": _edit_value,
    "change a column outside the hash": _edit_column,
    "delete a row": _delete_row,
    "delete the last row": _delete_last_row,
    "insert a forged row": _insert_forged_row,
    "append a forged row": _append_forged_row,
    "swap two rows": _swap_rows,
    "edit the recorded chain head": _edit_head,
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_tampering_is_detected_naming_the_row(isolated: Settings, how: str) -> None:
    _ledger(isolated)
    rows = _rows(isolated, 0)
    kind, event_id, offset = TAMPERING[how](isolated, rows)

    report = verify(isolated)

    assert not report.ok
    first = _first(report, 0)
    assert (first.kind, first.event_id, first.offset) == (kind, event_id, offset), first
    assert first.expected != first.found
    # The other partition is untouched and says so.
    assert not [b for b in report.breaks if b.partition == 1]
    if how == "delete a row":
        # The gap is pinned down: the hash the chain needs is the row before the gap, the
        # hash found is the deleted row's own.
        assert (first.expected, first.found) == (
            bytes(rows[1]["hash"]).hex(),
            bytes(rows[2]["hash"]).hex(),
        )
    if how == "swap two rows":
        assert {b.event_id for b in report.breaks if b.kind == "content"} == {
            rows[1]["event_id"],
            rows[4]["event_id"],
        }
    if how in ("change a value", "insert a forged row", "append a forged row"):
        assert len(report.breaks) == 1, report.breaks

"""Signed checkpoints without a database: the canonical payload, signatures, and the chain
walk's comparison with what a checkpoint signed (services.audit.checkpoint, verify)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.audit import checkpoint
from services.audit.checkpoint import Expectation
from services.audit.verify import walk
from streams.chain import GENESIS, canonical, link
from streams.db.ledger_row import LedgerRow
from streams.settings import Settings

TOPIC = "city.heating.v1"
WHEN = datetime(2024, 10, 8, 2, tzinfo=UTC)


def _row(offset: int, prev: bytes, area: str = "100.5") -> LedgerRow:
    event_id = uuid.UUID(int=offset + 1)
    payload = {
        "event_type": "heating.area_connected",
        "schema_version": 1,
        "department": "heating",
        "district": "shifo",
        "occurred_at": WHEN.isoformat(),
        "reported_at": WHEN.isoformat(),
        "project": "p",
        "source_ref": f"r{offset}",
        "area_m2": area,
    }
    measures = {"heating.connected_area_m2": area}
    content = canonical(
        event_id=event_id,
        topic=TOPIC,
        partition=0,
        offset=offset,
        ingested_at=WHEN,
        payload=payload,
        measures=measures,
    )
    return LedgerRow(
        event_id=event_id, event_type="heating.area_connected", schema_version=1,
        department="heating", district="shifo", occurred_at=WHEN, reported_at=WHEN,
        ingested_at=WHEN, project="p", source_ref=f"r{offset}", corrects=None,
        measures=measures, payload=payload, topic=TOPIC, incarnation=1, partition=0,
        kafka_offset=offset, prev_hash=prev, hash=link(prev, content),
    )  # fmt: skip


def _chain(areas: list[str], offsets: list[int] | None = None) -> list[LedgerRow]:
    rows, prev = [], GENESIS
    for offset, area in zip(offsets or range(len(areas)), areas, strict=True):
        row = _row(offset, prev, area)
        rows.append(row)
        prev = row.hash
    return rows


def _heads(rows: list[LedgerRow]) -> dict[tuple[str, int, int], tuple[int, bytes]]:
    return {(TOPIC, 1, 0): (rows[-1].kafka_offset + 1, rows[-1].hash)}


def _signed_at(rows: list[LedgerRow], index: int) -> dict[Any, list[Expectation]]:
    row = rows[index]
    return {(TOPIC, 1, 0): [Expectation(row.kafka_offset, index + 1, row.hash, "cp-1")]}


def test_a_clean_chain_agrees_and_a_consistent_rewrite_contradicts() -> None:
    rows = _chain(["1.5", "2.5", "3.5", "4.5"])
    signed = _signed_at(rows, 2)
    assert walk(rows, _heads(rows), signed).ok
    # Row 1 edited, every later row rehashed, the head moved along: links all hold.
    rewritten = _chain(["1.5", "99999.5", "3.5", "4.5"])
    report = walk(rewritten, _heads(rewritten), signed)
    assert not report.breaks
    (finding,) = report.findings
    assert (finding.kind, finding.checkpoint, finding.offset) == ("contradicted", "cp-1", 2)
    assert finding.expected == rows[2].hash.hex()


def test_an_edit_without_rehashing_contradicts_as_well_as_breaking() -> None:
    rows = _chain(["1.5", "2.5", "3.5"])
    signed = _signed_at(rows, 2)
    edited = list(rows)
    changed = dict(rows[0].payload, area_m2="7.5")
    edited[0] = rows[0]._replace(payload=changed, measures={"heating.connected_area_m2": "7.5"})
    report = walk(edited, _heads(rows), signed)
    assert report.breaks and report.breaks[0].kind == "content"
    assert [f.kind for f in report.findings] == ["contradicted"]


def test_deleted_rows_under_a_checkpoint_are_missing() -> None:
    rows = _chain(["1.5", "2.5", "3.5", "4.5"])
    signed = _signed_at(rows, 2)
    # The signed head row itself deleted, the chain relinked around it.
    relinked = _chain(["1.5", "2.5", "4.5"], offsets=[0, 1, 3])
    report = walk(relinked, _heads(relinked), signed)
    assert [f.kind for f in report.findings] == ["missing"]
    # The whole chain gone.
    report = walk([], {}, signed)
    assert [f.kind for f in report.findings] == ["missing"]


def test_signatures_and_the_canonical_payload(tmp_path: Path) -> None:
    public_path, key_id = checkpoint.generate_key(tmp_path / "a.key")
    key = checkpoint.load_private_key(tmp_path / "a.key")
    trusted = checkpoint.load_public_keys([public_path])
    assert list(trusted) == [key_id] and key_id.startswith("ed25519:")
    head = checkpoint.ChainHead(TOPIC, 1, 0, 3, 2, bytes(32), 3)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    payload = checkpoint.build_payload(chains=[head], settings=settings, signer=key.public_key())
    assert payload["version"] == 1 and payload["key_id"] == key_id
    # Sorted keys, no whitespace: the bytes do not depend on how a file was formatted.
    assert checkpoint.canonical(payload) == orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    document = checkpoint.sign(payload, key)
    parsed = checkpoint.parse(document, source="f")
    assert checkpoint.check_signature(parsed, trusted) is None
    assert parsed.chains() == [head]
    compact = checkpoint.parse(checkpoint.canonical_document(document), source="topic")
    assert checkpoint.check_signature(compact, trusted) is None

    tampered = orjson.loads(document)
    tampered["payload"]["chains"][0]["rows"] = 4
    forged = checkpoint.parse(orjson.dumps(tampered), source="f")
    assert checkpoint.check_signature(forged, trusted) == "bad_signature"
    other_public, _ = checkpoint.generate_key(tmp_path / "b.key")
    assert checkpoint.check_signature(parsed, checkpoint.load_public_keys([other_public])) == (
        "unknown_key"
    )
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.parse(b'{"payload": {"format": "other"}, "signature": ""}', source="x")
    with pytest.raises(checkpoint.CheckpointError, match="exists"):
        checkpoint.generate_key(tmp_path / "a.key")
    assert (tmp_path / "a.key").stat().st_mode & 0o777 == 0o600

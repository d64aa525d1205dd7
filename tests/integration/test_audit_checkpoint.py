"""Signed checkpoints against the real database and broker: ``audit checkpoint`` signs every
chain's head and publishes it (file + the auditors' topic); ``audit verify`` catches a chain
rewritten consistently to its head — which the chain walk alone cannot — naming the
checkpoint it contradicts, and reports forged and untrusted checkpoints."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from schemas.topics import CHECKPOINT_TOPIC, HEATING
from services.audit.checkpoint import parse
from services.kafka.reader import checkpoint_documents
from streams.chain import canonical, link
from streams.db import connect
from streams.settings import Settings
from tests.conftest import ROOT, settings_env
from tests.integration.audit_support import heating, sink

pytestmark = pytest.mark.integration

DAY = datetime(2024, 10, 8, 2, tzinfo=UTC)


def _cli(settings: Settings, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "audit", *map(str, args)],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def _ledger(settings: Settings, first_day: int, n: int = 8) -> None:
    events = [heating(DAY + timedelta(days=first_day + i), f"{2000 + i}.5") for i in range(n)]
    assert sink(settings, HEATING, events, partition=lambda i: i % 2).inserted == n


def _rewrite_chain(settings: Settings, partition: int, from_row: int) -> None:
    """As the PostgreSQL superuser: change one row's amount, then rehash it and every later
    row of its chain and set consumer_offsets.last_hash to the new head — a rewrite that
    leaves every link consistent."""
    with (
        connect(settings, admin=True) as conn,
        conn.cursor(row_factory=psycopg.rows.dict_row) as cur,
    ):
        cur.execute(
            "SELECT * FROM events WHERE topic = %s AND partition = %s ORDER BY kafka_offset",
            (settings.topic_name(HEATING.name), partition),
        )
        rows: list[dict[str, Any]] = cur.fetchall()
        assert len(rows) > from_row + 1
        prev = bytes(rows[from_row]["prev_hash"])
        for i, row in enumerate(rows[from_row:]):
            payload, measures = row["payload"], row["measures"]
            if i == 0:
                payload = dict(payload, area_m2="99999.5")
                measures = {"heating.connected_area_m2": "99999.5"}
            new = link(
                prev,
                canonical(
                    event_id=row["event_id"],
                    topic=row["topic"],
                    incarnation=row["incarnation"],
                    partition=row["partition"],
                    offset=row["kafka_offset"],
                    ingested_at=row["ingested_at"],
                    payload=payload,
                    measures=measures,
                ),
            )
            cur.execute(
                """UPDATE events SET payload = %s::jsonb, measures = %s::jsonb, prev_hash = %s,
                          hash = %s WHERE event_id = %s""",
                (
                    orjson.dumps(payload).decode(),
                    orjson.dumps(measures).decode(),
                    prev,
                    new,
                    row["event_id"],
                ),
            )
            prev = new
        cur.execute(
            "UPDATE consumer_offsets SET last_hash = %s WHERE topic = %s AND partition = %s",
            (prev, settings.topic_name(HEATING.name), partition),
        )
        conn.commit()


def test_checkpoints_catch_a_rewritten_chain_and_forgeries(
    isolated: Settings, tmp_path: Path
) -> None:
    key = tmp_path / "auditors" / "auditor.key"
    made = _cli(isolated, "keygen", key)
    assert made.returncode == 0, made.stdout + made.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    public = Path(f"{key}.pub")
    papers = tmp_path / "papers"

    _ledger(isolated, 0)
    first = _cli(isolated, "checkpoint", "--key", key, "--out", papers)
    assert first.returncode == 0, first.stdout + first.stderr
    _ledger(isolated, 20)  # the ledger grows after the first checkpoint
    second = _cli(isolated, "checkpoint", "--key", key, "--out", papers)
    assert second.returncode == 0, second.stdout + second.stderr
    files = sorted(papers.glob("*.json"))
    assert len(files) == 2

    # Published outside PostgreSQL too: both on the auditors' topic, byte for byte the same
    # payloads as the files.
    on_topic = [parse(value, source="topic") for _, value in checkpoint_documents(isolated)]
    assert [c.payload for c in on_topic] == [
        parse(f.read_bytes(), source="f").payload for f in files
    ]
    assert on_topic[0].payload["rows"] == 8 and on_topic[1].payload["rows"] == 16

    # A clean ledger agrees with every checkpoint, from the files and from the topic.
    for source in (["--checkpoint", papers], []):
        clean = _cli(isolated, "verify", "--trust", public, *source)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert "agrees with 2 signed checkpoint(s)" in " ".join(clean.stdout.split())

    # A rewrite from the third row of partition 1 to its head, made consistent again.
    _rewrite_chain(isolated, partition=1, from_row=2)
    blind = _cli(isolated, "verify")
    assert blind.returncode == 0, "the chain walk alone cannot see a consistent rewrite"
    caught = _cli(isolated, "verify", "--trust", public)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    out = " ".join(caught.stdout.split())
    chain = f"{isolated.topic_name(HEATING.name)}[1]"
    assert f"CONTRADICTS {chain}@" in out
    # Both checkpoints signed heads after the rewritten row: each is named.
    for document in on_topic:
        assert f"checkpoint {document.created_at}" in out
    assert "the chain was rewritten" in out
    by_file = _cli(isolated, "verify", "--trust", public, "--checkpoint", files[0])
    assert by_file.returncode == 1
    assert files[0].name in " ".join(by_file.stdout.split())


def test_a_forged_or_untrusted_checkpoint_is_reported(isolated: Settings, tmp_path: Path) -> None:
    key = tmp_path / "auditor.key"
    assert _cli(isolated, "keygen", key).returncode == 0
    other = tmp_path / "someone-else.key"
    assert _cli(isolated, "keygen", other).returncode == 0
    _ledger(isolated, 0, n=4)
    papers = tmp_path / "papers"
    made = _cli(isolated, "checkpoint", "--key", key, "--out", papers)
    assert made.returncode == 0, made.stdout + made.stderr
    (genuine,) = papers.glob("*.json")

    # The payload altered after signing (a head moved to match a rewritten ledger).
    document = orjson.loads(genuine.read_bytes())
    document["payload"]["chains"][0]["rows"] += 1
    forged = tmp_path / "forged.json"
    forged.write_bytes(orjson.dumps(document))
    result = _cli(isolated, "verify", "--trust", f"{key}.pub", "--checkpoint", forged)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FORGED (bad signature)" in " ".join(result.stdout.split())
    assert "forged or altered" in " ".join(result.stdout.split())

    # Signed, but by a key the auditors do not trust.
    result = _cli(isolated, "verify", "--trust", f"{other}.pub", "--checkpoint", genuine)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "UNTRUSTED (unknown key)" in " ".join(result.stdout.split())

    # Without any trusted key, checkpoint files are refused as a usage error.
    result = _cli(isolated, "verify", "--checkpoint", genuine)
    assert result.returncode == 2
    assert "--trust" in result.stderr


def test_only_the_auditors_may_write_the_checkpoint_topic(isolated: Settings) -> None:
    from kafka import KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    from tests.conftest import kafka_options

    topic = isolated.topic_name(CHECKPOINT_TOPIC)
    for principal in ("worker", "heating"):
        producer = KafkaProducer(**kafka_options(isolated, principal))
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                producer.send(topic, b"{}").get(timeout=30)
        finally:
            producer.close()

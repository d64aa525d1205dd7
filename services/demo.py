"""``make demo`` / ``citystream demo``: the heating family end to end on the local stack.

Migrates, starts a worker process, sends heating events across the five subdistricts
through the real producer, waits until PostgreSQL shows them, prints the heated area per
subdistrict as read back from ``metric_daily`` next to what was sent, stops the worker.
Event ids are derived from the demo's seed, so running it again counts nothing twice.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from schemas.districts import LABELS, SUBDISTRICTS, District
from schemas.heating import CONNECTED_AREA_M2, HeatingAreaConnected
from schemas.topics import HEATING
from services.producer import Producer, ensure_topics
from services.progress import caught_up
from services.settings import Settings
from streams.db import connect
from streams.db.migrate import migrate

DEMO_NAMESPACE = uuid.UUID("0f6a3c1e-2d4b-4e8f-9a7c-5b3d2e1f0a9b")


def demo_events(count: int, *, seed: int = 2024) -> list[HeatingAreaConnected]:
    """Connections of the 2024 heating season (1 Oct - 14 Nov), estate-sized."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not a secret
    start = datetime(2024, 10, 1, 1, 0, tzinfo=UTC)
    events = []
    for i in range(count):
        district = SUBDISTRICTS[i % len(SUBDISTRICTS)]
        occurred = start + timedelta(minutes=rng.randrange(0, 45 * 24 * 60))
        events.append(
            HeatingAreaConnected(
                event_id=uuid.uuid5(DEMO_NAMESPACE, f"heating/{seed}/{i}"),
                department="heating",
                district=district,
                occurred_at=occurred,
                reported_at=occurred + timedelta(hours=rng.randrange(1, 48)),
                project=f"demo estate {i // 5 + 1:03d}",
                source_ref=f"demo-ledger-{seed}#{i + 1}",
                area_m2=Decimal(rng.randrange(2_000_00, 60_000_00)) / 100,
            )
        )
    return events


def totals_by_district(settings: Settings) -> dict[str, Decimal]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT district, sum(total) FROM metric_daily WHERE metric = %s GROUP BY district",
            (CONNECTED_AREA_M2,),
        ).fetchall()
    return {district: Decimal(total) for district, total in rows}


def run_demo(settings: Settings, *, events: int, timeout_s: float, console: Console) -> None:
    for outcome in migrate(settings):
        console.print(
            f"migration {outcome.migration.version:04d}_{outcome.migration.name}: {outcome.status}"
        )
    ensure_topics(settings)

    batch = demo_events(events)
    sent: dict[str, Decimal] = defaultdict(Decimal)
    for event in batch:
        sent[str(event.district)] += event.area_m2

    worker = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "worker"], stdin=subprocess.DEVNULL
    )
    try:
        started = time.monotonic()
        producer = Producer(settings)
        try:
            deliveries = producer.send_all(batch)
        finally:
            producer.close()
        console.print(
            f"sent {len(deliveries)} heating.area_connected events to {deliveries[0].topic}"
        )

        with console.status("waiting for the worker to write them to PostgreSQL…"):
            while not caught_up(settings, [HEATING.name]):
                if worker.poll() is not None:
                    raise SystemExit(f"the worker exited with code {worker.returncode}")
                if time.monotonic() - started > timeout_s:
                    raise SystemExit(f"the worker did not catch up within {timeout_s:.0f} s")
                time.sleep(0.2)
        elapsed = time.monotonic() - started
        seen = totals_by_district(settings)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()

    table = Table(title="供热面积 · Heating area connected (m²)")
    table.add_column("街道 · Subdistrict")
    table.add_column("sent", justify="right")
    table.add_column("in PostgreSQL", justify="right")
    table.add_column("", justify="center")
    for district in SUBDISTRICTS:
        zh, en = LABELS[District(district)]
        s, db = sent.get(district, Decimal(0)), seen.get(district, Decimal(0))
        table.add_row(
            f"{zh} {en}", f"{s:,.2f}", f"{db:,.2f}", "[green]=[/]" if s == db else "[yellow]≠[/]"
        )
    console.print(table)
    console.print(f"worker caught up and totals read back {elapsed:.1f} s after the first send")
    if any(seen.get(d, Decimal(0)) != total for d, total in sent.items()):
        console.print("[yellow]≠: the database also holds heating events this demo did not send[/]")

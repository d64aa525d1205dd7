"""TimescaleDB's part, through a real worker: a compressed ledger and compressed daily
rollups take late events, redeliveries, reused ids and corrections exactly as plain tables
do, and every period figure equals metric_daily right after each commit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from schemas.heating import CONNECTED_AREA_M2, HeatingAreaConnected, HeatingCorrection
from services.audit.replay import replay_from_kafka, replay_from_ledger
from services.kafka.producer import Producer
from streams.db import connect
from streams.settings import Settings
from tests.conftest import WorkerProcess, wait_until
from tests.integration.helpers import chain_breaks, rollup_rows, scalar

pytestmark = [pytest.mark.integration, pytest.mark.timescaledb]

NOW = datetime.now(UTC)
# A day ago, a year ago, three years ago: days whose rollup chunks are long materialised
# and compressed when a department reports them late.
LATE = (NOW - timedelta(days=1), NOW - timedelta(days=365), NOW - timedelta(days=3 * 365))


def _event(when: datetime, area: str, **changes: Any) -> HeatingAreaConnected:
    return HeatingAreaConnected.model_validate(
        {
            "event_id": uuid.uuid4(),
            "department": "heating",
            "district": "wutong",
            "occurred_at": when,
            "reported_at": NOW,
            "project": "梧桐安置区",
            "area_m2": area,
            **changes,
        }
    )


def _compress_everything(settings: Settings) -> int:
    """Compress every chunk of the ledger and of the daily rollup; return how many."""
    with connect(settings, admin=True) as conn:
        conn.execute("SET search_path TO public")
        rows = conn.execute(
            """SELECT count(compress_chunk(format('%%I.%%I', chunk_schema, chunk_name)::regclass,
                                           if_not_compressed => true))
               FROM timescaledb_information.chunks
               WHERE hypertable_schema = %s AND hypertable_name IN ('events', 'metric_daily')""",
            (settings.db_schema,),
        ).fetchone()
        conn.commit()
    return int(rows[0]) if rows else 0


def _compressed(settings: Settings, table: str) -> tuple[int, int]:
    """(compressed chunks, all chunks) of ``table``."""
    with connect(settings) as conn:
        row = conn.execute(
            """SELECT count(*) FILTER (WHERE is_compressed), count(*)
               FROM timescaledb_information.chunks
               WHERE hypertable_schema = %s AND hypertable_name = %s""",
            (settings.db_schema, table),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _periods_equal_daily(settings: Settings) -> None:
    """What panels read for weeks and months equals the sums of metric_daily, now."""
    with connect(settings) as conn:
        for view, unit in (("metric_weekly", "week"), ("metric_monthly", "month")):
            mismatch = conn.execute(
                f"""SELECT count(*) FROM (
                      SELECT date_trunc('{unit}', day)::date AS period, district, metric,
                             sum(total) AS total, sum(events) AS events
                      FROM metric_daily GROUP BY 1, 2, 3
                    ) d
                    FULL JOIN {view} v
                      ON v.{unit} = d.period AND v.district = d.district AND v.metric = d.metric
                    WHERE v.total IS DISTINCT FROM d.total
                       OR v.events IS DISTINCT FROM d.events"""  # noqa: S608 - fixed names
            ).fetchone()
            assert mismatch == (0,), view


def _total(settings: Settings) -> Decimal:
    return sum(
        (
            total
            for (_, _, metric), (total, _) in rollup_rows(settings).items()
            if metric == CONNECTED_AREA_M2
        ),
        Decimal(0),
    )


def test_a_compressed_ledger_and_rollup_take_late_events_and_corrections(
    isolated: Settings, worker: WorkerProcess
) -> None:
    producer = Producer(isolated)
    worker.start()
    first = [_event(when, "1000.00") for when in LATE]
    producer.send_all(first)
    wait_until(
        lambda: scalar(isolated, "SELECT count(*) FROM events") == 3,
        timeout_s=60,
        what="the first events",
        context=worker.logs,
    )
    assert _compress_everything(isolated) >= 4
    assert _compressed(isolated, "events")[0] >= 1
    compressed_days, day_chunks = _compressed(isolated, "metric_daily")
    assert compressed_days == day_chunks >= 3  # three days years apart: three chunks

    # Late reports for the same, compressed days; an identical redelivery and a reused id of
    # an event whose ledger row is compressed; a correction of it, and a second one.
    late = [_event(when, "250.50") for when in LATE]
    target = first[2]
    reused = target.model_copy(update={"area_m2": Decimal("1.00")})

    def correction(delta: str, ref: str) -> HeatingCorrection:
        return HeatingCorrection.model_validate(
            {
                "event_id": uuid.uuid4(),
                "department": "heating",
                "district": target.district,
                "occurred_at": target.occurred_at,
                "reported_at": NOW,
                "project": target.project,
                "corrects": target.event_id,
                "metric": CONNECTED_AREA_M2,
                "delta": delta,
                "reason": "复核面积",
                "approved_by": "王科长",
                "source_ref": ref,
            }
        )

    first_fix, second_fix = correction("-100.00", "审批单 A-1"), correction("-50.25", "审批单 A-2")
    too_much = correction("-900.00", "审批单 A-3")  # 1000 − 100 − 50.25 − 900 < 0
    producer.send_all([*late, target, reused, first_fix, second_fix, too_much])
    producer.close()
    wait_until(
        lambda: (
            scalar(isolated, "SELECT count(*) FROM events") == 8
            and scalar(isolated, "SELECT count(*) FROM deadletters") == 2
        ),
        timeout_s=60,
        what="the late events and corrections",
        context=worker.logs,
    )
    with connect(isolated) as conn:
        reasons = sorted(
            row[0] for row in conn.execute("SELECT reason FROM deadletters").fetchall()
        )
    assert reasons == ["correction_exceeds_original", "duplicate_event_id"]
    assert _total(isolated) == Decimal("3000") + Decimal("751.50") - Decimal("150.25")
    _periods_equal_daily(isolated)
    assert chain_breaks(isolated) == []
    for replay in (replay_from_kafka(isolated), replay_from_ledger(isolated)):
        assert replay.differences() == [], replay.source

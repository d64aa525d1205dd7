"""Corrections end to end: the rollup changes, the original stays, bad corrections are
refused with a reason the department can act on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from schemas.heating import CONNECTED_AREA_M2, HeatingAreaConnected, HeatingCorrection
from services.kafka.producer import Producer
from streams.db import connect
from streams.settings import Settings
from tests.conftest import WorkerProcess, wait_until
from tests.integration.helpers import scalar

pytestmark = pytest.mark.integration

WHEN = datetime(2024, 10, 8, 2, tzinfo=UTC)


def _total(settings: Settings) -> Decimal:
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(total), 0) FROM metric_daily WHERE metric = %s",
            (CONNECTED_AREA_M2,),
        ).fetchone()
    assert row is not None
    return Decimal(row[0])


def _correction(original: HeatingAreaConnected, delta: str, **changes: object) -> HeatingCorrection:
    fields: dict[str, object] = {
        "event_id": uuid.uuid4(),
        "department": "heating",
        "district": original.district,
        "occurred_at": WHEN,
        "reported_at": WHEN,
        "project": original.project,
        "corrects": original.event_id,
        "metric": CONNECTED_AREA_M2,
        "delta": delta,
        "reason": "台账录入错误：多录了一个单元",
        "approved_by": "王科长",
        "source_ref": f"审批单 {uuid.uuid4().hex[:8]}",
    }
    fields.update(changes)
    return HeatingCorrection.model_validate(fields)


def test_corrections_restate_the_figure_and_keep_the_original(
    isolated: Settings, worker: WorkerProcess
) -> None:
    original = HeatingAreaConnected(
        event_id=uuid.uuid4(),
        department="heating",
        district="fengyang",
        occurred_at=WHEN,
        reported_at=WHEN,
        project="枫杨佳苑",
        area_m2=Decimal("12000.00"),
    )
    producer = Producer(isolated)
    worker.start()
    producer.send_all([original])
    wait_until(lambda: _total(isolated) == Decimal(12000), timeout_s=60, what="the original")

    good = _correction(original, "-1500.50")
    refused = {
        "unknown_corrected_event": _correction(original, "-1", corrects=uuid.uuid4()),
        "correction_district_mismatch": _correction(original, "-1", district="shifo"),
        "correction_exceeds_original": _correction(original, "-20000"),
    }
    producer.send_all([good, *refused.values()])
    producer.close()
    wait_until(
        lambda: scalar(isolated, "SELECT count(*) FROM deadletters") == len(refused),
        timeout_s=60,
        what="the refused corrections",
        context=worker.logs,
    )
    assert _total(isolated) == Decimal("10499.50")
    with connect(isolated) as conn:
        kept = conn.execute(
            "SELECT measures ->> %s FROM events WHERE event_id = %s",
            (CONNECTED_AREA_M2, original.event_id),
        ).fetchone()
        chained = conn.execute(
            "SELECT corrects FROM events WHERE event_id = %s", (good.event_id,)
        ).fetchone()
        reasons = {r[0] for r in conn.execute("SELECT reason FROM deadletters")}
    assert kept == ("12000.00",)
    assert chained == (original.event_id,)
    assert reasons == set(refused)

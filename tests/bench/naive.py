"""The naive baseline the benchmark compares against: one faust agent that, per event,
decodes it, INSERTs one ledger row and upserts one rollup row in its own transaction, and
acks the event (faust acks each event of a plain ``async for``). No batching, no chain.

Run as ``python -m tests.bench.naive`` with the same ``CITYSTREAM_*`` settings as a worker.
"""

from __future__ import annotations

from typing import Any

import faust
import orjson

from schemas.rejections import Rejection
from schemas.topics import HEATING
from schemas.validation import decode
from streams.app import broker_credentials
from streams.chain import GENESIS
from streams.db import connect_async
from streams.rollup import local_day
from streams.settings import STACK_DIR, Settings

INSERT = """
INSERT INTO events (event_id, event_type, schema_version, department, district, occurred_at,
                    reported_at, ingested_at, project, source_ref, measures, payload, topic,
                    partition, kafka_offset, prev_hash, hash)
VALUES (%s, %s, %s, %s, %s, %s, %s, now(), %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""
UPSERT = """
INSERT INTO metric_daily (day, district, metric, total, events) VALUES (%s, %s, %s, %s, 1)
ON CONFLICT (day, district, metric) DO UPDATE
SET total = metric_daily.total + EXCLUDED.total, events = metric_daily.events + 1
"""


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.consumer_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        # The same login as the real worker: the baseline pays for authentication too.
        broker_credentials=broker_credentials(settings),
        topic_disable_leader=True,
        value_serializer="raw",
        web_enabled=False,
        autodiscover=False,
        store="memory://",
        datadir=str(STACK_DIR / "faust" / "naive-{conf.id}"),
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
    )
    topic = app.topic(settings.topic_name(HEATING.name), value_serializer="raw")

    @app.agent(topic)
    async def naive(stream: Any) -> None:
        conn = await connect_async(settings)
        await conn.set_autocommit(True)
        async for event in stream.events():
            message = event.message
            outcome = decode(HEATING, message.value)
            if isinstance(outcome, Rejection):
                continue
            measures = {k: str(v) for k, v in outcome.measures().items()}
            async with conn.transaction():
                await conn.execute(
                    INSERT,
                    (
                        outcome.event_id,
                        outcome.event_type_name,
                        outcome.schema_version,
                        outcome.department,
                        str(outcome.district),
                        outcome.occurred_at,
                        outcome.reported_at,
                        outcome.project,
                        outcome.source_ref,
                        orjson.dumps(measures).decode(),
                        outcome.model_dump_json(),
                        message.topic,
                        message.partition,
                        message.offset,
                        GENESIS,
                        GENESIS,
                    ),
                )
                for metric, quantity in outcome.measures().items():
                    await conn.execute(
                        UPSERT,
                        (local_day(outcome.occurred_at), str(outcome.district), metric, quantity),
                    )

    return app


if __name__ == "__main__":
    settings = Settings()
    (STACK_DIR / "faust").mkdir(parents=True, exist_ok=True)
    faust.Worker(create_app(settings), loglevel="warning", quiet=True).execute_from_commandline()

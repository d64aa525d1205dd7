"""The faust app of ``citystream worker``: one agent per event family, one batch sink.

Reads topics ``city.<family>.v1`` (with ``CITYSTREAM_TOPIC_NAMESPACE`` prepended), writes
``city.deadletter.v1`` and the tables of ``streams.db.ledger``. Kafka's committed offsets
are a convenience only: on every partition assignment the worker moves each partition to
the offset PostgreSQL recorded with the rows that offset produced.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import faust
from faust.types import TP

from schemas.topics import ALL, DEADLETTER_TOPIC, TopicSpec
from services.settings import STACK_DIR, Settings
from streams.db import DatabaseError, DatabaseUnavailable, connect_async
from streams.db.ledger import stored_offsets, write_batch
from streams.sink import Record, prepare

log = logging.getLogger("citystream.worker")

# Bounded back-off while PostgreSQL is away: nothing is acked meanwhile, so nothing is lost.
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.consumer_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        autodiscover=False,
        store="memory://",
        # faust makes a data folder even with no tables; keep it out of the work tree.
        datadir=str(STACK_DIR / "faust" / "{conf.id}"),
        topic_replication_factor=settings.topic_replication_factor,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 4,
        broker_commit_every=settings.batch_size,
        stream_buffer_maxsize=max(4096, settings.batch_size * 2),
    )
    deadletters = app.topic(settings.topic_name(DEADLETTER_TOPIC), value_serializer="raw")
    names = {settings.topic_name(spec.name) for spec in ALL}

    for spec in ALL:
        _register_agent(app, settings, spec, deadletters)

    @app.on_partitions_assigned.connect
    async def seek_to_stored_offsets(
        sender: Any, /, *args: Any, signal: Any, **kwargs: Any
    ) -> None:
        assigned: set[TP] = args[0]
        ours = sorted((tp.topic, tp.partition) for tp in assigned if tp.topic in names)
        if not ours:
            return
        conn = await _connect_with_retry(settings)
        try:
            offsets = await stored_offsets(conn, ours)
        finally:
            await conn.close()
        if not offsets:
            return
        tps = {TP(topic, partition): offset for (topic, partition), offset in offsets.items()}
        # Committing first makes faust's own seek-to-committed (after recovery) land on the
        # same offsets; the explicit seek covers the case where that seek already ran.
        # faust has no public call to commit chosen offsets; this is the driver's own.
        await cast(Any, app.consumer)._commit(tps)
        for tp, offset in tps.items():
            await app.consumer.seek(tp, offset)
        log.info(
            "seeked to stored offsets %s", {f"{t.topic}[{t.partition}]": o for t, o in tps.items()}
        )

    return app


def _register_agent(app: faust.App, settings: Settings, spec: TopicSpec, deadletters: Any) -> None:
    topic = app.topic(
        settings.topic_name(spec.name), value_serializer="raw", partitions=settings.topic_partitions
    )

    async def agent(stream: Any) -> None:
        conn = await _connect_with_retry(settings)
        async for events in stream.noack().noack_take(
            settings.batch_size, within=settings.batch_wait_s
        ):
            records = [
                Record(e.message.topic, e.message.partition, e.message.offset, e.message.value)
                for e in events
            ]
            batch = prepare(spec, records)
            for record, why in batch.rejected:
                await deadletters.send(
                    key=f"{record.topic}/{record.partition}/{record.offset}".encode(),
                    value=record.value or b"",
                    headers={
                        "reason": why.reason.encode(),
                        "field": (why.field or "").encode(),
                        "message": why.message.encode(),
                        "topic": record.topic.encode(),
                        "partition": str(record.partition).encode(),
                        "offset": str(record.offset).encode(),
                    },
                )
            conn = await _write_with_retry(settings, conn, batch)
            for event in events:
                await stream.ack(event)

    app.agent(topic, name=spec.family, concurrency=1)(agent)


async def _connect_with_retry(settings: Settings) -> Any:
    attempt = 0
    while True:
        try:
            return await connect_async(settings)
        except DatabaseUnavailable as exc:
            delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            log.warning("database unavailable, retrying in %.1fs: %s", delay, exc)
            attempt += 1
            await asyncio.sleep(delay)


async def _write_with_retry(settings: Settings, conn: Any, batch: Any) -> Any:
    """Write until it commits; return the (possibly new) connection."""
    attempt = 0
    while True:
        try:
            await write_batch(conn, batch)
            return conn
        except DatabaseError as exc:
            delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            log.warning("batch not written, retrying in %.1fs: %s", delay, exc)
            attempt += 1
            await asyncio.sleep(delay)
            if conn.closed or conn.broken or isinstance(exc, DatabaseUnavailable):
                await conn.close()
                conn = await _connect_with_retry(settings)

"""The faust app of ``citystream worker``: one batch loop per event family, one batch sink.

The stages, each in its module: the consumer seam (``streams.consumer``: faust's consumer
changed where faust decides) → each family's loop (``streams.family``) → the batch
(``streams.batch``: records decoded and validated, pure) → the sink (``streams.sink``:
write with retries and isolation, dead letters, metrics; ``streams.receipts``) →
``streams.db`` (the only SQL). This module makes the app and wires them.

Logs in to Kafka as the ``worker`` principal (SASL/SCRAM-SHA-512). Reads topics
``city.<family>.v1`` (with ``CITYSTREAM_TOPIC_NAMESPACE`` prepended) with
``isolation_level=read_committed`` (records of an aborted Kafka transaction never count),
writes ``city.deadletter.v1``, each department's receipts ``city.receipts.<department>.v1``
(``streams.receipts``) and the tables of ``streams.db.ledger``. Kafka's committed
offsets are a convenience only: after every partition assignment the worker resumes each
partition at the offset PostgreSQL recorded with the rows that offset produced, in the
topic's current incarnation (``streams.db.cursors``): a topic deleted and created again is
noticed (its id changed, or the stored offsets lie beyond its end) and read from its start.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import faust
import psycopg
from faust.tables import TableManager
from faust.types import TP

from schemas.topics import ALL, DEADLETTER_TOPIC, DEPARTMENTS, receipts_topic
from streams import metrics
from streams import receipts as receipts_
from streams.consumer import Transport
from streams.db.cursors import Incarnation, current_incarnation, stored_offsets
from streams.family import FamilyLoop
from streams.settings import SASL_MECHANISM, STACK_DIR, Settings
from streams.sink import RETRY_DELAYS_S, connect_with_retry

log = logging.getLogger("citystream.worker")

# The Kafka principal the workers log in as (services.kafka.access: READ on the city.* topics and
# the group, WRITE on the dead-letter topic).
WORKER = "worker"
# Topic names → their ids as the broker reports them now (blocking; run in a thread).
TopicIds = Callable[[Sequence[str]], Mapping[str, uuid.UUID]]


class _NoTables(TableManager):
    """faust's table manager without its start-up pause: it sleeps a second before it
    starts recovery, so that tables declared after the app started can still register.
    The worker declares none (:func:`create_app`), and the pause delayed every start,
    the first batch after a deploy or a crash included."""

    async def on_start(self) -> None:
        if self:  # a table after all: faust's own start, pause included
            await super().on_start()
            return
        await self._update_channels()
        await self.recovery.start()


class WorkerFaustApp(faust.App):
    def __init__(self, *args: Any, settings: Settings, topic_ids: TopicIds, **kwargs: Any) -> None:
        self.settings = settings
        self.topic_ids = topic_ids
        self.families: dict[str, FamilyLoop] = {}
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    async def incarnation(
        self,
        consumer: Any,
        topic: str,
        *,
        require_id: bool = False,
        known: tuple[dict[str, uuid.UUID], dict[str, dict[int, int]]] | None = None,
    ) -> Incarnation:
        """The topic's incarnation now, recording a new one if it was re-created. Raises
        if PostgreSQL (or, with ``require_id``, the broker) could not be asked. ``known``:
        the topic ids and log ends already read for every assigned topic at once."""
        if known is not None and topic in known[0] and topic in known[1]:
            return await self._record_incarnation(topic, known[0], known[1][topic])
        ids: Mapping[str, uuid.UUID]
        try:
            ids = await asyncio.to_thread(self.topic_ids, [topic])
        except Exception as exc:  # without the id nothing can be told; asked again later
            if require_id:
                raise
            log.warning("could not read the id of topic %s: %s", topic, exc)
            ids = {}
        if require_id and topic not in ids:
            raise LookupError(f"the broker reports no id for topic {topic}")
        try:
            log_end = (await self._log_ends(consumer, [topic]))[topic]
        except Exception as exc:  # only a ledger from before topic ids needs them
            log.warning("could not read the end offsets of topic %s: %s", topic, exc)
            return await self._record_incarnation(topic, ids, None)
        return await self._record_incarnation(topic, ids, log_end)

    @staticmethod
    async def _log_ends(consumer: Any, topics: Sequence[str]) -> dict[str, dict[int, int]]:
        """Each topic's end offset per partition, asked of the broker in one request: one
        request per topic made an assignment of ten families take ten seconds longer."""
        tps = [
            TP(topic, p) for topic in topics for p in range(consumer.topic_partitions(topic) or 0)
        ]
        ends = await consumer.highwaters(*tps) if tps else {}
        found: dict[str, dict[int, int]] = {topic: {} for topic in topics}
        for tp, end in ends.items():
            found[tp.topic][tp.partition] = int(end)
        return found

    async def _record_incarnation(
        self, topic: str, ids: Mapping[str, uuid.UUID], log_end: dict[int, int] | None
    ) -> Incarnation:
        conn = await connect_with_retry(self.settings)
        try:
            found = await current_incarnation(
                conn, topic=topic, topic_id=ids.get(topic), log_end=log_end
            )
        finally:
            await conn.close()
        if found.reset is not None:
            metrics.TOPIC_RESETS.labels(topic).inc()
            log.error(
                "topic %s was deleted and created again (%s): reading its incarnation %d from "
                "its start; the ledger keeps the earlier incarnations' rows",
                topic,
                found.reset,
                found.number,
            )
        metrics.INCARNATION.labels(topic).set(found.number)
        return found

    async def positions(self, incarnation: Incarnation, tps: Sequence[TP]) -> dict[TP, int]:
        """Where to resume each partition: the next offset PostgreSQL stored for it in this
        incarnation, its start if nothing was stored yet."""
        attempt = 0
        while True:  # nowhere to resume from without PostgreSQL: wait for it
            conn = await connect_with_retry(self.settings)
            try:
                stored = await stored_offsets(
                    conn,
                    topic=incarnation.topic,
                    incarnation=incarnation.number,
                    partitions=[tp.partition for tp in tps],
                )
                return {TP(incarnation.topic, p): offset for p, offset in stored.items()}
            except psycopg.Error as exc:
                delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
                log.warning("reading stored offsets failed, retrying in %.1fs: %s", delay, exc)
                attempt += 1
                await asyncio.sleep(delay)
            finally:
                await conn.close()

    async def resume_positions(self, consumer: Any, assigned: set[TP]) -> dict[TP, int]:
        """After an assignment: each family's incarnation, and where each partition resumes."""
        resumed: dict[TP, int] = {}
        topics = [topic for topic in self.families if any(tp.topic == topic for tp in assigned)]
        known: tuple[dict[str, uuid.UUID], dict[str, dict[int, int]]] | None = None
        try:  # the broker asked once for every assigned topic; each topic again if this fails
            known = (
                dict(await asyncio.to_thread(self.topic_ids, topics)),
                await self._log_ends(consumer, topics),
            )
        except Exception as exc:
            log.warning("could not read the assigned topics' ids and ends at once: %s", exc)
        for topic, family in self.families.items():
            mine = sorted(tp for tp in assigned if tp.topic == topic)
            if not mine:
                continue
            try:
                incarnation = await self.incarnation(consumer, topic, known=known)
            except Exception:  # the family's periodic check decides later
                log.exception("deciding the incarnation of %s failed; keeping the last", topic)
                incarnation = family.incarnation
            family.begin(incarnation)
            positions = await self.positions(incarnation, mine)
            resumed.update(positions)
            # In the background, but before the family's next write (Publisher.settled).
            family.receipts.track(
                asyncio.create_task(self.rederive_receipts(family, incarnation, positions))
            )
        return resumed

    async def rederive_receipts(
        self, family: FamilyLoop, incarnation: Incarnation, positions: Mapping[TP, int]
    ) -> None:
        """Publish again the receipts of each partition's last batch, from PostgreSQL: the
        worker that wrote it may have died before Kafka took them (streams/receipts.py)."""
        found = await receipts_.rederive_last_batches(
            self.settings,
            family.spec,
            incarnation=incarnation.number,
            positions={(tp.topic, tp.partition): offset for tp, offset in positions.items()},
        )
        if found is not None:
            metrics.RECEIPTS_REDERIVED.labels(family.topic).inc(sum(o.receipts for o in found[0]))
            await family.receipts.publish(*found)


def broker_credentials(settings: Settings) -> faust.SASLCredentials:
    """The workers' Kafka login (``CITYSTREAM_KAFKA_WORKER_PASSWORD``): SCRAM-SHA-512, over
    TLS when ``CITYSTREAM_KAFKA_SECURITY_PROTOCOL`` is SASL_SSL (faust's default mechanism
    would be PLAIN)."""
    context = None
    if settings.kafka_security_protocol == "SASL_SSL":
        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        context = ssl.create_default_context(cafile=cafile)
    return faust.SASLCredentials(
        username=WORKER,
        password=settings.kafka_password(WORKER).get_secret_value(),
        mechanism=SASL_MECHANISM,
        ssl_context=context,
    )


def create_app(settings: Settings, *, topic_ids: TopicIds) -> faust.App:
    """``topic_ids`` reads topic ids from the broker (``services.kafka.topics.TopicIds``, as the
    workers' principal): aiokafka's metadata requests predate them. Raises
    MissingCredentials without the workers' Kafka password."""
    (STACK_DIR / "faust").mkdir(parents=True, exist_ok=True)

    app = WorkerFaustApp(
        settings.consumer_group,
        settings=settings,
        topic_ids=topic_ids,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=broker_credentials(settings),
        # faust would otherwise create and join an "<app>-__assignor-__leader" topic at start;
        # the workers' principal may create no topic, and the app needs no leader.
        topic_disable_leader=True,
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        autodiscover=False,
        store="memory://",
        TableManager=_NoTables,
        # faust makes a data folder even with no tables; keep it out of the work tree.
        datadir=str(STACK_DIR / "faust" / "{conf.id}"),
        topic_replication_factor=settings.topic_replication_factor,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # A receipts record holds a few hundred receipts (~200 KB): with aiokafka's 16 KB
        # batches each went out as a batch of its own, costing the worker ~0.5 µs and the
        # broker ~0.4 µs more per receipt. Half of the broker's 1 MB message limit.
        producer_max_batch_size=512 * 1024,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 4,
        # A broker that restarts can answer its first metadata requests before it has loaded
        # its topics; the group is then assigned nothing until the metadata is refreshed
        # (every 5 minutes by default). 10 s bounds that stall (chaos suite, broker restart).
        consumer_metadata_max_age_ms=10_000,
    )
    deadletters = app.topic(settings.topic_name(DEADLETTER_TOPIC), value_serializer="raw")
    receipt_topics = {
        department: app.topic(
            settings.topic_name(receipts_topic(department)),
            key_serializer="raw",
            value_serializer="raw",
        )
        for department in DEPARTMENTS
    }

    for spec in ALL:
        family = FamilyLoop(app, settings, spec, deadletters, receipt_topics)
        # Subscribing the topic is what makes the group assign its partitions to us.
        app.topics.add(
            app.topic(family.topic, value_serializer="raw", partitions=settings.topic_partitions)
        )
        app.families[family.topic] = family
        app.task(family.run)

    async def revoked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        writes = [w for family in app.families.values() if (w := family.on_revoked()) is not None]
        if writes:
            # Bounded: with PostgreSQL away a write retries until it returns.
            await asyncio.wait(writes, timeout=settings.session_timeout_s)

    # mode's stubs type async receivers as returning None | Awaitable | None; it awaits them.
    app.on_partitions_revoked.connect(cast(Any, revoked))
    return app

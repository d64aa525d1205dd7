"""Prometheus metrics of a worker, served on ``CITYSTREAM_METRICS_PORT`` (0 turns them off).

Names carry the ``citystream_`` prefix; labels follow the data path (topic, event_type,
reason, partition), so a dashboard can go from "rejected" to the reason without joins.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("citystream.worker")

CONSUMED = Counter("citystream_events_consumed", "Records read from Kafka", ["topic"])
ACCEPTED = Counter(
    "citystream_events_accepted", "Events newly written to the ledger", ["event_type"]
)
DUPLICATES = Counter(
    "citystream_events_duplicate", "Records whose event_id the ledger already held", ["topic"]
)
REJECTED = Counter(
    "citystream_events_rejected", "Records sent to the dead letters", ["topic", "reason"]
)
BATCH_SIZE = Histogram(
    "citystream_batch_size",
    "Records per sink batch",
    buckets=(1, 10, 50, 100, 500, 1000, 2000, 4000, 10000),
)
SINK_SECONDS = Histogram(
    "citystream_sink_seconds",
    "Time to write one batch (one transaction), retries included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SINK_RETRIES = Counter("citystream_sink_retries", "Batch writes retried after a database error")
BATCH_SPLITS = Counter(
    "citystream_batch_splits",
    "Batches split in halves to find a record that cannot be stored (it becomes a dead letter)",
)
TOPIC_RESETS = Counter(
    "citystream_topic_resets",
    "Topics found deleted and created again (a new incarnation began)",
    ["topic"],
)
INCARNATION = Gauge(
    "citystream_topic_incarnation", "The incarnation of each topic the worker reads", ["topic"]
)
CREATE_TIME_RECORDS = Counter(
    "citystream_create_time_records",
    "Records stamped by their producer (CreateTime) rather than the broker: the topic lacks "
    "message.timestamp.type=LogAppendTime (run 'citystream topics')",
    ["topic"],
)
RECEIPTS_FAILED = Counter(
    "citystream_receipts_failed",
    "Receipts (or marks) Kafka did not take: the department learns those records' outcomes "
    "only when a worker is next assigned the partition, or after 'citystream receipts rebuild'",
    ["department"],
)
RECEIPTS_REDERIVED = Counter(
    "citystream_receipts_rederived",
    "Receipts re-derived from PostgreSQL when a partition was assigned",
    ["topic"],
)
LAG = Gauge("citystream_consumer_lag", "Records behind the partition's end", ["topic", "partition"])
COMMITTED = Gauge(
    "citystream_committed_offset", "Next offset recorded in PostgreSQL", ["topic", "partition"]
)


def serve(address: str, port: int) -> None:
    if port == 0:
        return
    try:
        start_http_server(port, addr=address)
    except OSError as exc:
        # A second worker on the same host: it still works, only without its own metrics.
        log.warning("metrics not served on %s:%d: %s", address, port, exc)

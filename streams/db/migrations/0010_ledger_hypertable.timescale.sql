-- TimescaleDB only. What the extension is used for, decided by measurement (README,
-- "TimescaleDB"; `make bench`):
--
-- 1. The ledger becomes a hypertable on ingested_at and its chunks are compressed once
--    they are 30 days old. The ledger is append-only and never pruned; ingested_at only
--    grows, so a compressed chunk is never written again. Segments by topic-partition,
--    ordered by Kafka offset: a chain's rows stay together, in chain order. Uniqueness
--    lives in event_keys / correction_keys (0009).
-- 2. The weekly and monthly rollups are plain views over metric_daily again, as on plain
--    PostgreSQL (0006). Continuous aggregates are not exact after a late event in an
--    already materialised bucket (it stays invisible until that bucket is refreshed, and
--    a refresh cannot run inside the sink's transaction); every figure a panel reads must
--    equal metric_daily after each commit. A few hundred thousand daily rows are summed
--    into weeks in milliseconds.
SELECT create_hypertable('events', 'ingested_at',
                         chunk_time_interval => INTERVAL '30 days', migrate_data => TRUE);
ALTER TABLE events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'topic, incarnation, partition',
    timescaledb.compress_orderby = 'kafka_offset'
);
SELECT add_compression_policy('events', compress_after => INTERVAL '30 days');

DROP MATERIALIZED VIEW metric_weekly;
DROP MATERIALIZED VIEW metric_monthly;

CREATE VIEW metric_weekly AS
SELECT date_trunc('week', day)::date AS week,
       district,
       metric,
       sum(total) AS total,
       sum(events)::bigint AS events
FROM metric_daily
GROUP BY 1, 2, 3;

CREATE VIEW metric_monthly AS
SELECT date_trunc('month', day)::date AS month,
       district,
       metric,
       sum(total) AS total,
       sum(events)::bigint AS events
FROM metric_daily
GROUP BY 1, 2, 3;

-- TimescaleDB only (the compose stack). Replaces the plain views of 0006 with real-time
-- continuous aggregates of the same names and columns, and compresses old daily rollups.
--
-- Real time (materialized_only = false): a query sees the materialised buckets plus the
-- not-yet-materialised recent rows of metric_daily, so a dashboard is never behind the sink.
-- Late events upsert past days of metric_daily; TimescaleDB's invalidation log makes the
-- next refresh recompute exactly those buckets.
DROP VIEW metric_weekly;
DROP VIEW metric_monthly;

CREATE MATERIALIZED VIEW metric_weekly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 week', day) AS week,  -- buckets start on Mondays
       district,
       metric,
       sum(total) AS total,
       sum(events)::bigint AS events
FROM metric_daily
GROUP BY 1, 2, 3
WITH NO DATA;

CREATE MATERIALIZED VIEW metric_monthly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 month', day) AS month,
       district,
       metric,
       sum(total) AS total,
       sum(events)::bigint AS events
FROM metric_daily
GROUP BY 1, 2, 3
WITH NO DATA;

-- Refresh the recent past every hour; older buckets were refreshed when they were recent
-- and are recomputed on demand if a late correction invalidates them.
SELECT add_continuous_aggregate_policy('metric_weekly',
    start_offset => INTERVAL '400 days', end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour');
SELECT add_continuous_aggregate_policy('metric_monthly',
    start_offset => INTERVAL '400 days', end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour');

-- Daily rollups older than two years are compressed (segment by what panels filter on).
-- The sink may still upsert into them: TimescaleDB >= 2.11 decompresses the touched
-- segment for INSERT ... ON CONFLICT DO UPDATE.
ALTER TABLE metric_daily SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'metric, district',
    timescaledb.compress_orderby = 'day'
);
SELECT add_compression_policy('metric_daily', INTERVAL '730 days');

-- No retention policy anywhere: the ledger (events) and the rollups are the audit record
-- and are never dropped by age (see README, "TimescaleDB").

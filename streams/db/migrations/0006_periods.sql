-- Weekly and monthly rollups for dashboards and reports, derived from metric_daily.
-- On plain PostgreSQL they are ordinary views (computed at query time from the daily
-- rollup, which holds at most days x subdistricts x metrics rows: fast enough). Where
-- TimescaleDB is present, 0007_periods.timescale.sql replaces them with real-time
-- continuous aggregates of the same name and columns, so every query works on both.
-- Weeks start on Monday (ISO, as the district's weekly reports do).
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

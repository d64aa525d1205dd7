-- Applied only where the timescaledb extension is available (the compose stack); the
-- migration runner creates the extension with the admin connection first.
-- metric_daily's primary key contains its time column, so it can become a hypertable
-- as it is; the ledger's conversion comes with its own migration.
SELECT create_hypertable('metric_daily', 'day',
                         chunk_time_interval => INTERVAL '90 days',
                         if_not_exists => TRUE, migrate_data => TRUE);

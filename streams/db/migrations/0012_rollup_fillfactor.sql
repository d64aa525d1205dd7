-- The sink adds each batch's totals to a thousand-odd rows of metric_daily (a backlog spread
-- over a year touches nearly one row per event). On full pages every such update writes a
-- new row version elsewhere and an entry into each of the table's indexes; with half of each
-- page left free the new version stays on its page and no index is touched (a HOT update):
-- PostgreSQL spent ~25% less on the rollup per event (make bench: peers). The table holds a
-- row per day, subdistrict and metric, so doubling its pages costs little. Pages written
-- from now on keep the room; existing ones fill as before. On TimescaleDB the setting
-- passes to the hypertable's chunks, those to come included.
ALTER TABLE metric_daily SET (fillfactor = 50);

-- The ledger's ids are indexed once, in event_keys (0009), whose rows name each event's
-- ingest time and Kafka position: a lookup by id goes there first, then to `events` by
-- that position (events_chain). events_event_id was a second index of the same ids, one
-- more index entry for every ledger row the sink writes (about 1.2 µs of PostgreSQL CPU per
-- event, with each event's random id landing on a random index page), and on TimescaleDB
-- it did not survive compression anyway: an old chunk was searched by id only by
-- decompressing it whole, where its position finds the row in one segment.
DROP INDEX events_event_id;

-- What must be unique in the ledger moves to tables of its own, so that `events` itself
-- needs no unique index and can become a compressed TimescaleDB hypertable (0010): a
-- hypertable's unique indexes must contain its time column, and a compressed chunk keeps
-- no index at all. On plain PostgreSQL the same tables serve, so the sink has one path.
--
-- event_keys: one row per ledger row, written by the sink in the same transaction.
--   - event_id is unique: a redelivered event adds nothing (the sink checks here first);
--   - a Kafka position holds one event: a second one there means the topic was deleted and
--     created again (the sink tells a reset by this constraint's name);
--   - digest: blake2b-128 of the event's payload as the sink serialised it (sorted keys),
--     so "same id, same content?" is answered without reading the ledger row. NULL for rows
--     written before this migration: their payload is read from `events`.
--   - ingested_at and the position locate the ledger row cheaply, compressed or not.
CREATE TABLE event_keys (
    event_id      uuid        PRIMARY KEY,
    ingested_at   timestamptz NOT NULL,
    topic         text        NOT NULL,
    incarnation   integer     NOT NULL,
    partition     integer     NOT NULL,
    kafka_offset  bigint      NOT NULL,
    digest        bytea,
    CONSTRAINT event_keys_position UNIQUE (topic, incarnation, partition, kafka_offset)
);
INSERT INTO event_keys (event_id, ingested_at, topic, incarnation, partition, kafka_offset)
SELECT event_id, ingested_at, topic, incarnation, partition, kafka_offset FROM events;

-- correction_keys: one row per accepted correction — what the sink judges the next
-- correction of the same event by (the net of earlier deltas), and a correction's identity
-- (the department's reference, 审批单号: one correction per reference).
CREATE TABLE correction_keys (
    event_id    uuid    PRIMARY KEY,
    corrects    uuid    NOT NULL,
    department  text    NOT NULL,
    source_ref  text,
    metric      text    NOT NULL,
    delta       numeric NOT NULL
);
CREATE INDEX correction_keys_corrects ON correction_keys (corrects);
-- Corrections from before references were required have none (NULL), and never conflict.
CREATE UNIQUE INDEX correction_keys_ref ON correction_keys (department, source_ref);
INSERT INTO correction_keys (event_id, corrects, department, source_ref, metric, delta)
SELECT event_id, corrects, department, source_ref, payload ->> 'metric',
       (payload ->> 'delta')::numeric
FROM events WHERE corrects IS NOT NULL;

DROP INDEX events_correction_ref;
ALTER TABLE events DROP CONSTRAINT events_position;
ALTER TABLE events DROP CONSTRAINT events_pkey;
-- The same lookups as before, without uniqueness: by id (audit, a correction's original),
-- and a partition's rows in chain order (audit verify).
CREATE INDEX events_event_id ON events (event_id);
CREATE INDEX events_chain ON events (topic, incarnation, partition, kafka_offset);

-- Topic incarnations. A Kafka topic deleted and created again under the same name starts
-- again at offset 0 with a new topic id (a UUID the broker assigns at creation); its
-- (topic, partition, offset) coordinates are those of the deleted topic's records. Each
-- life of a topic is an incarnation, numbered from 1, with the topic id it had; the ledger,
-- the dead letters and the cursors carry the incarnation beside the Kafka coordinates, so
-- the records of a re-created topic are counted (once) instead of colliding with, or being
-- skipped behind, the old ones. Rows from before this migration are incarnation 1.
--
-- Written only by the worker when it notices a new incarnation (the topic id changed, or
-- the stored offsets lie beyond the log end): never updated or deleted.
CREATE TABLE topic_incarnations (
    topic        text        NOT NULL,
    incarnation  integer     NOT NULL CHECK (incarnation >= 1),
    -- NULL: the incarnation ended before the worker recorded topic ids.
    topic_id     uuid,
    detected_at  timestamptz NOT NULL DEFAULT now(),
    -- why the worker started this incarnation, as it logged it
    reason       text        NOT NULL,
    PRIMARY KEY (topic, incarnation),
    UNIQUE (topic, topic_id)
);

ALTER TABLE events ADD COLUMN incarnation integer NOT NULL DEFAULT 1;
ALTER TABLE events DROP CONSTRAINT events_topic_partition_kafka_offset_key;
-- The sink tells "another event already sits at this Kafka position" (a topic reset the
-- worker has not noticed yet) from other errors by this constraint's name.
ALTER TABLE events
    ADD CONSTRAINT events_position UNIQUE (topic, incarnation, partition, kafka_offset);

ALTER TABLE deadletters ADD COLUMN incarnation integer NOT NULL DEFAULT 1;
ALTER TABLE deadletters DROP CONSTRAINT deadletters_topic_partition_kafka_offset_key;
ALTER TABLE deadletters
    ADD CONSTRAINT deadletters_position UNIQUE (topic, incarnation, partition, kafka_offset);

ALTER TABLE consumer_offsets ADD COLUMN incarnation integer NOT NULL DEFAULT 1;
ALTER TABLE consumer_offsets DROP CONSTRAINT consumer_offsets_pkey;
ALTER TABLE consumer_offsets ADD PRIMARY KEY (topic, incarnation, partition);

-- A correction's identity is its department's reference (审批单号): the same correction
-- re-sent under a new event_id is refused (duplicate_correction). The sink checks it before
-- inserting; the index is the backstop for two workers racing with the same reference.
-- Corrections from before the reference was required have none, and never conflict.
CREATE UNIQUE INDEX events_correction_ref ON events (department, source_ref)
    WHERE corrects IS NOT NULL;

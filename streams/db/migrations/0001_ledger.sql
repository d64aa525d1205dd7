-- The ledger, the daily rollup, the consumer offsets and the dead letters.
-- Nothing here is ever updated or deleted in place except derived state:
-- metric_daily (a rollup of the ledger) and consumer_offsets (a cursor).

CREATE TABLE events (
    event_id        uuid        PRIMARY KEY,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    department      text        NOT NULL,
    district        text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    reported_at     timestamptz NOT NULL,
    ingested_at     timestamptz NOT NULL,
    project         text,
    source_ref      text,
    -- metric -> quantity (as text, exact), what this event adds to the rollups
    measures        jsonb       NOT NULL,
    payload         jsonb       NOT NULL,
    topic           text        NOT NULL,
    partition       integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    -- sha256 over prev_hash and the row's canonical content, chained per topic-partition
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL,
    UNIQUE (topic, partition, kafka_offset)
);
CREATE INDEX events_occurred_at ON events (occurred_at);
CREATE INDEX events_ingested_at ON events (ingested_at);
CREATE INDEX events_type_district ON events (event_type, district, occurred_at);

-- Day (Asia/Shanghai) x district x metric. Maintained by the sink in the same transaction
-- as the ledger insert, from newly inserted rows only.
CREATE TABLE metric_daily (
    day       date    NOT NULL,
    district  text    NOT NULL,
    metric    text    NOT NULL,
    total     numeric NOT NULL,
    events    bigint  NOT NULL,
    PRIMARY KEY (day, district, metric)
);
CREATE INDEX metric_daily_metric_day ON metric_daily (metric, day);

-- The database, not Kafka's commit, is the source of truth for what was consumed.
CREATE TABLE consumer_offsets (
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    next_offset  bigint      NOT NULL,
    last_hash    bytea       NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

CREATE TABLE deadletters (
    id            bigserial   PRIMARY KEY,
    topic         text        NOT NULL,
    partition     integer     NOT NULL,
    kafka_offset  bigint      NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    reason        text        NOT NULL,
    field         text,
    message       text        NOT NULL,
    raw           bytea,
    UNIQUE (topic, partition, kafka_offset)
);
CREATE INDEX deadletters_received_at ON deadletters (received_at);

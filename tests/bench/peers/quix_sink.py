"""The quixstreams peer: one Application draining a heating topic into PostgreSQL with
quixstreams' own ``PostgreSQLSink`` (upsert on the primary key ``event_id``).

Runs in quixstreams' own virtual environment (``.bench/quixstreams``, tests/bench/peers/
install.py), so it imports nothing of CityStream. tests/bench/peers/quix.py starts it with
these variables (the password ones hold secrets, so they travel in the environment only):

``PEER_BOOTSTRAP``, ``PEER_KAFKA_USER``, ``PEER_KAFKA_PASSWORD`` (SASL/SCRAM-SHA-512),
``PEER_TOPIC``, ``PEER_GROUP``, ``PEER_STATE_DIR``, ``PEER_PG_HOST``, ``PEER_PG_PORT``,
``PEER_PG_DBNAME``, ``PEER_PG_USER``, ``PEER_PG_PASSWORD``, ``PEER_PG_SCHEMA``,
``PEER_PG_TABLE``.
"""

from __future__ import annotations

import os

from quixstreams import Application  # type: ignore[import-not-found]
from quixstreams.kafka.configuration import ConnectionConfig  # type: ignore[import-not-found]
from quixstreams.sinks.community.postgresql import (  # type: ignore[import-not-found]
    PostgreSQLSink,
)


class Sink(PostgreSQLSink):  # type: ignore[misc]
    """quixstreams' sink, less its ``CREATE SCHEMA IF NOT EXISTS`` at setup: PostgreSQL checks
    the role's CREATE privilege on the database before it looks whether the schema exists, and
    the role writing here (the workers' ``citystream``) rightly has none. The schema and the
    table are made beforehand by the benchmark, as CityStream's migrations make its own."""

    def _create_schema(self) -> None:
        return None


def main() -> None:
    env = os.environ
    app = Application(
        broker_address=ConnectionConfig(
            bootstrap_servers=env["PEER_BOOTSTRAP"],
            security_protocol="sasl_plaintext",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username=env["PEER_KAFKA_USER"],
            sasl_password=env["PEER_KAFKA_PASSWORD"],
        ),
        consumer_group=env["PEER_GROUP"],
        auto_offset_reset="earliest",
        commit_interval=1.0,
        processing_guarantee="at-least-once",
        # The topic exists; the workers' principal may not create topics.
        auto_create_topics=False,
        use_changelog_topics=False,
        state_dir=env["PEER_STATE_DIR"],
        loglevel="WARNING",
    )
    topic = app.topic(env["PEER_TOPIC"], key_deserializer="bytes", value_deserializer="json")
    sink = Sink(
        host=env["PEER_PG_HOST"],
        port=int(env["PEER_PG_PORT"]),
        dbname=env["PEER_PG_DBNAME"],
        user=env["PEER_PG_USER"],
        password=env["PEER_PG_PASSWORD"],
        schema_name=env["PEER_PG_SCHEMA"],
        table_name=env["PEER_PG_TABLE"],
        # The table is typed from the event beforehand (uuid, timestamptz, numeric): no DDL.
        schema_auto_update=False,
        primary_key_columns=["event_id"],
        upsert_on_primary_key=True,
        # Only the event's own fields, as the other consumers write.
        include_metadata=False,
    )
    app.dataframe(topic).sink(sink)
    app.run()


if __name__ == "__main__":
    main()

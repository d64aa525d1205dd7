"""The quixstreams peer, started from the benchmark: tests/bench/peers/quix_sink.py in
quixstreams' own virtual environment, as the workers' principal in the namespace's group,
writing PostgreSQL as the workers' role. Passwords travel in its environment only.

quixstreams reads its input topic's configuration at start (``Application.topic`` →
``TopicAdmin.inspect_topics``) and refuses to run without it, so the workers' principal gets
one more grant, DESCRIBE_CONFIGS on this peer's topic alone (:func:`grant`; the auditors
hold the same on the family topics). ``pipeline.drop`` removes it with the namespace's
other bindings on that topic.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from schemas.topics import HEATING
from services.kafka.access import Grant
from services.kafka.acls import create_acls
from services.kafka.client import admin_client
from streams.settings import Settings
from tests.bench import pipeline
from tests.bench.peers.install import HOME, QUIX_PYTHON

APP = Path(__file__).with_name("quix_sink.py")


def grant(settings: Settings) -> Grant:
    """As the admin: let the workers' principal read this peer's topic's configuration."""
    extra = Grant("worker", "topic", settings.topic_name(HEATING.name), "DESCRIBE_CONFIGS")
    admin = admin_client(settings)
    try:
        create_acls(admin, [extra])
    finally:
        admin.close()
    return extra


class QuixPeer:
    def __init__(self, settings: Settings, *, schema: str, table: str, log: Path) -> None:
        self.state_dir = HOME / f"quix-state-{settings.consumer_group}"
        shutil.rmtree(self.state_dir, ignore_errors=True)
        db = conninfo_to_dict(settings.database_url.get_secret_value())
        env = {
            **os.environ,
            "PEER_BOOTSTRAP": settings.kafka_bootstrap,
            "PEER_KAFKA_USER": "worker",
            "PEER_KAFKA_PASSWORD": settings.kafka_password("worker").get_secret_value(),
            "PEER_TOPIC": settings.topic_name(HEATING.name),
            "PEER_GROUP": settings.consumer_group,
            "PEER_STATE_DIR": str(self.state_dir),
            "PEER_PG_HOST": str(db.get("host", "127.0.0.1")),
            "PEER_PG_PORT": str(db.get("port", 5432)),
            "PEER_PG_DBNAME": str(db["dbname"]),
            "PEER_PG_USER": str(db["user"]),
            "PEER_PG_PASSWORD": str(db.get("password", "")),
            "PEER_PG_SCHEMA": schema,
            "PEER_PG_TABLE": table,
        }
        self.log = log
        self.proc = pipeline.start_child([str(QUIX_PYTHON), str(APP)], log, env=env)

    def stop(self) -> None:
        pipeline.stop_child(self.proc, timeout_s=60)
        shutil.rmtree(self.state_dir, ignore_errors=True)

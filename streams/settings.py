"""The one settings class every CityStream process reads.

Environment variables carry the prefix ``CITYSTREAM_`` (``CITYSTREAM_KAFKA_BOOTSTRAP``,
``CITYSTREAM_DATABASE_URL``, ...). Values the local stack chose (free ports, generated
passwords) live in ``.stack/stack.env``; a variable set in the environment wins over that
file, and ``citystream stack up`` does not start a component whose address the user set.

Kafka identities: every client authenticates with SASL/SCRAM-SHA-512 as one of the
principals in :data:`PRINCIPALS` (the user name is the principal's name: ``heating``,
``worker``, ...), with the password in ``CITYSTREAM_KAFKA_<PRINCIPAL>_PASSWORD``. A process
is given only the passwords of the principals it acts as (a department's machine its own,
a worker the workers', an auditor the auditors'); the local stack's ``stack.env`` holds
them all, because on a developer's machine one person plays every part.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.errors import CityStreamError
from schemas.topics import DEPARTMENTS as FAMILY_DEPARTMENTS

ENV_PREFIX = "CITYSTREAM_"
STACK_DIR = Path(os.environ.get(f"{ENV_PREFIX}STACK_DIR", ".stack"))
STACK_ENV_FILE = STACK_DIR / "stack.env"

# Only ever valid against the throw-away local cluster; refused in production mode.
LOCAL_DATABASE_URL = "postgresql://citystream@127.0.0.1:5432/citystream"

# The department principals, one per event family (schemas/topics.py): each may write its
# own family's topic and nothing else (services.kafka.access).
DEPARTMENTS = FAMILY_DEPARTMENTS
# Every principal a CityStream process may authenticate as. ``admin`` creates topics, ACLs
# and users (a super user); ``worker`` runs the stream processor; ``auditor`` reads the
# topics and signs checkpoints. The broker's own principal (``broker``, local stack and
# compose) is no client's and has no setting here.
PRINCIPALS = ("admin", "worker", "auditor", *DEPARTMENTS)
SASL_MECHANISM = "SCRAM-SHA-512"


class MissingCredentials(CityStreamError):
    """This process holds no password for the principal it must act as."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=STACK_ENV_FILE,
        env_file_encoding="utf-8",
        # Kept, not refused: a department's password (CITYSTREAM_KAFKA_<DEPARTMENT>_PASSWORD)
        # is named after its family, and families are declared, not listed here.
        extra="allow",
    )

    mode: Literal["local", "production"] = "local"
    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: SecretStr = SecretStr(LOCAL_DATABASE_URL)
    # A superuser connection, used only by `citystream migrate` for what the application role
    # may not do (CREATE EXTENSION, the read-only role). Unset: migrate as the application role.
    admin_database_url: SecretStr | None = None
    # Password of the read-only role grafana_reader (Grafana's data source); `migrate` sets
    # it. Unset: the role exists but cannot log in.
    grafana_db_password: SecretStr | None = None
    # The read-only role the `audit` commands connect as (citystream_auditor): its URL, and
    # its password, which `migrate` sets. The audit commands refuse to run without the URL.
    audit_database_url: SecretStr | None = None
    audit_db_password: SecretStr | None = None
    # Schema the tables live in; tests give each test its own.
    db_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # Prepended to every topic name; tests give each test its own namespace.
    topic_namespace: str = Field(default="", pattern=r"^[a-z0-9_.-]{0,64}$")
    topic_partitions: int = Field(default=6, ge=1, le=1024)
    # 1 on the single local broker; 3 on a production cluster.
    topic_replication_factor: int = Field(default=1, ge=1, le=5)
    consumer_group: str = "citystream"
    # 8000: a backlog's batch shares the transaction's fixed round trips and the rollup's
    # rows among more events (a year's backlog touches a row per day and subdistrict,
    # ~2,300 for heating: 1,900 of them in a batch of 4,000, 2,240 in one of 8,000), so
    # PostgreSQL spends ~2.5 µs less per event than with 4000 (which drained ~12% faster
    # than 2000). A live stream's batches stay as small as what arrives within batch_wait_s.
    batch_size: int = Field(default=8000, ge=1, le=100_000)
    batch_wait_s: float = Field(default=0.25, gt=0, le=60)
    # A batch's record values, in bytes, beyond its first record: 8000 events are ~2.4 MB,
    # 8000 records of the broker's largest (refused as too large, but read first) 8 GB.
    batch_max_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024, le=1024 * 1024 * 1024)
    # How soon the group notices a killed worker and hands its partitions to the others.
    session_timeout_s: float = Field(default=10.0, ge=6, le=300)
    # Prometheus metrics of a worker; port 0 turns them off.
    metrics_address: str = "127.0.0.1"
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    worker_loglevel: Literal["debug", "info", "warning", "error"] = "warning"
    # Bounded retries before a producer call fails loudly instead of hanging.
    producer_timeout_s: float = Field(default=30.0, gt=0)
    # How every Kafka client connects: SASL over plain TCP (the local stack, on loopback) or
    # over TLS (compose, any network), always SCRAM-SHA-512.
    kafka_security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL"] = "SASL_PLAINTEXT"
    # SASL_SSL: the CA certificate (PEM) that signed the broker's; unset, the system's CAs.
    kafka_ssl_cafile: Path | None = None
    # One password per principal (user name = the principal's name); see PRINCIPALS. Each
    # department's, CITYSTREAM_KAFKA_<DEPARTMENT>_PASSWORD, is read by kafka_password().
    kafka_admin_password: SecretStr | None = None
    kafka_worker_password: SecretStr | None = None
    kafka_auditor_password: SecretStr | None = None

    @model_validator(mode="after")
    def _refuse_local_secrets_in_production(self) -> Settings:
        if self.mode == "production" and self.database_url.get_secret_value() == LOCAL_DATABASE_URL:
            raise ValueError(
                "CITYSTREAM_DATABASE_URL must be set in production mode "
                "(the built-in default only fits the local stack)"
            )
        return self

    def topic_name(self, base: str) -> str:
        return f"{self.topic_namespace}{base}"

    def kafka_password(self, principal: str) -> SecretStr:
        """The password of ``principal``; MissingCredentials names the variable to set."""
        if principal not in PRINCIPALS:
            raise ValueError(f"unknown Kafka principal {principal!r}; one of {PRINCIPALS}")
        name = f"kafka_{principal}_password"
        if name in type(self).model_fields:
            secret: SecretStr | None = getattr(self, name)
        else:
            # A department's: the environment wins over the stack file (or a model_copy's
            # update), as for declared settings; both arrive as an extra.
            raw = os.environ.get(password_variable(principal)) or (self.model_extra or {}).get(name)
            secret = raw if isinstance(raw, SecretStr) or raw is None else SecretStr(str(raw))
        if secret is None or not secret.get_secret_value():
            raise MissingCredentials(
                f"no Kafka credentials for principal {principal!r}: set "
                f"{password_variable(principal)} (the local stack writes every principal's "
                "password to .stack/stack.env on `citystream stack up`)"
            )
        return secret

    def has_kafka_credentials(self, principal: str) -> bool:
        try:
            self.kafka_password(principal)
        except MissingCredentials:
            return False
        return True

    def kafka_client_options(self, principal: str) -> dict[str, Any]:
        """Connection options for a Kafka client acting as ``principal``: the keyword names
        kafka-python and aiokafka share (security_protocol, sasl_mechanism,
        sasl_plain_username, sasl_plain_password, ssl_cafile)."""
        options: dict[str, Any] = {
            "security_protocol": self.kafka_security_protocol,
            "sasl_mechanism": SASL_MECHANISM,
            "sasl_plain_username": principal,
            "sasl_plain_password": self.kafka_password(principal).get_secret_value(),
        }
        if self.kafka_security_protocol == "SASL_SSL" and self.kafka_ssl_cafile is not None:
            options["ssl_cafile"] = str(self.kafka_ssl_cafile)
        return options


def password_variable(principal: str) -> str:
    """``CITYSTREAM_KAFKA_HEATING_PASSWORD`` for ``heating``."""
    return f"{ENV_PREFIX}KAFKA_{principal.upper()}_PASSWORD"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def user_overrides() -> set[str]:
    """Which connection settings the user set in the environment (not the stack file)."""
    return {
        name
        for name in ("kafka_bootstrap", "database_url")
        if f"{ENV_PREFIX}{name.upper()}" in os.environ
    }


def child_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process (a worker the demo or a test starts) read
    exactly ``settings``: this process's environment, every setting as its variable."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env

"""The one settings class every CityStream process reads.

Environment variables carry the prefix ``CITYSTREAM_`` (``CITYSTREAM_KAFKA_BOOTSTRAP``,
``CITYSTREAM_DATABASE_URL``, ...). Values the local stack chose (free ports, generated
passwords) live in ``.stack/stack.env``; a variable set in the environment wins over that
file, and ``citystream stack up`` does not start a component whose address the user set.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CITYSTREAM_"
STACK_DIR = Path(os.environ.get(f"{ENV_PREFIX}STACK_DIR", ".stack"))
STACK_ENV_FILE = STACK_DIR / "stack.env"

# Only ever valid against the throw-away local cluster; refused in production mode.
LOCAL_DATABASE_URL = "postgresql://citystream@127.0.0.1:5432/citystream"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=STACK_ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
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
    batch_size: int = Field(default=2000, ge=1, le=100_000)
    batch_wait_s: float = Field(default=0.25, gt=0, le=60)
    # How soon the group notices a killed worker and hands its partitions to the others.
    session_timeout_s: float = Field(default=10.0, ge=6, le=300)
    # Prometheus metrics of a worker; port 0 turns them off.
    metrics_address: str = "127.0.0.1"
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    worker_loglevel: Literal["debug", "info", "warning", "error"] = "warning"
    # Bounded retries before a producer call fails loudly instead of hanging.
    producer_timeout_s: float = Field(default=30.0, gt=0)

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

"""Settings: one class, one prefix, secrets kept secret, production refuses local defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.db.migrate import available
from streams.settings import Settings


def test_env_prefix_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYSTREAM_KAFKA_BOOTSTRAP", "broker:9092")
    monkeypatch.setenv("CITYSTREAM_DATABASE_URL", "postgresql://u:hunter2@db/x")
    settings = Settings()
    assert settings.kafka_bootstrap == "broker:9092"
    assert "hunter2" not in repr(settings)


def test_production_refuses_the_local_default_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CITYSTREAM_DATABASE_URL", raising=False)
    with pytest.raises(ValidationError, match="CITYSTREAM_DATABASE_URL must be set"):
        Settings(mode="production", _env_file=None)  # type: ignore[call-arg]


def test_schema_and_namespace_are_restricted_to_safe_names() -> None:
    with pytest.raises(ValidationError):
        Settings(db_schema="x; DROP TABLE events")
    with pytest.raises(ValidationError):
        Settings(topic_namespace="../")


def test_migrations_are_numbered_uniquely_and_in_order() -> None:
    versions = [m.version for m in available()]
    assert versions == sorted(set(versions))
    assert versions[0] == 1


def test_kafka_identities_are_secret_and_named_when_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streams.settings import PRINCIPALS, MissingCredentials

    for principal in PRINCIPALS:
        monkeypatch.delenv(f"CITYSTREAM_KAFKA_{principal.upper()}_PASSWORD", raising=False)
    monkeypatch.setenv("CITYSTREAM_KAFKA_HEATING_PASSWORD", "s3cret-heating-pw")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert "s3cret" not in repr(settings)
    options = settings.kafka_client_options("heating")
    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "heating",
        "sasl_plain_password": "s3cret-heating-pw",
    }
    with pytest.raises(MissingCredentials, match="CITYSTREAM_KAFKA_HOUSING_PASSWORD"):
        settings.kafka_client_options("housing")
    assert not settings.has_kafka_credentials("worker")


def test_departments_are_the_topics_writers() -> None:
    from schemas.topics import ALL
    from streams.settings import DEPARTMENTS

    assert sorted(DEPARTMENTS) == sorted(d for spec in ALL for d in spec.departments)

"""Checks of the production deployment that need no Docker engine (none runs on our machines).

Reads ``docker-compose.yml``, ``.env.example``, ``deploy/docker/Dockerfile``,
``deploy/timescaledb/initdb/``, ``deploy/grafana/provisioning/`` and the TimescaleDB version
``deploy/local/install-timescaledb.sh`` builds; validates the compose
file against ``../shared/reference/compose/compose-spec.json``. Opens no socket.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from jsonschema.validators import validator_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "deploy/docker/Dockerfile"
INIT_SCRIPT = ROOT / "deploy/timescaledb/initdb/10-citystream.sh"
PROVISIONING = ROOT / "deploy/grafana/provisioning"
REFERENCE = ROOT.parent / "shared/reference/compose"
COMPOSE_SPEC = REFERENCE / "compose-spec.json"

# `${VAR}`, `${VAR:-default}`, `${VAR:?error}`...; `$${...}` is compose's escape for a literal $.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
# A value that compose refuses to start without, instead of falling back to a default.
REQUIRED_VARIABLE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}$")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)
URL_PASSWORD = re.compile(r"://[^:/@\s]+:(?P<password>.+)@")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever of the two compose forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return dict(deps)


def bind_sources(service: dict[str, Any]) -> list[str]:
    """Host paths of the service's bind mounts (short and long syntax); named volumes excluded."""
    sources = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/", "~")):
                sources.append(source)
        elif volume.get("type") == "bind":
            sources.append(volume["source"])
    return sources


def env_example_names() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


# --- the Compose specification ----------------------------------------------------------------


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    if not COMPOSE_SPEC.is_file():
        pytest.skip(f"{REFERENCE} is absent (CI always has ../shared/reference)")
    schema = json.loads(COMPOSE_SPEC.read_text(encoding="utf-8"))
    # The spec spells draft-07 as "https://json-schema.org/draft-07/schema", which jsonschema's
    # table of meta-schemas (keyed "http://...#") does not know; normalise before the look-up.
    declared = str(schema.get("$schema", ""))
    canonical = declared.replace("https://", "http://").rstrip("#") + "#"
    cls = validator_for({"$schema": canonical}, default=Draft7Validator)
    cls.check_schema(schema)
    errors = sorted(cls(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


# --- references inside the compose file ---------------------------------------------------------


def test_every_dependency_is_a_service(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency in depends_on(service):
            assert dependency in services, f"{name} depends on unknown service {dependency!r}"


def test_every_healthy_dependency_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, options in depends_on(service).items():
            if options.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], (
                    f"{name} waits for {dependency} to be healthy, which has no healthcheck"
                )


def test_infrastructure_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("kafka", "timescaledb", "grafana"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_every_bind_mounted_host_path_exists(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for source in bind_sources(service):
            assert source.startswith("./"), f"{name} mounts {source!r} from outside the repository"
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_every_named_volume_is_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if isinstance(volume, str):
                source = volume.split(":", 1)[0]
            elif volume.get("type") == "volume":
                source = volume["source"]
            else:
                continue
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} uses undeclared named volume {source!r}"


def test_every_build_context_and_dockerfile_exists(services: dict[str, dict[str, Any]]) -> None:
    built = {name: service["build"] for name, service in services.items() if "build" in service}
    assert built, "no service builds the CityStream image"
    for name, build in built.items():
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        assert context.is_dir(), f"{name}: build context {context} does not exist"
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert (context / dockerfile).is_file(), f"{name}: {dockerfile} not found in {context}"


def test_init_script_is_mounted_beside_the_image_scripts(services: dict[str, Any]) -> None:
    # Mounting over the whole folder would hide the timescaledb image's own init scripts.
    targets = [
        volume.split(":")[1]
        for volume in services["timescaledb"]["volumes"]
        if isinstance(volume, str) and volume.count(":") >= 1
    ]
    assert "/docker-entrypoint-initdb.d" not in [t.rstrip("/") for t in targets]
    assert f"/docker-entrypoint-initdb.d/{INIT_SCRIPT.name}" in targets


def test_init_script_is_executable_bash() -> None:
    # Not executable, the postgres entrypoint would source it into its own shell instead.
    assert os.access(INIT_SCRIPT, os.X_OK), f"chmod +x {INIT_SCRIPT.relative_to(ROOT)}"
    bash = shutil.which("bash")
    assert bash is not None, "bash is needed to check the init script's syntax"
    subprocess.run([bash, "-n", str(INIT_SCRIPT)], check=True)


# --- the application's services ------------------------------------------------------------------


def test_workers_start_only_after_a_successful_migration(services: dict[str, Any]) -> None:
    assert depends_on(services["worker"])["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    migrate_deps = depends_on(services["migrate"])
    for needed in ("kafka", "timescaledb"):
        assert migrate_deps[needed]["condition"] == "service_healthy"
    assert "citystream migrate" in str(services["migrate"].get("entrypoint"))
    assert "citystream topics" in str(services["migrate"].get("entrypoint"))


def test_worker_can_be_scaled(services: dict[str, Any]) -> None:
    worker = services["worker"]
    # A fixed name or host port lets only one replica start.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker.get("command") == ["worker"]


def test_app_services_run_in_production_mode_on_the_compose_network(
    services: dict[str, Any],
) -> None:
    for name in ("migrate", "worker"):
        env = environment(services[name])
        assert env["CITYSTREAM_MODE"] == "production", name
        assert env["CITYSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092", name
        assert "@timescaledb:5432/citystream" in env["CITYSTREAM_DATABASE_URL"], name


def test_superuser_url_stays_with_the_migrate_step(services: dict[str, Any]) -> None:
    assert "CITYSTREAM_ADMIN_DATABASE_URL" in environment(services["migrate"])
    assert "CITYSTREAM_ADMIN_DATABASE_URL" not in environment(services["worker"])


def test_dockerfile_copies_every_python_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*").rstrip(".") for p in patterns}
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    copied = {
        source.rstrip("/")
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
        if not source.startswith("--")
    }
    for source in copied:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
    # An empty package folder is not in git, so it cannot be copied yet; one with code must be.
    with_code = {p for p in packages if any((ROOT / p).glob("*.py"))}
    assert with_code <= copied, f"add COPY lines to {DOCKERFILE.name} for {with_code - copied}"


# --- images ---------------------------------------------------------------------------------------


def test_images_are_the_pinned_ones(services: dict[str, Any]) -> None:
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert re.fullmatch(r"grafana/grafana-oss:11\.6\.\d+", services["grafana"]["image"])
    assert re.fullmatch(
        r"timescale/timescaledb:\d+\.\d+\.\d+-pg16", services["timescaledb"]["image"]
    )


def test_compose_runs_the_timescaledb_line_the_tests_run(services: dict[str, Any]) -> None:
    # The local stack (and so every test) runs the version the install script builds.
    script = (ROOT / "deploy/local/install-timescaledb.sh").read_text(encoding="utf-8")
    built = re.search(r"^VERSION=(\d+)\.(\d+)\.\d+$", script, re.MULTILINE)
    assert built, "deploy/local/install-timescaledb.sh names no VERSION=X.Y.Z"
    image = re.fullmatch(
        r"timescale/timescaledb:(\d+)\.(\d+)\.\d+-pg\d+", services["timescaledb"]["image"]
    )
    assert image, services["timescaledb"]["image"]
    assert image.groups() == built.groups(), (
        f"compose runs TimescaleDB {'.'.join(image.groups())}.x, the tests "
        f"{'.'.join(built.groups())}.x"
    )


def test_pulled_images_carry_an_exact_tag(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        _, _, tag = image.rpartition(":")
        assert tag and "/" not in tag and tag != "latest", f"{name}: pin an exact tag, not {image}"


# --- secrets --------------------------------------------------------------------------------------


def test_no_literal_secret_in_any_environment(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_KEY.search(key):
                assert REQUIRED_VARIABLE.match(value), (
                    f"{name}.{key} must be a required variable such as ${{{key}:?...}}, "
                    f"not {value!r}"
                )
            url = URL_PASSWORD.search(value)
            if url:
                assert REQUIRED_VARIABLE.match(url.group("password")), (
                    f"{name}.{key}: the password in the URL must be a required variable"
                )


def test_every_variable_is_listed_in_env_example() -> None:
    used = {match.group(1) for match in INTERPOLATION.finditer(COMPOSE_FILE.read_text("utf-8"))}
    listed = env_example_names()
    assert used <= listed, f"add to .env.example: {sorted(used - listed)}"
    assert listed <= used, f".env.example lists variables compose never uses: {listed - used}"


def test_env_example_holds_only_placeholders() -> None:
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#") and SECRET_KEY.search(name):
            assert value == "change-me", f"{name}: .env.example is committed, keep a placeholder"


def test_env_file_is_ignored_by_git() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored


# --- Grafana provisioning -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def datasources() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((PROVISIONING / "datasources/citystream.yaml").read_text("utf-8"))
    found: list[dict[str, Any]] = loaded["datasources"]
    return found


def test_datasource_is_the_citystream_postgres(
    datasources: list[dict[str, Any]], services: dict[str, Any]
) -> None:
    (source,) = datasources
    assert source["uid"] == "citystream-pg"
    assert source["type"] == "grafana-postgresql-datasource"
    assert source["user"] == "grafana_reader"
    assert source["jsonData"]["database"] == "citystream"
    assert source["jsonData"]["timescaledb"] is True
    host, _, port = source["url"].partition(":")
    assert host in services and port == "5432"


def test_datasource_password_comes_from_grafanas_environment(
    datasources: list[dict[str, Any]], services: dict[str, Any]
) -> None:
    (source,) = datasources
    password = source["secureJsonData"]["password"]
    match = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", password)
    assert match, f"the data source password must reference an environment variable: {password!r}"
    assert REQUIRED_VARIABLE.match(environment(services["grafana"]).get(match.group(1), ""))


def test_dashboard_provider_reads_the_mounted_folder(services: dict[str, Any]) -> None:
    loaded = yaml.safe_load((PROVISIONING / "dashboards/citystream.yaml").read_text("utf-8"))
    (provider,) = loaded["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "民生实事 · CityStream"
    targets = {
        volume.split(":")[1] for volume in services["grafana"]["volumes"] if isinstance(volume, str)
    }
    assert provider["options"]["path"] in targets
    assert "/etc/grafana/provisioning" in targets


def test_grafana_mounts_exactly_the_provisioning_and_the_dashboards(
    services: dict[str, Any],
) -> None:
    mounts = {
        tuple(volume.split(":")[:2])
        for volume in services["grafana"]["volumes"]
        if isinstance(volume, str) and volume.startswith("./")
    }
    assert mounts == {
        ("./deploy/grafana/provisioning", "/etc/grafana/provisioning"),
        ("./deploy/grafana/dashboards", "/var/lib/grafana/dashboards"),
    }
    for volume in services["grafana"]["volumes"]:
        if isinstance(volume, str) and volume.startswith("./"):
            assert volume.endswith(":ro"), f"Grafana must not write {volume}"


def test_every_provisioning_kind_has_a_file_grafana_reads() -> None:
    for kind in ("datasources", "dashboards", "alerting"):
        files = sorted((PROVISIONING / kind).glob("*.yaml"))
        assert files, f"nothing for Grafana to provision in {kind}/"
        for path in files:
            assert yaml.safe_load(path.read_text("utf-8"))["apiVersion"] == 1, path
    dashboards = ROOT / "deploy/grafana/dashboards"
    assert sorted(dashboards.glob("*.json")), "no dashboard JSON in the mounted folder"


def test_alert_rules_live_in_the_dashboards_folder() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards/citystream.yaml").read_text("utf-8"))
    rules = yaml.safe_load((PROVISIONING / "alerting/citystream.yaml").read_text("utf-8"))
    folders = {group["folder"] for group in rules["groups"]}
    assert folders == {provider["providers"][0]["folder"]}


def test_migrate_sets_the_read_only_roles_password(services: dict[str, Any]) -> None:
    from streams.settings import Settings

    # The variable compose passes is the one the settings read (prefix CITYSTREAM_).
    assert "grafana_db_password" in Settings.model_fields
    env = environment(services["migrate"])
    assert REQUIRED_VARIABLE.match(env["CITYSTREAM_GRAFANA_DB_PASSWORD"])
    assert "CITYSTREAM_GRAFANA_DB_PASSWORD" not in environment(services["worker"])


# --- Kafka security -------------------------------------------------------------------------------

KAFKA_START = ROOT / "deploy/kafka/start.sh"


def _kafka_password_variables() -> set[str]:
    from streams.settings import PRINCIPALS, password_variable

    return {password_variable(p) for p in PRINCIPALS}


def test_every_kafka_principal_needs_its_password_from_env(services: dict[str, Any]) -> None:
    """Compose refuses to start without any principal's password: the migrate step (as the
    admin) sets them all; the broker formats its storage with its own and the admin's."""
    migrate = environment(services["migrate"])
    for variable in _kafka_password_variables():
        assert REQUIRED_VARIABLE.match(migrate.get(variable, "")), f"migrate lacks {variable}"
    kafka = environment(services["kafka"])
    for variable in ("CITYSTREAM_KAFKA_BROKER_PASSWORD", "CITYSTREAM_KAFKA_ADMIN_PASSWORD"):
        assert REQUIRED_VARIABLE.match(kafka.get(variable, "")), f"kafka lacks {variable}"
    # A secret named KAFKA_* would become a server property in the image's own launcher.
    assert not [key for key in kafka if key.startswith("KAFKA_")]


def test_a_worker_holds_only_the_workers_kafka_password(services: dict[str, Any]) -> None:
    worker = environment(services["worker"])
    held = {key for key in worker if key.startswith("CITYSTREAM_KAFKA_") and "PASSWORD" in key}
    assert held == {"CITYSTREAM_KAFKA_WORKER_PASSWORD"}


def test_clients_speak_sasl_over_tls_and_never_see_the_brokers_key(
    services: dict[str, Any],
) -> None:
    for name in ("migrate", "worker"):
        env = environment(services[name])
        assert env["CITYSTREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        cafile = env["CITYSTREAM_KAFKA_SSL_CAFILE"]
        mounts = [v for v in services[name].get("volumes", []) if isinstance(v, str)]
        assert any(cafile.startswith(v.split(":")[1]) for v in mounts), name
        assert not any("tls/broker" in v for v in mounts), f"{name} mounts the broker's key"
    assert any("tls/broker" in v for v in services["kafka"]["volumes"] if isinstance(v, str))


def test_the_broker_start_script_enforces_authentication() -> None:
    bash = shutil.which("bash")
    assert bash is not None
    subprocess.run([bash, "-n", str(KAFKA_START)], check=True)
    script = KAFKA_START.read_text(encoding="utf-8")
    for line in (
        "listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:SASL_PLAINTEXT,"
        "CONTROLLER:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "sasl.mechanism.controller.protocol=SCRAM-SHA-512",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        "super.users=User:broker;User:admin",
        "auto.create.topics.enable=false",
    ):
        assert line in script, line
    # Loopback only: nobody outside the container reaches the controller or internal port.
    assert "CONTROLLER://127.0.0.1:9093" in script
    assert "INTERNAL://127.0.0.1:9094" in script
    assert "--add-scram" in script


def test_the_local_broker_enforces_the_same(services: dict[str, Any]) -> None:
    template = (ROOT / "deploy/local/server.properties.template").read_text(encoding="utf-8")
    for line in (
        "listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "allow.everyone.if.no.acl.found=false",
        "super.users=User:broker;User:admin",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    ):
        assert line in template, line


def test_tls_material_is_never_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "deploy/kafka/tls"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tracked, "deploy/kafka/tls must exist in git (compose mounts its folders)"
    assert all(Path(path).name in (".gitignore", "README.md") for path in tracked), tracked

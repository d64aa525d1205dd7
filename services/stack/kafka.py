"""Apache Kafka 3.9.1 for the local stack, assembled from Maven Central.

Jars: ``mvn dependency:copy-dependencies`` on ``deploy/local/pom.xml`` into
``.stack/kafka/libs`` (once; Maven's own cache makes a re-fetch cheap). Storage is formatted
once; the broker runs as a single KRaft node on 127.0.0.1 with the ports kept in
``.stack/kafka/ports.json`` so its address stays the same between runs.

Security (README > Security): SASL/SCRAM-SHA-512 on both listeners, ACLs enforced. The
users — the broker's own ``broker``, ``admin`` and every principal of
``streams.settings.PRINCIPALS`` — get generated passwords in ``.stack/stack.env``; they are
written into the storage when it is formatted (``--add-scram``), before the broker's first
start, because in KRaft nobody could log in to create the first one. A principal added
later is created over the admin connection (``services.kafka.acls.set_passwords``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from string import Template

import orjson
from pydantic import SecretStr

from services.stack.state import Component, StackError, free_port, port_is_free, read_env
from streams.settings import PRINCIPALS, STACK_DIR, Settings, password_variable

ROOT = Path(__file__).resolve().parents[2]
POM = ROOT / "deploy" / "local" / "pom.xml"
TEMPLATE = ROOT / "deploy" / "local" / "server.properties.template"
LOG4J = ROOT / "deploy" / "local" / "log4j.properties"

HOME = STACK_DIR / "kafka"
LIBS = HOME / "libs"
DATA = HOME / "data"
PORTS = HOME / "ports.json"
LOG = HOME / "broker.log"
# Which users the storage was formatted with, and a digest of the broker's own password,
# which only the format step can set: storage formatted otherwise (before authentication,
# or for a password stack.env no longer holds) is formatted again — the local broker's data
# is throw-away. (The admin's may change later: `citystream access rotate admin`.)
SCRAM_MARKER = HOME / "scram.json"
MAIN_CLASS = "kafka.Kafka"
BROKER_PASSWORD = "CITYSTREAM_KAFKA_BROKER_PASSWORD"  # noqa: S105 - a variable's name
# Every user of the local broker: its own identity, then every client principal.
USERS = ("broker", *PRINCIPALS)


def user_variable(user: str) -> str:
    return BROKER_PASSWORD if user == "broker" else password_variable(user)


def passwords() -> tuple[dict[str, str], dict[str, str]]:
    """(user → password for every user, the stack.env lines to add): the passwords
    ``stack.env`` holds, and new ones generated for users it lacks."""
    current = read_env()
    found: dict[str, str] = {}
    new: dict[str, str] = {}
    for user in USERS:
        variable = user_variable(user)
        value = current.get(variable)
        if not value:
            # URL- and shell-safe characters only: it is pasted into a JAAS line.
            value = new[variable] = secrets.token_urlsafe(24)
        found[user] = value
    return found, new


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise StackError(
            f"'{tool}' not found: install Debian's '{package}' package (apt-get install {package})"
        )
    return path


def ensure_jars() -> None:
    marker = LIBS / ".complete"
    if marker.exists():
        return
    mvn = _require("mvn", "maven")
    LIBS.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={LIBS.resolve()}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        raise StackError(
            f"Maven could not fetch the Kafka jars:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    marker.write_text("kafka_2.13 3.9.1\n")


def _java(*args: str, heap: tuple[str, ...] = ()) -> list[str]:
    java = _require("java", "default-jre-headless")
    return [java, *heap, f"-Dlog4j.configuration=file:{LOG4J}", "-cp", f"{LIBS.resolve()}/*", *args]


def _ports() -> tuple[int, int]:
    """The broker and controller ports: the remembered ones while they are free."""
    if PORTS.exists():
        saved = orjson.loads(PORTS.read_bytes())
        broker, controller = int(saved["broker"]), int(saved["controller"])
        if port_is_free(broker) and port_is_free(controller):
            return broker, controller
        # Someone else took a port: a fresh broker on new ports (the data is throw-away).
        shutil.rmtree(DATA, ignore_errors=True)
    broker, controller = free_port(), free_port()
    while controller == broker:
        controller = free_port()
    HOME.mkdir(parents=True, exist_ok=True)
    PORTS.write_bytes(orjson.dumps({"broker": broker, "controller": controller}))
    return broker, controller


def _formatted_with(users: Mapping[str, str]) -> str:
    digest = hashlib.sha256(users["broker"].encode()).hexdigest()
    return orjson.dumps({"users": sorted(users), "broker_password_sha256": digest}).decode()


def _format(properties: Path, users: Mapping[str, str]) -> list[str]:
    """Format the storage with every user's SCRAM credentials, unless it already is (for the
    broker's current password); returns the users the storage lacks (added after it was
    formatted), for ``set_passwords`` once the broker runs."""
    marker = _formatted_with(users)
    if (DATA / "meta.properties").exists():
        if SCRAM_MARKER.exists():
            recorded = orjson.loads(SCRAM_MARKER.read_bytes())
            if orjson.loads(marker)["broker_password_sha256"] == recorded.get(
                "broker_password_sha256"
            ):
                return [user for user in users if user not in recorded.get("users", [])]
        # Formatted before authentication, or for passwords stack.env no longer holds.
        shutil.rmtree(DATA, ignore_errors=True)
    cluster_id = (
        subprocess.run(  # noqa: S603 - fixed argv
            _java("kafka.tools.StorageTool", "random-uuid"),
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    # StorageTool takes the credentials only as arguments: they show in this machine's process
    # list for the second the format takes (a developer's machine; compose formats inside
    # its container).
    scram = []
    for user, password in sorted(users.items()):
        scram += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
    result = subprocess.run(  # noqa: S603 - fixed argv
        _java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties), *scram),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"formatting Kafka's storage failed:\n{result.stdout}{result.stderr}")
    _write_private(SCRAM_MARKER, marker)
    return []


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by this user only: it holds or derives from passwords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)


def client_settings(address: str, users: Mapping[str, str]) -> Settings:
    """Settings for talking to the local broker at ``address`` as any of ``users``."""
    fields = {
        f"kafka_{user}_password": SecretStr(password)
        for user, password in users.items()
        if user != "broker"
    }
    base = Settings(_env_file=None, kafka_bootstrap=address)  # type: ignore[call-arg]
    return base.model_copy(update=fields)


def start(users: Mapping[str, str]) -> Component:
    """Fetch, format and start the broker with these users (name → password); return once
    the admin can log in and ask for metadata."""
    # The module that speaks Kafka.
    from services.kafka.acls import set_passwords
    from services.kafka.client import KafkaAuthenticationError, wait_for_broker

    ensure_jars()
    broker_port, controller_port = _ports()
    properties = HOME / "server.properties"
    _write_private(
        properties,
        Template(TEMPLATE.read_text()).substitute(
            broker_port=broker_port,
            controller_port=controller_port,
            log_dirs=DATA.resolve(),
            broker_password=users["broker"],
        ),
    )
    added = _format(properties, users)
    log = LOG.open("ab")
    launched = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        _java(MAIN_CLASS, str(properties.resolve()), heap=("-Xms256m", "-Xmx1g")),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"127.0.0.1:{broker_port}"
    component = Component(
        name="kafka",
        address=address,
        pid=proc.pid,
        cmdline_marker=str(properties.resolve()),
        log=str(LOG),
    )
    settings = client_settings(address, users)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise StackError(f"the Kafka broker exited with code {proc.returncode}; see {LOG}")
        try:
            wait_for_broker(settings, principal="admin", timeout_s=2.0)
            ready = component.model_copy(update={"ready_in_s": time.monotonic() - launched})
            break
        except KafkaAuthenticationError as exc:
            raise StackError(
                f"the local broker refused the admin: {exc}. Its storage was formatted for "
                f"another admin password than stack.env holds: stop the stack and delete "
                f"{DATA} to start afresh"
            ) from exc
        except TimeoutError:
            if time.monotonic() > deadline:
                raise StackError(
                    f"the Kafka broker did not answer within 90 s; see {LOG}"
                ) from None
            time.sleep(0.3)
    if added:
        set_passwords(settings, {user: users[user] for user in added})
        recorded = orjson.loads(_formatted_with(users))
        _write_private(SCRAM_MARKER, orjson.dumps(recorded).decode())
    return ready

"""Apache Kafka 3.9.1 for the local stack, assembled from Maven Central.

Jars: ``mvn dependency:copy-dependencies`` on ``deploy/local/pom.xml`` into
``.stack/kafka/libs`` (once; Maven's own cache makes a re-fetch cheap). Storage is formatted
once; the broker runs as a single KRaft node on 127.0.0.1 with the ports kept in
``.stack/kafka/ports.json`` so its address stays the same between runs.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from string import Template

import orjson

from services.settings import STACK_DIR
from services.stack.state import Component, StackError, free_port, port_is_free

ROOT = Path(__file__).resolve().parents[2]
POM = ROOT / "deploy" / "local" / "pom.xml"
TEMPLATE = ROOT / "deploy" / "local" / "server.properties.template"
LOG4J = ROOT / "deploy" / "local" / "log4j.properties"

HOME = STACK_DIR / "kafka"
LIBS = HOME / "libs"
DATA = HOME / "data"
PORTS = HOME / "ports.json"
LOG = HOME / "broker.log"
MAIN_CLASS = "kafka.Kafka"


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


def _format(properties: Path) -> None:
    if (DATA / "meta.properties").exists():
        return
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
    subprocess.run(  # noqa: S603 - fixed argv
        _java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)),
        capture_output=True,
        text=True,
        check=True,
    )


def start() -> Component:
    """Fetch, format and start the broker; return once it answers a metadata request."""
    from services.producer import wait_for_broker  # the one module that speaks Kafka

    ensure_jars()
    broker_port, controller_port = _ports()
    properties = HOME / "server.properties"
    properties.write_text(
        Template(TEMPLATE.read_text()).substitute(
            broker_port=broker_port, controller_port=controller_port, log_dirs=DATA.resolve()
        )
    )
    _format(properties)
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
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise StackError(f"the Kafka broker exited with code {proc.returncode}; see {LOG}")
        try:
            wait_for_broker(address, timeout_s=2.0)
            return component.model_copy(update={"ready_in_s": time.monotonic() - launched})
        except TimeoutError:
            if time.monotonic() > deadline:
                raise StackError(
                    f"the Kafka broker did not answer within 90 s; see {LOG}"
                ) from None
            time.sleep(0.3)

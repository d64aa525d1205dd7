"""Throw-away PostgreSQL clusters for the local stack.

Each cluster: ``initdb`` in ``.stack/<folder>/data`` (see ``_cluster_home``) as the
``postgres`` user (PostgreSQL refuses to run as root), listening on 127.0.0.1 and a free
port, no Unix socket. The superuser and the application role ``citystream`` get generated
passwords, written to ``.stack/stack.env``.

``MAIN`` (``.stack/pg``) preloads TimescaleDB whenever the server has it installed: the
production engine. ``PLAIN`` (``.stack/pg-plain``, started only when TimescaleDB is
installed) never preloads it, so the tests can run on plain PostgreSQL as well; its URLs
are ``CITYSTREAM_PLAIN_DATABASE_URL`` and ``CITYSTREAM_PLAIN_ADMIN_DATABASE_URL``. The
preload is a server option given at each start, not a line in ``postgresql.conf``, so a
cluster made before TimescaleDB was installed gets it on its next start.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from services.stack import timescale
from services.stack.state import Component, StackError, free_port, port_is_free
from streams.db.roles import AUDITOR_ROLE
from streams.db.timescale import facts
from streams.settings import STACK_DIR


def _cluster_home(name: str) -> Path:
    """``.stack/<name>``, unless the server's user could not reach it.

    As root the server runs as ``postgres``, which must be able to enter every folder above
    its data directory; a checkout inside a private folder (``mktemp -d`` makes them 0700)
    gets its cluster under the system temp folder instead, named after the checkout.
    """
    preferred = STACK_DIR / name
    if os.geteuid() != 0:
        return preferred
    here = STACK_DIR.resolve()
    for folder in (here, *here.parents):
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            digest = hashlib.sha256(str(here).encode()).hexdigest()[:12]
            return Path(tempfile.gettempdir()) / f"citystream-{name}-{digest}"
    return preferred


@dataclass(frozen=True)
class Cluster:
    # The component's name in state.json and `stack status`.
    name: str
    home: Path
    # Its URLs in stack.env: <prefix>DATABASE_URL and <prefix>ADMIN_DATABASE_URL.
    env_prefix: str

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def conf(self) -> Path:
        return self.home / "cluster.json"

    @property
    def log(self) -> Path:
        return self.home / "postgres.log"


MAIN = Cluster("postgres", _cluster_home("pg"), "CITYSTREAM_")
PLAIN = Cluster("postgres-plain", _cluster_home("pg-plain"), "CITYSTREAM_PLAIN_")
CLUSTERS = {cluster.name: cluster for cluster in (MAIN, PLAIN)}
APP_ROLE = "citystream"
APP_DB = "citystream"


def bindir() -> Path:
    """The newest installed server's binaries (Debian keeps them off PATH)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise StackError(
        "PostgreSQL server not found: install Debian's 'postgresql' package "
        "(apt-get install postgresql)"
    )


def _as_owner() -> dict[str, Any]:
    """Run server binaries as 'postgres' when we are root; as ourselves otherwise."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise StackError(
            "running as root but there is no 'postgres' user: apt-get install postgresql"
        ) from None
    return {"user": "postgres", "group": "postgres"}


def _owner_ids() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _cluster(cluster: Cluster) -> dict[str, Any]:
    """Create the cluster once: superuser password, port; return its record."""
    if cluster.conf.exists() and (cluster.data / "PG_VERSION").exists():
        conf: dict[str, Any] = orjson.loads(cluster.conf.read_bytes())
        changed = "auditor_password" not in conf  # a cluster made before the auditor role
        conf.setdefault("auditor_password", secrets.token_urlsafe(24))
        if not port_is_free(int(conf["port"])):
            conf["port"] = free_port()
            changed = True
        if changed:
            cluster.conf.write_bytes(orjson.dumps(conf))
        return conf
    shutil.rmtree(cluster.data, ignore_errors=True)
    cluster.home.mkdir(parents=True, exist_ok=True)
    conf = {
        "port": free_port(),
        "superuser_password": secrets.token_urlsafe(24),
        "app_password": secrets.token_urlsafe(24),
        # The read-only role of the audit commands; `citystream migrate` creates it and
        # sets this password (CITYSTREAM_AUDIT_DB_PASSWORD).
        "auditor_password": secrets.token_urlsafe(24),
    }
    pwfile = cluster.home / "pwfile"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(conf["superuser_password"] + "\n")
    cluster.data.mkdir(mode=0o700)
    ids = _owner_ids()
    if ids is not None:
        for path in (cluster.home, cluster.data, pwfile):
            os.chown(path, *ids)
    result = subprocess.run(  # noqa: S603 - fixed argv
        [
            str(bindir() / "initdb"),
            "-D",
            str(cluster.data.resolve()),
            "-U",
            "postgres",
            f"--pwfile={pwfile.resolve()}",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ],
        capture_output=True,
        text=True,
        check=False,
        **_as_owner(),
    )
    pwfile.unlink()
    if result.returncode != 0:
        raise StackError(f"initdb failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
    fd = os.open(cluster.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps(conf))
    return conf


def _postmaster_pid(cluster: Cluster) -> int | None:
    try:
        return int((cluster.data / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _superuser(conf: dict[str, Any], dbname: str = "postgres") -> str:
    return psycopg.conninfo.make_conninfo(
        host="127.0.0.1",
        port=int(conf["port"]),
        user="postgres",
        password=conf["superuser_password"],
        dbname=dbname,
        connect_timeout=10,
    )


def start(cluster: Cluster, *, timescaledb: bool) -> tuple[Component, dict[str, str]]:
    """Start the cluster, preloading TimescaleDB or not; return it and the settings the
    application needs to reach it (under the cluster's variable names)."""
    conf = _cluster(cluster)
    port = int(conf["port"])
    ids = _owner_ids()
    if ids is not None:
        cluster.log.touch()
        os.chown(cluster.log, *ids)
    launched = time.monotonic()
    options = [
        "-c",
        "listen_addresses=127.0.0.1",
        "-p",
        str(port),
        "-c",
        "unix_socket_directories=''",
    ]
    if timescaledb:
        options += timescale.preload_options()
    result = subprocess.run(  # noqa: S603 - fixed argv
        [
            str(bindir() / "pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(cluster.data.resolve()),
            "-l",
            str(cluster.log.resolve()),
            "-o",
            " ".join(options),
        ],
        capture_output=True,
        text=True,
        check=False,
        **_as_owner(),
    )
    if result.returncode != 0:
        raise StackError(f"PostgreSQL did not start: {result.stderr.strip()}; see {cluster.log}")
    pid = _postmaster_pid(cluster)
    if pid is None:
        raise StackError(f"PostgreSQL started but wrote no postmaster.pid; see {cluster.log}")
    _ensure_app_database(_superuser(conf), conf["app_password"])
    app_url = f"postgresql://{APP_ROLE}:{conf['app_password']}@127.0.0.1:{port}/{APP_DB}"
    admin_url = f"postgresql://postgres:{conf['superuser_password']}@127.0.0.1:{port}/{APP_DB}"
    component = Component(
        name=cluster.name,
        address=f"127.0.0.1:{port}",
        pid=pid,
        cmdline_marker=str(cluster.data.resolve()),
        log=str(cluster.log),
        ready_in_s=time.monotonic() - launched,
    )
    auditor = conf["auditor_password"]
    audit_url = f"postgresql://{AUDITOR_ROLE}:{auditor}@127.0.0.1:{port}/{APP_DB}"
    return component, {
        f"{cluster.env_prefix}DATABASE_URL": app_url,
        f"{cluster.env_prefix}ADMIN_DATABASE_URL": admin_url,
        f"{cluster.env_prefix}AUDIT_DATABASE_URL": audit_url,
        f"{cluster.env_prefix}AUDIT_DB_PASSWORD": auditor,
    }


def preloads_timescaledb(cluster: Cluster) -> bool:
    """Whether the running cluster preloads TimescaleDB (asked of the server itself)."""
    conf: dict[str, Any] = orjson.loads(cluster.conf.read_bytes())
    with psycopg.connect(_superuser(conf), autocommit=True) as conn:
        return facts(conn).preloaded


def describe(conninfo: str) -> str:
    """The engine a server runs, in a few words, for `stack status`."""
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            server = facts(conn)
    except psycopg.Error as exc:
        return f"unreachable ({str(exc).strip().splitlines()[0]})"
    if server.installed is None:
        return "plain PostgreSQL: timescaledb not installed"
    if not server.preloaded:
        return f"plain PostgreSQL: timescaledb {server.installed} installed, not preloaded"
    return f"TimescaleDB {server.created or server.installed} preloaded"


def describe_cluster(cluster: Cluster) -> str:
    conf: dict[str, Any] = orjson.loads(cluster.conf.read_bytes())
    return describe(_superuser(conf, APP_DB))


def _ensure_app_database(superuser: str, app_password: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg.connect(superuser, autocommit=True)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
        if role is None:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(app_password)
                )
            )
        db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (APP_DB,)).fetchone()
        if db is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(APP_DB), sql.Identifier(APP_ROLE)
                )
            )


def stop(component: Component) -> None:
    """``pg_ctl stop`` on the data directory the component was started with."""
    subprocess.run(  # noqa: S603 - fixed argv
        [
            str(bindir() / "pg_ctl"),
            "stop",
            "-w",
            "-t",
            "60",
            "-m",
            "fast",
            "-D",
            component.cmdline_marker,
        ],
        capture_output=True,
        text=True,
        check=False,
        **_as_owner(),
    )

"""A throw-away PostgreSQL cluster for the local stack.

``initdb`` in ``.stack/pg/data`` (see ``_cluster_home``) as the ``postgres`` user
(PostgreSQL refuses to run as root), listening on 127.0.0.1 and a free port, no Unix
socket. The superuser and the application role ``citystream`` get generated passwords,
written to ``.stack/stack.env``.
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
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from services.settings import STACK_DIR
from services.stack.state import Component, StackError, free_port, port_is_free


def _cluster_home() -> Path:
    """``.stack/pg``, unless the server's user could not reach it.

    As root the server runs as ``postgres``, which must be able to enter every folder above
    its data directory; a checkout inside a private folder (``mktemp -d`` makes them 0700)
    gets its cluster under the system temp folder instead, named after the checkout.
    """
    preferred = STACK_DIR / "pg"
    if os.geteuid() != 0:
        return preferred
    here = STACK_DIR.resolve()
    for folder in (here, *here.parents):
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            digest = hashlib.sha256(str(here).encode()).hexdigest()[:12]
            return Path(tempfile.gettempdir()) / f"citystream-pg-{digest}"
    return preferred


HOME = _cluster_home()
DATA = HOME / "data"
CONF = HOME / "cluster.json"
LOG = HOME / "postgres.log"
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


def _cluster() -> dict[str, Any]:
    """Create the cluster once: superuser password, port; return its record."""
    if CONF.exists() and (DATA / "PG_VERSION").exists():
        conf: dict[str, Any] = orjson.loads(CONF.read_bytes())
        if not port_is_free(int(conf["port"])):
            conf["port"] = free_port()
            CONF.write_bytes(orjson.dumps(conf))
        return conf
    shutil.rmtree(DATA, ignore_errors=True)
    HOME.mkdir(parents=True, exist_ok=True)
    conf = {
        "port": free_port(),
        "superuser_password": secrets.token_urlsafe(24),
        "app_password": secrets.token_urlsafe(24),
    }
    pwfile = HOME / "pwfile"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(conf["superuser_password"] + "\n")
    DATA.mkdir(mode=0o700)
    ids = _owner_ids()
    if ids is not None:
        for path in (HOME, DATA, pwfile):
            os.chown(path, *ids)
    result = subprocess.run(  # noqa: S603 - fixed argv
        [
            str(bindir() / "initdb"),
            "-D",
            str(DATA.resolve()),
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
    fd = os.open(CONF, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps(conf))
    return conf


def _postmaster_pid() -> int | None:
    try:
        return int((DATA / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def start() -> tuple[Component, dict[str, str]]:
    """Start the cluster; return it and the settings the application needs to reach it."""
    conf = _cluster()
    port = int(conf["port"])
    ids = _owner_ids()
    if ids is not None:
        LOG.touch()
        os.chown(LOG, *ids)
    launched = time.monotonic()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories=''"
    result = subprocess.run(  # noqa: S603 - fixed argv
        [
            str(bindir() / "pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(DATA.resolve()),
            "-l",
            str(LOG.resolve()),
            "-o",
            options,
        ],
        capture_output=True,
        text=True,
        check=False,
        **_as_owner(),
    )
    if result.returncode != 0:
        raise StackError(f"PostgreSQL did not start: {result.stderr.strip()}; see {LOG}")
    pid = _postmaster_pid()
    if pid is None:
        raise StackError(f"PostgreSQL started but wrote no postmaster.pid; see {LOG}")
    superuser = psycopg.conninfo.make_conninfo(
        host="127.0.0.1",
        port=port,
        user="postgres",
        password=conf["superuser_password"],
        dbname="postgres",
    )
    _ensure_app_database(superuser, conf["app_password"])
    app_url = f"postgresql://{APP_ROLE}:{conf['app_password']}@127.0.0.1:{port}/{APP_DB}"
    admin_url = f"postgresql://postgres:{conf['superuser_password']}@127.0.0.1:{port}/{APP_DB}"
    component = Component(
        name="postgres",
        address=f"127.0.0.1:{port}",
        pid=pid,
        cmdline_marker=str(DATA.resolve()),
        log=str(LOG),
        ready_in_s=time.monotonic() - launched,
    )
    return component, {
        "CITYSTREAM_DATABASE_URL": app_url,
        "CITYSTREAM_ADMIN_DATABASE_URL": admin_url,
    }


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
            str(DATA.resolve()),
        ],
        capture_output=True,
        text=True,
        check=False,
        **_as_owner(),
    )

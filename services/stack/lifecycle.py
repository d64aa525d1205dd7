"""``citystream stack up|down|status``: start, stop and show the local stack."""

from __future__ import annotations

from services.stack import kafka, postgres, state, timescale
from services.stack.state import Component, StackError
from streams.settings import Settings, user_overrides


def up() -> dict[str, Component | str]:
    """Start what is not running and not pointed elsewhere by the user; return what runs."""
    overrides = user_overrides()
    components = state.load()
    result: dict[str, Component | str] = {}

    if "kafka_bootstrap" in overrides:
        result["kafka"] = "external (CITYSTREAM_KAFKA_BOOTSTRAP is set)"
    else:
        users, new = kafka.passwords()
        # Saved before the broker formats its storage with them: never a user whose
        # password nobody holds.
        state.write_env(new)
        current = components.get("kafka")
        if current is None or not current.running():
            current = kafka.start(users)
            components["kafka"] = current
            state.save(components)
        state.write_env({"CITYSTREAM_KAFKA_BOOTSTRAP": current.address})
        _grant_default_access(kafka.client_settings(current.address, users))
        result["kafka"] = current

    if "database_url" in overrides:
        result["postgres"] = "external (CITYSTREAM_DATABASE_URL is set)"
    else:
        tsdb = timescale.installed_version(postgres.bindir())
        _run_cluster(postgres.MAIN, components, result, timescaledb=tsdb is not None)
        if tsdb is not None:
            # Plain PostgreSQL on the same server binaries: the engine of every deployment
            # without the extension, which the tests exercise too (tests/modes.py).
            _run_cluster(postgres.PLAIN, components, result, timescaledb=False)
    return result


def _grant_default_access(settings: Settings) -> None:
    """The ACLs of the default topic names and consumer group, so that the principals can
    work as soon as `citystream topics` has created the topics (tests grant their own
    namespaces)."""
    from services.kafka.acls import grant_access

    try:
        grant_access(settings)
    except Exception as exc:  # a broker that answers but refuses: say what, stop
        raise StackError(f"granting the principals their ACLs failed: {exc}") from exc


def _run_cluster(
    cluster: postgres.Cluster,
    components: dict[str, Component],
    result: dict[str, Component | str],
    *,
    timescaledb: bool,
) -> None:
    current = components.get(cluster.name)
    if (
        current is not None
        and current.running()
        and timescaledb
        and not postgres.preloads_timescaledb(cluster)
    ):
        # Started before TimescaleDB was installed: the preload only takes effect at start.
        postgres.stop(current)
        state.stop_pid(current.pid, current.cmdline_marker)
        current = None
    if current is None or not current.running():
        current, env = postgres.start(cluster, timescaledb=timescaledb)
        components[cluster.name] = current
        state.save(components)
        state.write_env(env)
    result[cluster.name] = current


def down(only: str | None = None) -> list[str]:
    """Stop exactly the processes ``up`` started, by their PIDs (only one, if named).

    Stopping one component keeps the other's record, so ``up`` restarts just the stopped
    one, on the same port and with the same data (the chaos suite relies on this).
    """
    components = state.load()
    stopped = []
    for name, component in list(components.items()):
        if only is not None and name != only:
            continue
        del components[name]
        if not component.running():
            continue
        if name in postgres.CLUSTERS:
            postgres.stop(component)
        # pg_ctl normally finishes the job; the PID fallback covers a hung shutdown.
        state.stop_pid(component.pid, component.cmdline_marker)
        stopped.append(f"{name} (pid {component.pid})")
    state.save(components)
    return stopped


def status() -> list[tuple[str, str, str, str, str]]:
    """(component, address, pid, state, engine) for each component; the engine (TimescaleDB
    or plain PostgreSQL, and why) is asked of each running database server."""
    overrides = user_overrides()
    components = state.load()
    rows = []
    for name in ("kafka", *postgres.CLUSTERS):
        setting = "kafka_bootstrap" if name == "kafka" else "database_url"
        if setting in overrides:
            if name == postgres.PLAIN.name:
                continue
            engine = (
                "-"
                if name == "kafka"
                else postgres.describe(Settings().database_url.get_secret_value())
            )
            rows.append((name, "external", "-", "not managed by the stack", engine))
            continue
        component = components.get(name)
        if component is None:
            if name != postgres.PLAIN.name:
                rows.append((name, "-", "-", "stopped", "-"))
            continue
        running = component.running()
        engine = "-"
        if running and name in postgres.CLUSTERS:
            engine = _engine(postgres.CLUSTERS[name])
        rows.append(
            (
                name,
                component.address,
                str(component.pid),
                "running" if running else "stopped",
                engine,
            )
        )
    return rows


def _engine(cluster: postgres.Cluster) -> str:
    """The cluster's engine, and why it is the one it should (or should not) be."""
    found = postgres.describe_cluster(cluster)
    installed = timescale.installed_version(postgres.bindir())
    if cluster is postgres.PLAIN:
        return f"{found} (on purpose: the plain-mode tests' cluster)"
    if installed is None:
        return (
            f"{found} (make install builds it from ../shared/vendor; without that archive, "
            "see README > TimescaleDB)"
        )
    if found.startswith("plain"):
        return f"{found} (started without it: `citystream stack up` restarts it preloaded)"
    return found

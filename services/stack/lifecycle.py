"""``citystream stack up|down|status``: start, stop and show the local stack."""

from __future__ import annotations

from services.settings import user_overrides
from services.stack import kafka, postgres, state
from services.stack.state import Component


def up() -> dict[str, Component | str]:
    """Start what is not running and not pointed elsewhere by the user; return what runs."""
    overrides = user_overrides()
    components = state.load()
    result: dict[str, Component | str] = {}

    if "kafka_bootstrap" in overrides:
        result["kafka"] = "external (CITYSTREAM_KAFKA_BOOTSTRAP is set)"
    else:
        current = components.get("kafka")
        if current is None or not current.running():
            current = kafka.start()
            components["kafka"] = current
            state.save(components)
        state.write_env({"CITYSTREAM_KAFKA_BOOTSTRAP": current.address})
        result["kafka"] = current

    if "database_url" in overrides:
        result["postgres"] = "external (CITYSTREAM_DATABASE_URL is set)"
    else:
        current_pg = components.get("postgres")
        if current_pg is None or not current_pg.running():
            current_pg, env = postgres.start()
            components["postgres"] = current_pg
            state.save(components)
            state.write_env(env)
        result["postgres"] = current_pg
    return result


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
        if name == "postgres":
            postgres.stop(component)
        # pg_ctl normally finishes the job; the PID fallback covers a hung shutdown.
        state.stop_pid(component.pid, component.cmdline_marker)
        stopped.append(f"{name} (pid {component.pid})")
    state.save(components)
    return stopped


def status() -> list[tuple[str, str, str, str]]:
    """(component, address, pid, state) for each component."""
    overrides = user_overrides()
    components = state.load()
    rows = []
    for name, setting in (("kafka", "kafka_bootstrap"), ("postgres", "database_url")):
        if setting in overrides:
            rows.append((name, "external", "-", "not managed by the stack"))
            continue
        component = components.get(name)
        if component is None:
            rows.append((name, "-", "-", "stopped"))
        else:
            rows.append(
                (
                    name,
                    component.address,
                    str(component.pid),
                    "running" if component.running() else "stopped",
                )
            )
    return rows

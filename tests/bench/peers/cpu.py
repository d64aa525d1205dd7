"""CPU seconds of a process tree, read from ``/proc`` (Linux).

A tree's CPU is, over its root and every live descendant, ``utime + stime`` (the process's
own threads) plus ``cutime + cstime`` (its children that exited and were reaped). A child
that exits moves its time into its parent's ``cutime``, so the sum neither loses nor counts
twice what a process that came and went used: exactly right for a PostgreSQL postmaster,
whose backends come and go, and for a consumer that starts helpers.
"""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks of the process and its reaped children); None once gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its last ")".
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    return int(fields[1]), sum(int(value) for value in fields[11:15])


def tree_seconds(root: int) -> float:
    """CPU seconds used so far by ``root`` and its descendants (0.0 once it is gone)."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        found = _stat(int(entry.name))
        if found is None:
            continue
        parent, used = found
        children.setdefault(parent, []).append(int(entry.name))
        ticks[int(entry.name)] = used
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total / TICKS

"""``python -m tests.bench.import_speed``: how fast ``citystream import`` takes a 20,000-row ledger.

The ledger is the one ``tests/integration/test_import.py`` writes (an XLSX heating ledger with
a title row, Chinese headers and 3% bad rows), at 20,000 rows. The command is run as a clerk
runs it, ``citystream import FILE --type heating.area_connected``, in a child process against
the local stack's Kafka, in a throw-away topic namespace (no worker: the import's own time is
measured), ``--runs`` times; the best run counts (other checkouts share the machine).

Only the CLI, the settings and ``ensure_topics`` are used, so the same file measures any
commit: ``--against DIR`` runs the same command, alternately, from another checkout's tree
(e.g. ``git archive <commit> | tar -x -C DIR``) with the same Python environment, and
reports the best of each, so that both see the same load on a shared machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from pathlib import Path

from services.kafka.topics import ensure_topics
from streams.settings import Settings
from tests.conftest import ROOT, settings_env
from tests.integration import test_import


def ledger(path: Path, rows: int) -> Path:
    if not path.exists():
        saved = test_import.ROWS, test_import.BAD
        test_import.ROWS, test_import.BAD = rows, rows * 3 // 100
        try:
            test_import.make_ledger(path, seed=11)
        finally:
            test_import.ROWS, test_import.BAD = saved
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "import-bench")
    parser.add_argument(
        "--against", type=Path, help="another checkout's tree, timed alternately with this one"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = ledger(args.out / f"供热台账_{args.rows}.xlsx", args.rows)
    suffix = uuid.uuid4().hex[:8]
    settings = Settings().model_copy(
        update={"topic_namespace": f"bench{suffix}.", "topic_partitions": 3}
    )
    ensure_topics(settings)
    command = [sys.executable, "-m", "services.cli", "import", str(path)]
    command += ["--type", "heating.area_connected"]
    trees = {"this tree": ROOT}
    if args.against is not None:
        trees["--against"] = args.against.resolve()
    times: dict[str, list[float]] = {name: [] for name in trees}
    for run in range(1, args.runs + 1):
        for name, tree in trees.items():
            started = time.monotonic()
            result = subprocess.run(
                command,
                # The child imports the tree it runs in (its working directory comes first
                # on sys.path, before the editable install).
                env=settings_env(settings),
                cwd=tree,
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.monotonic() - started
            if result.returncode not in (0, 2):
                sys.exit(f"import failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
            times[name].append(seconds)
            rate = args.rows / seconds
            print(f"run {run} {name}: {seconds:.2f} s ({rate:,.0f} rows/s)", flush=True)
    for name, found in times.items():
        best = min(found)
        print(
            f"best of {args.runs}, {name} ({trees[name]}): {best:.2f} s, "
            f"{args.rows / best:,.0f} rows/s ({path.name})"
        )


if __name__ == "__main__":
    main()

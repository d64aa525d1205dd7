"""``make demo`` / ``citystream demo``: the main job on the local stack, end to end.

migrate → create the topics → load the pledge catalogue (quotes checked against the
sources) → start a ``citystream worker`` process → simulate 2022 and 2024 up to 31 August
2024 through the real producer → wait until the offsets the worker stored in PostgreSQL
reach the end of every ``city.<family>.v1`` topic → print the 2024 pledge table as on
31 August 2024 and the 2022 check (the platform's totals against every reported
achievement an event family measures) → write ``out/report.html`` → stop the worker.

The worker starts before the simulator sends, so that it joins its consumer group while the
records are on their way; the job is the same. Touches: every table of the migrations, the
``city.*`` topics (``CITYSTREAM_TOPIC_NAMESPACE``), the consumer group
``CITYSTREAM_CONSUMER_GROUP``, ``out/``. Reads every ``CITYSTREAM_*`` setting.

Running it again counts nothing twice: the simulator derives every event id from its seed,
so the ledger already holds them and the totals stay where they were. (Each run's invalid
records are new dead letters, at new offsets: that is what was sent.)
"""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import psycopg
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from schemas.catalogue import Achievement, Catalogue
from services.kafka.topics import ensure_topics
from services.pledges.formats import format_exact
from services.pledges.reads import progress
from services.pledges.report import DEFAULT_OUT, write_report
from services.pledges.rules import PledgeProgress, level_now, readings
from services.pledges.screenshot import screenshot
from services.pledges.store import load, validated_catalogue
from services.pledges.table import status_table
from services.progress import caught_up
from services.simulator.plan import DEFAULT_SEED, plan
from services.simulator.run import SendReport, send
from streams.db import connect
from streams.db.migrate import apply
from streams.db.pledges import level_reports, metric_days
from streams.rollup import LOCAL_TZ
from streams.settings import Settings, child_env

STATUS_DAY = date(2024, 8, 31)  # the 2024 position the simulator is designed for
CHECK_YEAR = 2022  # the year whose reported achievements the platform must reproduce
TABLE_WIDTH = 180  # columns of the recorded terminal table (README screenshot)


@dataclass(frozen=True)
class AchievementCheck:
    achievement: Achievement
    platform: Decimal

    @property
    def difference(self) -> Decimal:
        return self.platform - self.achievement.value


@dataclass(frozen=True)
class DemoResult:
    report: Path
    pledges: list[PledgeProgress]  # 2024, as on STATUS_DAY
    checks: list[AchievementCheck]  # CHECK_YEAR
    unchecked: list[Achievement]  # CHECK_YEAR figures no event family measures
    sent: dict[str, SendReport]
    caught_up_s: float  # from the first send until PostgreSQL held everything
    seconds: float


def achievement_checks(
    conn: psycopg.Connection[Any], catalogue: Catalogue, *, year: int = CHECK_YEAR
) -> tuple[list[AchievementCheck], list[Achievement]]:
    """The platform's figure for each of ``year``'s reported achievements an event family
    measures — a sum: ``metric_daily``, every district, the calendar year; a level (a rate):
    the year's latest reading — and the others."""
    checks, unchecked = [], []
    for achievement in catalogue.achievements_for(year):
        metric = catalogue.metric(achievement.metric)
        if not metric.event_types:
            unchecked.append(achievement)
            continue
        first, last = date(year, 1, 1), date(year, 12, 31)
        if metric.aggregation == "level":
            end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=LOCAL_TZ)
            reports, corrections = level_reports(conn, event_types=metric.event_types, until=end)
            level, _ = level_now(
                readings(metric.name, reports, corrections, first=first, last=last)
            )
            checks.append(AchievementCheck(achievement, level))
            continue
        rows = metric_days(
            conn, metric=achievement.metric, first=date(year, 1, 1), last=date(year, 12, 31)
        )
        checks.append(AchievementCheck(achievement, sum((t for _, _, t in rows), Decimal(0))))
    return checks, unchecked


def checks_table(
    checks: list[AchievementCheck], unchecked: list[Achievement], catalogue: Catalogue
) -> Table:
    table = Table(
        title=f"{CHECK_YEAR} 年度成果核对 · {CHECK_YEAR} reported achievements vs the platform",
        caption=(
            f"{len(unchecked)} further {CHECK_YEAR} figures no event family measures are listed "
            "below with the reason; not checked."
        ),
    )
    table.add_column("成果 Achievement", min_width=24, ratio=1)
    table.add_column("报告 Reported", justify="right", no_wrap=True)
    table.add_column("平台 Platform", justify="right", no_wrap=True)
    table.add_column("", justify="right", no_wrap=True)
    for check in checks:
        achievement = check.achievement
        metric = catalogue.metric(achievement.metric)
        mark = (
            "[green]=[/]"
            if check.difference == 0
            else f"[red]{format_exact(check.difference, metric, sign=True)}[/]"
        )
        table.add_row(
            f"{achievement.title_zh}\n[dim]{achievement.title_en}[/]",
            format_exact(achievement.value, metric),
            format_exact(check.platform, metric),
            mark,
        )
    return table


def unmeasured_table(unchecked: list[Achievement], catalogue: Catalogue) -> Table:
    """The reported figures no event family measures, each with why (its metric's note)."""
    table = Table(
        title=f"{CHECK_YEAR} 未计量成果 · {CHECK_YEAR} figures no event measures",
        show_lines=False,
    )
    table.add_column("成果 Achievement", min_width=20, ratio=1)
    table.add_column("原因 Why not measured", ratio=2)
    for achievement in unchecked:
        note = catalogue.metric(achievement.metric).note or ""
        table.add_row(
            f"{achievement.title_zh}\n[dim]{achievement.title_en}[/]",
            escape(" ".join(note.split())),
        )
    return table


def _start_worker(settings: Settings, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "worker"],
        env=child_env(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=10)


def _wait_for_worker(
    settings: Settings,
    worker: subprocess.Popen[bytes],
    *,
    timeout_s: float,
    since: float,
    log_path: Path,
    console: Console,
) -> None:
    with console.status("waiting for the worker to write everything to PostgreSQL…"):
        while not caught_up(settings):
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited with code {worker.returncode}; see {log_path}")
            if time.monotonic() - since > timeout_s:
                raise SystemExit(
                    f"the worker did not catch up within {timeout_s:.0f} s; see {log_path}"
                )
            time.sleep(0.2)


def save_screenshots(
    directory: Path, *, report: Path, tables: list[Table], width: int = TABLE_WIDTH
) -> tuple[Path, Path]:
    """The README's pictures: the terminal tables as SVG, the report's top as PNG."""
    directory.mkdir(parents=True, exist_ok=True)
    recorder = Console(record=True, width=width, file=io.StringIO(), force_terminal=True)
    for table in tables:
        recorder.print(table)
    svg = directory / "pledge-table.svg"
    svg.write_text(_natural_cjk(recorder.export_svg(title="citystream demo")), encoding="utf-8")
    png = screenshot(report, directory / "report.png", width=1280, height=2200)
    _shrink_png(png)
    return svg, png


_WIDE_TEXT = re.compile(
    r'(<text [^>]*?) textLength="[0-9.]+"'  # the attribute to drop
    r"([^>]*>[^<]*[\u2e80-\uffef][^<]*</text>)"  # a run holding CJK or full-width characters
)


def _natural_cjk(svg: str) -> str:
    """Rich squeezes each text run into its cells with ``textLength``; a CJK font's glyphs
    are not two monospace cells wide, so a run holding Chinese would be squashed. Such runs
    keep their natural width instead (each run starts at its own x, so columns still line up).
    """
    return _WIDE_TEXT.sub(r"\1\2", svg)


def _shrink_png(path: Path) -> None:
    """A 256-colour palette keeps the README's picture small (anti-aliased text included)."""
    try:
        from PIL import Image
    except ImportError:  # Pillow is a dev extra; without it the picture is just larger
        return
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def run_demo(
    settings: Settings,
    *,
    timeout_s: float,
    console: Console,
    out: Path = DEFAULT_OUT,
    seed: int = DEFAULT_SEED,
    screenshots: Path | None = None,
) -> DemoResult:
    started = time.monotonic()
    console.print(
        f"[bold]CityStream demo[/] · Kafka {settings.kafka_bootstrap}, "
        f"PostgreSQL schema {settings.db_schema}"
    )
    migrated = apply(settings)
    counts = Counter(outcome.status for outcome in migrated.outcomes)
    console.print(
        "1/7 migrations: "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + f" · {escape(migrated.mode.summary)}"
    )
    created = ensure_topics(settings).created
    console.print(f"2/7 topics: {', '.join(created) if created else 'all exist'}")

    catalogue = validated_catalogue()
    with connect(settings) as conn:
        stored = load(conn, catalogue=catalogue)
    console.print(
        f"3/7 pledge catalogue: {len(catalogue.pledges)} pledges, "
        f"{len(catalogue.achievements)} achievements; stored {len(stored.added)} new, "
        f"{len(stored.revised)} revised, {len(stored.unchanged)} unchanged"
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.parent / "demo-worker.log"
    with log_path.open("ab") as log:
        worker = _start_worker(settings, log)
        try:
            console.print(f"4/7 worker started (pid {worker.pid}, log {log_path})")
            quiet = Console(file=io.StringIO(), width=120)
            sent: dict[str, SendReport] = {}
            first_send = time.monotonic()
            for year, until in ((2022, None), (2024, STATUS_DAY)):
                year_plan = plan(year, seed=seed, until=until, catalogue=catalogue)
                report = send(year_plan, settings, quiet)
                label = f"{year}" + (f" until {until}" if until else "")
                sent[label] = report
                console.print(
                    f"5/7 simulated {label}: {report.sent:,} records sent "
                    f"({len(year_plan.originals)} events, {report.corrections} corrections, "
                    f"{report.duplicates} duplicates, {report.invalid} invalid) "
                    f"in {report.seconds:.2f} s"
                )
            _wait_for_worker(
                settings,
                worker,
                timeout_s=timeout_s,
                since=first_send,
                log_path=log_path,
                console=console,
            )
            caught_up_s = time.monotonic() - first_send
            console.print(
                f"6/7 worker caught up: PostgreSQL holds every record "
                f"{caught_up_s:.1f} s after the first send"
            )

            with connect(settings) as conn:
                rows = progress(conn, on=STATUS_DAY, year=2024, catalogue=catalogue)
                checks, unchecked = achievement_checks(conn, catalogue)
                pledge_table = status_table(rows, catalogue, on=STATUS_DAY)
                check_table = checks_table(checks, unchecked, catalogue)
                console.print(pledge_table)
                console.print(check_table)
                if unchecked:
                    console.print(unmeasured_table(unchecked, catalogue))
                path = write_report(conn, on=STATUS_DAY, year=2024, out=out, catalogue=catalogue)
            console.print(f"7/7 report: [bold]{escape(str(path))}[/]")
        finally:
            _stop_worker(worker)
    if screenshots is not None:
        svg, png = save_screenshots(screenshots, report=path, tables=[pledge_table, check_table])
        console.print(f"screenshots: {svg}, {png}")
    seconds = time.monotonic() - started
    console.print(
        f"done in {seconds:.1f} s; the worker stopped. Open {path} in a browser; "
        "running the demo again counts nothing twice."
    )
    return DemoResult(
        report=path,
        pledges=rows,
        checks=checks,
        unchecked=unchecked,
        sent=sent,
        caught_up_s=caught_up_s,
        seconds=seconds,
    )

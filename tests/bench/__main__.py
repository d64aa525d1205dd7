"""``make bench`` → ``python -m tests.bench``: run every benchmark on the local stack.

1. throughput: ``--events`` records sent as fast as the producer can while the worker
   runs; from the first send until the last record's rollup is visible in PostgreSQL;
   once with one worker process, once with ``--scale-out`` workers in one consumer group
   (0 skips it); the audit commands are timed over the first run's ledger;
2. the naive baseline (tests/bench/naive.py) measured the same way in the same command,
   on ``--naive-events`` records (it is too slow for a million) → the ratio of the rates;
3. latency: ``--rate`` records/s for ``--latency-seconds``; per record, from its send to
   the commit that makes it visible (sampled every 20 ms) → p50 / p99;
4. queries: a ledger of ``--ledger-rows`` rows, a 30-day daily series per pledge from the
   rollup and from the raw ledger → p50 / p95;
5. periods: ``--period-years`` of daily rollups; the weekly and monthly views' series
   (tests/bench/periods.py) → p50 / p95;
6. authentication: producer throughput and the cost of a new connection on the stack's
   broker (SASL/SCRAM-SHA-512, ACLs) against a twin broker without them
   (tests/bench/auth_cost.py), ``--auth-events`` records, three runs each;
7. peers: a backlog of ``--peer-events`` records, produced before any consumer starts, drained
   by CityStream's worker, Kafka Connect + Debezium's JDBC sink and quixstreams + its
   PostgreSQL sink, one after the other (tests/bench/peers/compare.py) → events/s, consumer
   and PostgreSQL CPU per event, the ratio of each to CityStream's; ``--peer-rounds`` times,
   every other round in the reverse order, each consumer's median round reported.
Each part runs in its own schema and topic namespace, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from streams.db import connect
from streams.settings import Settings
from tests.bench import auth_cost, periods, pipeline, queries
from tests.bench.peers import compare
from tests.bench.workload import heating_records

ROOT = Path(__file__).resolve().parents[2]
RESEND_LABEL = f"{compare.RESEND:,} re-sent"
OUT = ROOT / "out"
console = Console()


def _warm_up(settings: Settings, naive: bool) -> None:
    """One record through, so the timed run does not include joining the group."""
    sent = pipeline.produce(settings, heating_records(1, seed=0))
    if naive:
        pipeline.wait_rows(settings, "events", 1, timeout_s=120)
    else:
        pipeline.wait_visible(settings, sent.ends, timeout_s=120)


def _audit(settings: Settings) -> dict[str, Any]:
    """Audit over what the throughput run left: verify the chains, replay from both sources."""
    from services.audit.replay import replay_from_kafka, replay_from_ledger
    from services.audit.verify import verify

    out: dict[str, Any] = {}
    started = time.monotonic()
    report = verify(settings)
    seconds = time.monotonic() - started
    out["verify"] = {
        "rows": report.rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(report.rows / seconds),
        "breaks": len(report.breaks),
    }
    for name, replay in (
        ("replay_ledger", replay_from_ledger),
        ("replay_kafka", replay_from_kafka),
    ):
        started = time.monotonic()
        result = replay(settings)
        seconds = time.monotonic() - started
        out[name] = {
            "events": result.events_read,
            "seconds": round(seconds, 2),
            "events_per_s": round(result.events_read / seconds),
            "differences": len(result.differences()),
        }
    return out


def _run(
    base: Settings,
    label: str,
    records: list[tuple[bytes, bytes]],
    *,
    naive: bool = False,
    audit: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    settings = pipeline.isolated(base, label)
    module = "tests.bench.naive" if naive else "services.cli"
    processes = [
        pipeline.Process(settings, module, OUT / f"bench-{label}-{n}.log") for n in range(workers)
    ]
    try:
        _warm_up(settings, naive)
        sent = pipeline.produce(settings, records)
        if naive:
            visible = pipeline.wait_rows(settings, "events", len(records) + 1, timeout_s=3600)
        else:
            visible = pipeline.wait_visible(settings, sent.ends, timeout_s=3600)
        for process in processes:
            process.stop()
        audited = _audit(settings) if audit else {}
    finally:
        for process in processes:
            process.stop()
        pipeline.drop(settings)
    seconds = visible - sent.started
    return {
        "events": len(records),
        "worker_processes": workers,
        "seconds": round(seconds, 2),
        "events_per_s": round(len(records) / seconds),
        "producer_events_per_s": round(len(records) / (sent.finished - sent.started)),
        **audited,
    }


def _latency(base: Settings, rate: float, seconds: float) -> dict[str, Any]:
    settings = pipeline.isolated(base, "latency")
    worker = pipeline.Process(settings, "services.cli", OUT / "bench-latency.log")
    records = heating_records(int(rate * seconds), seed=5)
    try:
        _warm_up(settings, naive=False)
        poller = pipeline.OffsetPoller(settings)
        poller.start()
        sent = pipeline.produce(settings, records, rate=rate, stamps=True)
        pipeline.wait_visible(settings, sent.ends, timeout_s=600)
        time.sleep(0.1)
        poller.stopping.set()
        poller.join()
    finally:
        worker.stop()
        pipeline.drop(settings)
    lat = sorted(poller.latencies(sent.stamps))
    cuts = statistics.quantiles(lat, n=100)
    return {
        "offered_events_per_s": rate,
        "achieved_send_rate": round(len(records) / (sent.finished - sent.started)),
        "events": len(records),
        "p50_s": round(cuts[49], 3),
        "p99_s": round(cuts[98], 3),
        "max_s": round(lat[-1], 3),
    }


def _engines(base: Settings) -> list[tuple[str, Settings]]:
    """(engine, settings) for each engine the local stack runs: its main cluster (TimescaleDB
    when the extension is installed) and its plain twin."""
    from pydantic import SecretStr

    from services.stack import state
    from streams.db.timescale import decide, facts

    with connect(base, admin=True) as conn:
        main = "TimescaleDB" if decide(facts(conn)).timescale else "plain PostgreSQL"
    engines = [(main, base)]
    env = state.read_env()
    if main == "TimescaleDB" and "CITYSTREAM_PLAIN_DATABASE_URL" in env:
        plain = base.model_copy(
            update={
                "database_url": SecretStr(env["CITYSTREAM_PLAIN_DATABASE_URL"]),
                "admin_database_url": SecretStr(env["CITYSTREAM_PLAIN_ADMIN_DATABASE_URL"]),
                "audit_database_url": SecretStr(env["CITYSTREAM_PLAIN_AUDIT_DATABASE_URL"]),
                "audit_db_password": SecretStr(env["CITYSTREAM_PLAIN_AUDIT_DB_PASSWORD"]),
            }
        )
        engines.append(("plain PostgreSQL", plain))
    return engines


def _periods(base: Settings, years: int) -> dict[str, Any]:
    out: dict[str, Any] = {"years": years, "engines": {}}
    for engine, engine_settings in _engines(base):
        settings = pipeline.isolated(engine_settings, "periods")
        try:
            rows = periods.fill(settings, years)
            chunks = periods.compress(settings)
            out["engines"][engine] = {
                "daily_rows": rows,
                "compressed_chunks": chunks,
                **periods.measure(settings, years),
            }
        finally:
            pipeline.drop(settings)
    return out


def _queries(base: Settings, rows: int) -> dict[str, Any]:
    out: dict[str, Any] = {"ledger_rows": rows, "engines": {}}
    for engine, engine_settings in _engines(base):
        console.print(f"  {engine}: filling {rows:,} ledger rows…")
        settings = pipeline.isolated(engine_settings, "queries")
        try:
            fill_s = queries.fill(settings, rows)
            chunks, compress_s = queries.compress(settings)
            sizes = queries.sizes(settings)
            console.print(f"  {engine}: queries and audit verify…")
            measured = queries.measure(settings)
            verified = queries.verify_seconds(settings)
        finally:
            pipeline.drop(settings)
        per_pledge = measured["per_pledge"]
        out["engines"][engine] = {
            "fill_seconds": round(fill_s, 1),
            "compressed_chunks": chunks,
            "compress_seconds": round(compress_s, 1),
            "bytes": sizes,
            "ledger_mb": round((sizes["events"] + sizes["event_keys"]) / 2**20),
            "dashboards": measured["dashboards"],
            "rollup_p95_ms_max": max(v["rollup"]["p95_ms"] for v in per_pledge.values()),
            "raw_p95_ms_max": max(v["raw"]["p95_ms"] for v in per_pledge.values()),
            "verify": verified,
            "per_pledge": per_pledge,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--naive-events", type=int, default=20_000)
    parser.add_argument(
        "--scale-out", type=int, default=2, help="worker processes of the second throughput run"
    )
    parser.add_argument("--rate", type=float, default=5_000)
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument("--ledger-rows", type=int, default=10_000_000)
    parser.add_argument("--auth-events", type=int, default=200_000)
    parser.add_argument("--period-years", type=int, default=10)
    parser.add_argument(
        "--peer-events", type=int, default=1_000_000, help="the backlog of the peers part"
    )
    parser.add_argument(
        "--peer-rounds",
        type=int,
        default=1,
        help="times the peers part runs, every other round in the reverse order (medians)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        help="throughput|audit|latency|queries|periods|auth|peers",
    )
    parser.add_argument(
        "--out", type=Path, default=OUT / "bench.json", help="where the figures are written"
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    base = Settings()
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "worker": {"batch_size": base.batch_size, "batch_wait_s": base.batch_wait_s},
    }

    # Saved after every part: a part that fails loses nothing measured before it.
    def save() -> None:
        args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))

    if "throughput" not in args.skip:
        console.print(f"throughput: {args.events:,} events through one worker…")
        records = heating_records(args.events, seed=1)
        result["throughput"] = _run(base, "ours", records, audit="audit" not in args.skip)
        if args.scale_out > 1:
            console.print(f"throughput: the same through {args.scale_out} workers in one group…")
            result["scale_out"] = _run(base, "scaled", records, workers=args.scale_out)
        del records
        console.print(f"naive baseline: {args.naive_events:,} events…")
        result["naive"] = _run(
            base, "naive", heating_records(args.naive_events, seed=2), naive=True
        )
        for run in ("throughput", "scale_out"):
            if run in result:
                result[run]["ratio_vs_naive"] = round(
                    result[run]["events_per_s"] / result["naive"]["events_per_s"], 1
                )
        save()
    if "latency" not in args.skip:
        console.print(f"latency at {args.rate:,.0f} events/s for {args.latency_seconds:.0f} s…")
        result["latency"] = _latency(base, args.rate, args.latency_seconds)
        save()
    if "queries" not in args.skip:
        console.print(f"queries over {args.ledger_rows:,} ledger rows…")
        result["queries"] = _queries(base, args.ledger_rows)
        save()
    if "periods" not in args.skip:
        console.print(f"weekly and monthly rollups over {args.period_years} years…")
        result["periods"] = _periods(base, args.period_years)
        save()
    if "auth" not in args.skip:
        console.print(f"authentication: {args.auth_events:,} records with and without it…")
        result["auth"] = auth_cost.measure(base, heating_records(args.auth_events, seed=3))
        save()
    if "peers" not in args.skip:
        console.print(
            f"peers: a backlog of {args.peer_events:,} events, drained by each consumer in turn…"
        )
        result["peers"] = compare.measure(
            base, args.peer_events, rounds=args.peer_rounds, progress=console.print
        )
        save()
    _print(result)
    problems = compare.failed(result.get("peers", {}))
    if problems:
        raise SystemExit("peers: " + "; ".join(problems))


def _print(result: dict[str, Any]) -> None:
    table = Table("benchmark", "figure", "target", title="make bench (out/bench.json)")
    if "throughput" in result:
        n = result["naive"]
        for run in ("throughput", "scale_out"):
            if run not in result:
                continue
            t = result[run]
            workers = f"{t['worker_processes']} worker{'s' if t['worker_processes'] > 1 else ''}"
            table.add_row(
                f"end to end, {t['events']:,} events, {workers}",
                f"{t['events_per_s']:,} events/s ({t['ratio_vs_naive']}× the naive baseline)",
                "≥ 20,000; ≥ 10×",
            )
        table.add_row(
            f"naive baseline, {n['events']:,} events", f"{n['events_per_s']:,} events/s", ""
        )
    if "replay_ledger" in result.get("throughput", {}):
        t = result["throughput"]
        table.add_row(
            f"audit verify, {t['verify']['rows']:,} rows",
            f"{t['verify']['rows_per_s']:,} rows/s, {t['verify']['breaks']} breaks",
            "",
        )
        for name, source, target in (
            ("replay_ledger", "the ledger", "≥ 100,000"),
            ("replay_kafka", "Kafka", "≥ 40,000"),
        ):
            table.add_row(
                f"audit replay from {source}, {t[name]['events']:,} events",
                f"{t[name]['events_per_s']:,} events/s, {t[name]['differences']} differences",
                target,
            )
    if "latency" in result:
        lat = result["latency"]
        table.add_row(
            f"event → visible at {lat['offered_events_per_s']:,.0f}/s",
            f"p50 {lat['p50_s']} s, p99 {lat['p99_s']} s",
            "p99 < 2 s",
        )
    if "auth" in result:
        a = result["auth"]
        table.add_row(
            f"producer, {a['events']:,} records: SASL/SCRAM + ACLs vs none",
            f"{a['producer_median_with_auth']:,} vs {a['producer_median_without']:,} events/s "
            f"({a['throughput_change_pct']:+}%)",
            "",
        )
        table.add_row(
            "a new connection (bootstrap + metadata)",
            f"{a['connect_ms_median']['sasl_scram']} vs {a['connect_ms_median']['none']} ms "
            f"(+{a['connect_extra_ms']} ms)",
            "",
        )
    if table.row_count:  # empty when only the queries, periods or peers parts ran
        console.print(table)
    if "queries" in result:
        _print_engines(result["queries"])
    if "periods" in result:
        _print_periods(result["periods"])
    if "peers" in result:
        _print_peers(result["peers"])


def _print_peers(p: dict[str, Any]) -> None:
    """Measures down, consumers across, each peer followed by its ratio to CityStream."""
    consumers = p["consumers"]
    rounds = p.get("rounds", [])
    ours = consumers.get("citystream", {})
    columns = ["", compare.SHORT["citystream"]]
    peers = [key for key in consumers if key != "citystream"]
    for key in peers:
        columns += [compare.SHORT[key], "÷ CityStream"]
    table = Table(
        *columns,
        title=(
            f"the same backlog of {p['events']:,} events, drained by one process each "
            + (f"(each one's median of {len(rounds)} rounds) " if len(rounds) > 1 else "")
            + '(saved under "peers")'
        ),
    )

    def cell(figures: dict[str, Any], name: str) -> str:
        if "error" in figures:
            return "failed" if name == "events_per_s_from_start" else ""
        value = figures.get(name)
        return "not measured" if value is None else f"{value:,}"

    def ratio(figures: dict[str, Any], name: str) -> str:
        value = figures.get("ratio_to_citystream", {}).get(name)
        return "" if value is None else f"{value}×"

    for label, name in (
        ("events/s, process start → last row", "events_per_s_from_start"),
        ("events/s, first row → last row", "events_per_s_from_first_row"),
        ("seconds to the first row", "first_row_after_s"),
        ("consumer CPU µs/event (process tree)", "consumer_cpu_us_per_event"),
        ("PostgreSQL CPU µs/event", "postgres_cpu_us_per_event"),
    ):
        row = [label, cell(ours, name)]
        for key in peers:
            row += [cell(consumers[key], name), ratio(consumers[key], name)]
        table.add_row(*row)

    def landed(figures: dict[str, Any]) -> str:
        if "error" in figures:
            return ""
        return f"{figures['rows']:,} / {figures['rows_after_resend']:,}"

    def matches(figures: dict[str, Any]) -> str:
        return "" if "error" in figures else "yes" if figures["values_match"] else "NO"

    for label, show in (
        (f"rows: after the drain / after {RESEND_LABEL}", landed),
        ("Σ area, Σ timestamps equal the events'", matches),
    ):
        row = [label, show(ours)]
        for key in peers:
            row += [show(consumers[key]), ""]
        table.add_row(*row)
    console.print(table)
    for figures in consumers.values():
        if "error" in figures:
            console.print(f"  {figures['title']} failed: {figures['error']}")
        else:
            console.print(f"  {figures['title']}: {figures['guarantees']}")
    console.print(
        f"  backlog {p['backlog']}; bytes per event: "
        + ", ".join(f"{key} {figures['bytes_per_event']}" for key, figures in p["produced"].items())
    )
    if len(rounds) > 1:
        for number, run in enumerate(rounds, start=1):
            console.print(f"  round {number}: " + _round_line(run["consumers"]))


def _round_line(consumers: dict[str, Any]) -> str:
    """One round's events/s from process start, and CityStream's over the fastest peer's."""
    rates = {
        key: figures.get("events_per_s_from_start")
        for key, figures in consumers.items()
        if "error" not in figures
    }
    shown = ", ".join(f"{compare.SHORT[key]} {rate:,}" for key, rate in rates.items() if rate)
    peers = [rate for key, rate in rates.items() if key != "citystream" and rate]
    ours = rates.get("citystream")
    if ours and peers:
        shown += f"; CityStream ÷ the fastest peer {ours / max(peers):.2f}×"
    return shown + " (events/s from process start)"


def _print_periods(p: dict[str, Any]) -> None:
    engines = list(p["engines"])
    table = Table(
        f"{p['years']} years of daily rollups", *engines, title="weekly and monthly views (p95)"
    )
    figures = p["engines"]
    table.add_row("rollup rows", *(f"{figures[e]['daily_rows']:,}" for e in engines))
    for name in periods.QUERIES:
        table.add_row(name, *(f"{figures[e][name]['p95_ms']:,} ms" for e in engines))
    table.add_row(
        "views equal metric_daily", *(str(figures[e]["views_equal_daily"]) for e in engines)
    )
    console.print(table)


def _print_engines(q: dict[str, Any]) -> None:
    engines = list(q["engines"])
    table = Table(
        f"{q['ledger_rows']:,} ledger rows",
        *engines,
        title="the ledger at size, per database engine (p95 over repeated runs)",
    )
    figures = q["engines"]
    table.add_row(
        "ledger on disk (events + event_keys)",
        *(f"{figures[e]['ledger_mb']:,} MB" for e in engines),
    )
    table.add_row(
        "compressed chunks (older than 30 days)",
        *(str(figures[e]["compressed_chunks"]) for e in engines),
    )
    for name in figures[engines[0]]["dashboards"]:
        table.add_row(name, *(f"{figures[e]['dashboards'][name]['p95_ms']:,} ms" for e in engines))
    table.add_row(
        "30-day daily series per pledge, rollup (target p95 < 50 ms)",
        *(f"≤ {figures[e]['rollup_p95_ms_max']} ms" for e in engines),
    )
    table.add_row(
        "the same from the raw ledger",
        *(f"≤ {figures[e]['raw_p95_ms_max']} ms" for e in engines),
    )
    table.add_row(
        "audit verify, whole ledger",
        *(
            f"{figures[e]['verify']['seconds']} s ({figures[e]['verify']['rows_per_s']:,} rows/s, "
            f"{figures[e]['verify']['breaks']} breaks)"
            for e in engines
        ),
    )
    console.print(table)


if __name__ == "__main__":
    main()

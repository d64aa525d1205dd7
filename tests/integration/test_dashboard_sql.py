"""Layer 3 of "Grafana without Grafana": every panel's and every alert rule's SQL, expanded
the way Grafana's PostgreSQL data source expands it (dashboards/macros.py), run against the
real PostgreSQL as the read-only role ``grafana_reader`` after a simulated 2024.

The year goes in the cheapest real way: the pledge catalogue through ``pledges load``, then
the simulator's records (valid events, corrections, re-sends, invalid records) through the
sink's own ``prepare`` and ``streams.db.ledger.write_batch``, as a worker would write them.
What the simulated year does not send is added by hand (:func:`supplement`): events of every
declared event type it has none of, built from the type's declared example, with a
correction retracting one; and for a level metric (a rate reported from time to time) a
series of reports — a late one, two of the same moment, one from a subdistrict — and a
correction of the one that counts. So every family's board, the new ones included, shows
rows, and its figures are checked against sums and latest reports computed here.
The SQL comes from the committed JSON and YAML that Grafana loads.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from dashboards import audit, build, pipeline, pledges
from dashboards.macros import Context, TimeRange, Variable, expand
from dashboards.sqlparts import Display, displays, milestone_event_types
from schemas.catalogue import EVENT_FAMILIES, LEVEL_METRICS, Catalogue, Pledge
from schemas.corrections import Correction
from schemas.envelope import CST, Envelope
from schemas.family import EventKind, Family
from schemas.indicators import IndicatorReport
from schemas.topics import ALL, BY_EVENT_TYPE, FAMILIES
from services.pledges.reads import progress
from services.pledges.rules import Status
from services.pledges.store import load, validated_catalogue
from services.simulator.plan import Plan, plan
from streams.batch import Record, prepare
from streams.db import connect, connect_async
from streams.db.ledger import write_batch
from streams.db.migrate import migrate
from streams.db.roles import OWNER_ROLE
from streams.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = timezone(timedelta(hours=8))
AUGUST_END = datetime(2024, 8, 31, 23, 59, 59, 999000, tzinfo=SHANGHAI)
WHOLE_2024 = TimeRange.of(
    datetime(2024, 1, 1, tzinfo=SHANGHAI),
    datetime(2024, 12, 31, 23, 59, 59, 999000, tzinfo=SHANGHAI),
)
# The overview as shown on 31 August 2024: the day the simulator designs each pledge's pace for.
TO_AUGUST = TimeRange.of(datetime(2024, 1, 1, tzinfo=SHANGHAI), AUGUST_END)
PARTITIONS = 3

NUMERIC = {20, 21, 23, 700, 701, 1700}  # int8, int2, int4, float4, float8, numeric
TIMES = {1082, 1114, 1184}  # date, timestamp, timestamptz
TEXTS = {18, 19, 25, 1043}  # char, name, text, varchar


# --------------------------------------------------------------------------- the simulated year


@dataclass(frozen=True)
class Year:
    settings: Settings
    plan: Plan
    catalogue: Catalogue
    # Written after the plan's records: what the simulated year does not send (supplement).
    supplement: tuple[Envelope, ...] = ()

    @property
    def events(self) -> tuple[Envelope, ...]:
        """Every valid event in the ledger once, originals and corrections."""
        return (*self.plan.events, *self.supplement)

    @property
    def corrections(self) -> tuple[Correction, ...]:
        return tuple(e for e in self.events if isinstance(e, Correction))


# A record: topic, key, value, the time the broker stamped it.
Sent = tuple[str, bytes | None, bytes, datetime]


def _sent(event: Envelope) -> Sent:
    # Sent a minute after the department's reported_at (the broker's clock judges it).
    spec = BY_EVENT_TYPE[event.event_type_name]
    value = event.model_dump_json().encode()
    return spec.name, event.partition_key(), value, event.reported_at + timedelta(minutes=1)


async def _write(settings: Settings, sent: list[Sent]) -> None:
    specs = {spec.name: spec for spec in ALL}
    by_topic: dict[str, list[Record]] = defaultdict(list)
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    for topic, key, value, sent_at in sent:  # in send order: corrections after what they correct
        partition = zlib.crc32(key or b"") % PARTITIONS
        offset = offsets[(topic, partition)]
        offsets[(topic, partition)] += 1
        by_topic[topic].append(
            Record(topic, partition, offset, value, int(sent_at.timestamp() * 1000))
        )
    conn = await connect_async(settings)
    try:
        for topic, records in by_topic.items():
            await write_batch(conn, prepare(specs[topic], records))
    finally:
        await conn.close()


@pytest.fixture
def year(isolated: Settings) -> Year:
    catalogue = validated_catalogue()
    with connect(isolated) as conn:
        load(conn, catalogue=catalogue)
    simulated = plan(2024, catalogue=catalogue)
    added = supplement(simulated)
    sent: list[Sent] = [(r.topic, r.key, r.value, r.sent_at) for r in simulated.records]
    asyncio.run(_write(isolated, [*sent, *map(_sent, added)]))
    return Year(isolated, simulated, catalogue, added)


# --------------------------------------------------------------------------- what the year lacks

FIXTURE = uuid.UUID("3f0c2a7e-5d1b-4e8f-9a64-2b7d9c1e0f35")
FIRST_DAY = date(2024, 1, 1)
LAST_DAY = date(2024, 12, 31)


def _at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=SHANGHAI)


def _build(
    model: type[Envelope],
    family: str,
    label: str,
    *,
    district: str,
    occurred_at: datetime,
    reported_at: datetime,
    **fields: Any,
) -> Envelope:
    envelope = {
        "event_type": model.event_type_name,
        "event_id": str(uuid.uuid5(FIXTURE, label)),
        "department": family,
        "district": district,
        "occurred_at": occurred_at.isoformat(),
        "reported_at": reported_at.isoformat(),
        "source_ref": f"FX-{label}",
    }
    return model.model_validate({**envelope, **fields})


def _examples(family: Family, kind: EventKind) -> list[Envelope]:
    """Two events of ``kind`` from its declared example: in Shifo in March, in Gouzhao in May
    (the second one's project renamed, so a milestone names two projects)."""
    example = dict(kind.example)
    project = str(example.pop("project", kind.label_zh))
    return [
        _build(
            kind.model,
            family.name,
            f"{kind.name}-{n}",
            district=district,
            occurred_at=occurred_at,
            reported_at=occurred_at + timedelta(days=1),
            project=project if n == 1 else f"{project}-b",
            **example,
        )
        for n, district, occurred_at in ((1, "shifo", _at(3, 15)), (2, "gouzhao", _at(5, 20)))
    ]


def _retraction(family: Family, wrong: Envelope) -> Correction:
    """A correction taking back the whole of ``wrong``'s first measure."""
    metric, quantity = next(iter(wrong.measures().items()))
    correction = _build(
        family.correction,
        family.name,
        f"{family.correction_type}-{wrong.event_id}",
        district=str(wrong.district),
        occurred_at=_at(6, 15),
        reported_at=_at(6, 16),
        project=wrong.project,
        corrects=str(wrong.event_id),
        metric=metric,
        delta=str(-quantity),
        reason="重复上报 / reported twice",
        approved_by="王芳 (科长)",
    )
    assert isinstance(correction, Correction)
    return correction


# A level's reports: (district, measured, reported, level in %, counts given); the figures are
# (first, subdistrict, March, June, June again, late May), then a correction of June again.
LEVEL_SERIES = {
    "housing.return_rate_pct": ("92.00", "95.10", "93.10", "93.80", "94.20", "96.00", "-0.30"),
    "education.kindergarten_inclusive_rate_pct": (
        "89.00",
        "90.50",
        "90.10",
        "91.20",
        "91.60",
        "94.00",
        "-0.30",
    ),
}


def _level_reports(family: Family, kind: EventKind, metric: str) -> list[Envelope]:
    """Reports of a level: the first by percentage alone, the others with numerator and
    denominator; two measured at the same moment (the one reported later counts); one
    measured in May but sent in July, after the June ones (it must not override them); one
    from a subdistrict; and a correction of the June report that counts."""
    first, shifo, march, june, june_again, late, delta = LEVEL_SERIES[metric]

    def report(
        n: int, district: str, measured: datetime, reported: datetime, level: str
    ) -> Envelope:
        counts = {"numerator": int(Decimal(level) * 100), "denominator": 10_000}
        fields = {"level_pct": level} if n == 1 else counts
        return _build(
            kind.model,
            family.name,
            f"{kind.name}-{n}",
            district=district,
            occurred_at=measured,
            reported_at=reported,
            **fields,
        )

    reports = [
        report(1, "zone", _at(1, 15), _at(1, 20), first),
        report(2, "shifo", _at(2, 10), _at(2, 12), shifo),
        report(3, "zone", _at(3, 31), _at(4, 3), march),
        report(4, "zone", _at(6, 30, 10), _at(7, 2), june),
        report(5, "zone", _at(6, 30, 10), _at(7, 5), june_again),
        report(6, "zone", _at(5, 31), _at(7, 20), late),
    ]
    correction = _build(
        family.correction,
        family.name,
        f"{family.correction_type}-{kind.name}",
        district="zone",
        occurred_at=_at(7, 10),
        reported_at=_at(7, 10, 15),
        corrects=str(reports[4].event_id),
        metric=metric,
        delta=delta,
        reason="分母漏计一所民办园 / one private kindergarten missing from the denominator",
        approved_by="李强 (处长)",
    )
    return [*reports, correction]


def _level_correction(family: Family, metric: str, reports: list[Envelope]) -> Correction:
    """A correction of the report that counts (the latest), by one hundredth of a point."""
    latest = max(reports, key=lambda e: (e.occurred_at, e.reported_at, e.event_id))
    correction = _build(
        family.correction,
        family.name,
        f"{family.correction_type}-{latest.event_id}",
        district=str(latest.district),
        occurred_at=latest.reported_at + timedelta(days=1),
        reported_at=latest.reported_at + timedelta(days=1, hours=1),
        project=latest.project,
        corrects=str(latest.event_id),
        metric=metric,
        delta="-0.01",
        reason="四舍五入错误 / rounded the wrong way",
        approved_by="李强 (处长)",
    )
    assert isinstance(correction, Correction)
    return correction


def supplement(year: Plan) -> tuple[Envelope, ...]:
    """Events of what ``year`` does not send, so that every panel of every family has rows:
    for each event type it has no event of, :func:`_examples`, and for each family it then
    has no correction of, a correction retracting one of them; for each level metric it has
    no report of, :func:`_level_reports`, and for one whose reports it never corrects, a
    correction of the report that counts (:func:`_level_correction`)."""
    sent = {event.event_type_name for event in year.events}
    corrected = {c.metric for c in year.corrections}
    added: list[Envelope] = []
    for family in FAMILIES:
        examples: list[Envelope] = []
        for kind in family.events:
            if issubclass(kind.model, IndicatorReport):
                metric = kind.model.metric
                if kind.name not in sent:
                    added += _level_reports(family, kind, metric)
                elif metric not in corrected:
                    reports = [e for e in year.events if e.event_type_name == kind.name]
                    added.append(_level_correction(family, metric, reports))
            elif kind.name not in sent:
                examples += _examples(family, kind)
        added += examples
        if examples and family.correction_type not in sent:
            added.append(_retraction(family, examples[1]))
    return tuple(added)


def _reader_password(settings: Settings) -> str:
    # Derived from the admin secret: not in git, and the same for every test session on
    # this cluster (the role and its password are cluster-wide).
    admin = settings.admin_database_url
    assert admin is not None, "the local stack provides CITYSTREAM_ADMIN_DATABASE_URL"
    return hashlib.sha256(b"grafana_reader/test:" + admin.get_secret_value().encode()).hexdigest()


@pytest.fixture
def reader(isolated: Settings) -> Iterator[psycopg.Connection[Any]]:
    """A session logged in as grafana_reader, the way Grafana's data source logs in."""
    password = _reader_password(isolated)
    # `migrate` sets LOGIN and the password from CITYSTREAM_GRAFANA_DB_PASSWORD.
    migrate(isolated.model_copy(update={"grafana_db_password": SecretStr(password)}))
    conninfo = make_conninfo(
        isolated.database_url.get_secret_value(),
        user="grafana_reader",
        password=password,
        options=f"-c search_path={isolated.db_schema}",
        application_name="grafana-reader-test",
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("grafana_reader",)
        yield conn


def _timescaledb_mode() -> bool:
    provisioned = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/citystream.yaml").read_text("utf-8")
    )
    return bool(provisioned["datasources"][0]["jsonData"].get("timescaledb"))


def _board(uid: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (ROOT / build.DASHBOARD_DIR / f"{uid}.json").read_text(encoding="utf-8")
    )
    return loaded


# --------------------------------------------------------------------------- running SQL


@dataclass(frozen=True)
class Result:
    columns: list[tuple[str, int]]
    rows: list[tuple[Any, ...]]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def column(self, name: str) -> list[Any]:
        index = self.names.index(name)
        return [row[index] for row in self.rows]


class Runner:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.count = 0

    def run(self, text: str) -> Result:
        self.count += 1
        try:
            cursor = self.conn.execute(text.encode())
        except psycopg.Error as exc:
            raise AssertionError(f"{exc}\n--- SQL as expanded:\n{text}") from exc
        assert cursor.description is not None
        columns = [(c.name, c.type_code) for c in cursor.description]
        return Result(columns, cursor.fetchall())


def _time_range(uid: str, now: datetime) -> tuple[TimeRange, timedelta]:
    if uid == pipeline.UID:
        return TimeRange.of(now - timedelta(hours=1), now + timedelta(minutes=1)), timedelta(
            minutes=1
        )
    if uid == pledges.UID:
        return TO_AUGUST, timedelta(days=1)
    return WHOLE_2024, timedelta(days=1)


def _options(result: Result) -> list[tuple[str, str]]:
    names = result.names
    value = names.index("__value") if "__value" in names else 0
    text = names.index("__text") if "__text" in names else value
    return [(str(row[value]), str(row[text])) for row in result.rows]


def _variable_sets(
    board: dict[str, Any], runner: Runner, time_range: TimeRange, interval: timedelta
) -> list[dict[str, Variable]]:
    """Every combination to run: "All" where a variable allows it, else each option."""
    sets: list[dict[str, Variable]] = [{}]
    for spec in board.get("templating", {}).get("list", []):
        name, multi, include_all = spec["name"], spec["multi"], spec["includeAll"]
        grown = []
        for assigned in sets:
            context = Context(time_range, interval, assigned, _timescaledb_mode())
            options = _options(runner.run(expand(spec["query"], context)))
            assert options, f"{board['uid']}: variable ${name} has no options"
            if include_all:
                values, texts = zip(*options, strict=True)
                grown.append({**assigned, name: Variable(name, values, texts, multi, True)})
            else:
                grown += [
                    {**assigned, name: Variable(name, (value,), (text,), multi, False)}
                    for value, text in options
                ]
        sets = grown
    return sets


@dataclass(frozen=True)
class Run:
    board: str
    panel: dict[str, Any]
    variables: dict[str, Variable]
    result: Result

    @property
    def title(self) -> str:
        return str(self.panel["title"])

    def value(self, name: str) -> str:
        return self.variables[name].values[0]


def run_board(uid: str, runner: Runner, now: datetime) -> list[Run]:
    """Every target of every panel, for every variable combination (and every repeat)."""
    board = _board(uid)
    time_range, interval = _time_range(uid, now)
    runs = []
    for variables in _variable_sets(board, runner, time_range, interval):
        repeat: str | None = None
        for panel in board["panels"]:
            if panel["type"] == "row":
                repeat = panel.get("repeat")
                continue
            assignments = [variables]
            if repeat is not None:
                every = variables[repeat]
                assignments = [
                    {**variables, repeat: Variable(repeat, (v,), (t,), every.multi, True)}
                    for v, t in zip(every.values, every.display, strict=True)
                ]
            for assigned in assignments:
                context = Context(time_range, interval, assigned, _timescaledb_mode())
                for target in panel["targets"]:
                    result = runner.run(expand(target["rawSql"], context))
                    check_shape(uid, panel, target, result)
                    runs.append(Run(uid, panel, assigned, result))
    return runs


def check_shape(uid: str, panel: dict[str, Any], target: dict[str, Any], result: Result) -> None:
    """The columns the panel type needs."""
    where = f"{uid} / {panel['title']}"
    types = [oid for _, oid in result.columns]
    assert result.columns, where
    if target["format"] == "time_series":
        assert result.names[0] == "time" and types[0] in TIMES, (where, result.columns)
        assert any(oid in NUMERIC for oid in types[1:]), (where, result.columns)
        strings = [name for name, oid in result.columns if oid in TEXTS]
        assert strings in ([], ["metric"]), (where, result.columns)  # the series' name
        stamps = result.column("time")
        assert stamps == sorted(stamps), f"{where}: time series rows must be sorted by time"
        return
    kind = panel["type"]
    fields = panel.get("options", {}).get("reduceOptions", {}).get("fields", "")
    if kind in ("gauge", "stat") and fields != "/.*/":
        assert all(oid in NUMERIC for oid in types), (where, result.columns)
        assert len(result.rows) == 1, (where, result.rows)
    elif kind == "stat":  # text values (a status, a date)
        assert len(result.rows) == 1, (where, result.rows)
    elif kind == "bargauge":
        assert types[0] in TEXTS and all(oid in NUMERIC for oid in types[1:]), (where, types)
    else:
        assert kind == "table", where


# --------------------------------------------------------------------------- what data exists


def _local_day(moment: datetime) -> date:
    return moment.astimezone(CST).date()


def _totals(events: tuple[Envelope, ...]) -> dict[str, Decimal]:
    """Metric → what the events add up to (corrections included); levels are not summed."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for event in events:
        for metric, quantity in event.measures().items():
            if metric not in LEVEL_METRICS:
                totals[metric] += quantity
    return dict(totals)


def _reports(events: tuple[Envelope, ...], metric: str) -> list[Envelope]:
    """A level's reports measured in 2024, the one that counts last (pledge rules' order)."""
    found = [
        e
        for e in events
        if not isinstance(e, Correction)
        and metric in e.measures()
        and FIRST_DAY <= _local_day(e.occurred_at) <= LAST_DAY
    ]
    return sorted(found, key=lambda e: (e.occurred_at, e.reported_at, e.event_id))


def latest_level(events: tuple[Envelope, ...], metric: str) -> Decimal | None:
    """A level at the end of 2024: its latest report plus that report's corrections."""
    reports = _reports(events, metric)
    if not reports:
        return None
    latest = reports[-1]
    deltas = [
        e.measures()[metric]
        for e in events
        if isinstance(e, Correction)
        and e.corrects == latest.event_id
        and _local_day(e.occurred_at) <= LAST_DAY
    ]
    return latest.measures()[metric] + sum(deltas, Decimal(0))


def _level_display(title: str) -> Display | None:
    """The level a panel shows, by its title."""
    return next((d for d in displays().values() if d.level and d.label_zh in title), None)


def _carries(events: tuple[Envelope, ...], pledge: Pledge, until: date) -> list[Envelope]:
    """The plan's events that make up a pledge's figure (its metric, subdistrict, days)."""
    return [
        event
        for event in events
        if pledge.metric in event.measures()
        and (pledge.district is None or str(event.district) == pledge.district)
        and pledge.start <= _local_day(event.occurred_at) <= until
    ]


def expects_rows(run: Run, year: Year) -> bool:
    """Whether the simulated year holds data for this panel (every panel must then show some)."""
    title = run.title
    family = run.board.removeprefix("citystream-")
    corrections = year.corrections
    if run.board == audit.UID:
        pledge = year.catalogue.pledge(run.value("pledge"))
        behind = _carries(year.events, pledge, LAST_DAY)
        if title.startswith("事件明细"):
            return bool(behind)
        if title.startswith("更正记录"):
            return any(isinstance(event, Correction) for event in behind)
    if run.board == pipeline.UID and title.startswith("主题重建记录"):
        return False  # the simulated year has no topic deleted and created again
    if family in EVENT_FAMILIES:
        level = _level_display(title)
        if level is not None:  # a stat has its one row, NULL without a report
            return run.panel["type"] == "stat" or bool(_reports(year.events, level.metric))
        if title.startswith("更正"):
            return any(c.event_type_name == f"{family}.correction" for c in corrections)
        if title.startswith("累计"):
            metric = next(d for d in displays().values() if title.endswith(d.label_en.lower()))
            return _totals(year.events).get(metric.metric, Decimal(0)) != 0
        if title.startswith("项目节点"):
            return any(
                e.event_type_name in milestone_event_types(family) for e in _in_2024(year.events)
            )
    return True


def _in_2024(events: tuple[Envelope, ...]) -> list[Envelope]:
    return [e for e in events if FIRST_DAY <= _local_day(e.occurred_at) <= LAST_DAY]


# --------------------------------------------------------------------------- the tests


def test_every_panel_query_runs_as_grafana_reader(
    year: Year, reader: psycopg.Connection[Any]
) -> None:
    runner = Runner(reader)
    started = time.monotonic()
    now = datetime.now(UTC)
    runs = [run for uid in sorted(build_uids()) for run in run_board(uid, runner, now)]
    elapsed = time.monotonic() - started
    print(
        f"\n{runner.count} queries ({len(runs)} panel queries) as grafana_reader in {elapsed:.2f} s"
    )

    for run in runs:
        assert bool(run.result.rows) == expects_rows(run, year), (
            f"{run.board} / {run.title} {[(k, v.values[:3]) for k, v in run.variables.items()]}: "
            f"{len(run.result.rows)} rows"
        )
    assert {run.board for run in runs} == build_uids()

    # The figures themselves, against independent computations.
    totals = _totals(year.events)
    family_runs = [run for run in runs if run.board.removeprefix("citystream-") in EVENT_FAMILIES]
    assert {run.board for run in family_runs} == {family.dashboard_uid for family in FAMILIES}
    for run in family_runs:
        level = _level_display(run.title)
        if run.panel["type"] == "stat" and level is not None:
            assert run.result.rows[0][0] == latest_level(year.events, level.metric), run.title
        elif run.panel["type"] == "stat":
            display = next(d for d in displays().values() if d.title == run.title)
            total = totals.get(display.metric, Decimal(0))
            assert run.result.rows[0][0] == total / display.scale, run.title
        elif level is not None and run.panel["type"] == "table":
            reports = _reports(year.events, level.metric)
            assert len(run.result.rows) == len(reports), run.title
            (current,) = [
                row
                for row in run.result.rows
                if row[run.result.names.index("说明 · Note")] == "当前水平 · Current level"
            ]
            standing = current[run.result.names.index("现值 · Standing (%)")]
            assert standing == latest_level(year.events, level.metric), run.title
            counts = run.result.column("分母 · Denominator")
            assert any(count is not None for count in counts), run.title
        elif run.title == "项目节点 · Project milestones":
            family = run.board.removeprefix("citystream-")
            types = milestone_event_types(family)
            reached = [e for e in _in_2024(year.events) if e.event_type_name in types]
            assert len(run.result.rows) == len(reached), run.board
            retracted = [
                e
                for e in reached
                if 1 + sum(c.delta for c in year.corrections if c.corrects == e.event_id) <= 0
            ]
            counted = run.result.column("计入 · Counted")
            assert sum(c.startswith("否") for c in counted) == len(retracted), run.board
        elif run.title.startswith("更正") and run.panel["type"] == "table":
            # Each correction beside the original it corrects, found by id through
            # event_keys (the ledger has no other index of ids): its own reference.
            by_id = {e.event_id: e for e in year.events}
            corrected = run.result.column("被更正事件 · Corrected event")
            refs = run.result.column("原台账编号 · Original source ref")
            for event_id, ref in zip(corrected, refs, strict=True):
                assert ref == by_id[uuid.UUID(event_id)].source_ref, run.board
    # the supplement's level series: its reports and the correction of the one that counts
    for metric in LEVEL_METRICS:
        assert _reports(year.events, metric), metric
    assert any(c.metric in LEVEL_METRICS for c in year.corrections), (
        "no correction of a level's report"
    )

    python = {row.pledge_id: row for row in progress(reader, on=AUGUST_END.date(), year=2024)}
    assert len(python) == len(year.catalogue.pledges_for(2024))
    (table,) = [
        run
        for run in runs
        if run.board == pledges.UID
        and run.title == "承诺一览 · All pledges"
        and len(run.variables["department"].values) > 1
    ]
    assert sorted(table.result.column("pledge_id")) == sorted(python), "every pledge of 2024"
    levels = {p.id for p in year.catalogue.pledges_for(2024) if p.progress_from == "level"}
    assert levels, "no level pledge in 2024"
    for values in table.result.rows:
        cell = dict(zip(table.result.names, values, strict=True))
        if cell["pledge_id"] in levels:  # a rate: in percent, its gap in percentage points
            assert cell["目标 · Target"].endswith("%") and cell["实际 · Actual"].endswith("%")
            assert cell["差距 · Gap"].endswith(" 个百分点"), cell
    gauges = [run for run in runs if run.board == pledges.UID and run.panel["type"] == "gauge"]
    assert len(gauges) == len([p for p in python.values() if p.status != Status.NOT_MEASURABLE])
    for run in gauges:
        row = python[run.value("pledge")]
        assert row.actual_to_date is not None
        expected = (100 * row.actual_to_date / row.target).quantize(Decimal("0.1"))
        assert run.result.rows[0][0] == expected, row.pledge_id
    statuses = {
        run.value("pledge"): run.result.rows[0][0]
        for run in runs
        if run.board == pledges.UID and run.title == "状态 · Status"
    }
    assert statuses == {pid: row.status.value for pid, row in python.items() if pid in statuses}
    assert {"on_track", "behind", "achieved"} <= set(statuses.values())  # not all alike

    checks = [run for run in runs if run.board == audit.UID and run.title.startswith("账本核对")]
    assert len(checks) == len(gauges)
    for run in checks:
        figure, added_up = run.result.rows[0]
        assert figure == added_up, run.value("pledge")

    pipe = {
        run.title: run.result.rows[0][0] if run.result.rows else None
        for run in runs
        if run.board == pipeline.UID
    }
    assert pipe["已接受 · Accepted"] == len(year.events)
    assert pipe["无法存储 · Unprocessable records"] == 0
    assert pipe["主题重建 · Topic resets"] == 0
    assert pipe["主题重建记录 · Topic resets"] is None
    assert pipe["已拒收 · Rejected (dead letters)"] == len(year.plan.invalid)
    assert pipe["接收 · Records in"] == len(year.events) + len(year.plan.invalid)
    chain = [run for run in runs if run.title == "哈希链 · Hash chain"]
    assert chain and all(run.result.rows == [(0,)] for run in chain)


def build_uids() -> set[str]:
    return {path.stem for path in (ROOT / build.DASHBOARD_DIR).glob("*.json")}


def _alert_rules() -> dict[str, dict[str, Any]]:
    provisioned = yaml.safe_load((ROOT / build.ALERTING_FILE).read_text(encoding="utf-8"))
    return {rule["uid"]: rule for group in provisioned["groups"] for rule in group["rules"]}


def evaluate(
    rule: dict[str, Any], runner: Runner, at: datetime
) -> tuple[Result, set[tuple[str, ...]]]:
    """Run query A over the rule's window ending ``at``; the label sets condition B fires for."""
    queries = {query["refId"]: query for query in rule["data"]}
    source = queries["A"]
    window = timedelta(seconds=source["relativeTimeRange"]["from"])
    context = Context(TimeRange.of(at - window, at), timedelta(minutes=1), {}, _timescaledb_mode())
    result = runner.run(expand(source["model"]["rawSql"], context))
    # Grafana's numeric (table) data: one number per row, the other columns are its labels,
    # and no two rows share a label set.
    numeric = [i for i, (_, oid) in enumerate(result.columns) if oid in NUMERIC]
    assert len(numeric) == 1, (rule["uid"], result.columns)
    labels = [i for i, (_, oid) in enumerate(result.columns) if oid in TEXTS]
    assert len(labels) + 1 == len(result.columns), (rule["uid"], result.columns)
    label_sets = [tuple(row[i] for i in labels) for row in result.rows]
    assert len(label_sets) == len(set(label_sets)), rule["uid"]
    condition = queries[rule["condition"]]["model"]
    assert condition["type"] == "threshold" and condition["expression"] == "A"
    (evaluator,) = [c["evaluator"] for c in condition["conditions"]]
    assert evaluator["type"] == "gt"
    (threshold,) = evaluator["params"]
    firing = {
        labels_of
        for labels_of, row in zip(label_sets, result.rows, strict=True)
        if row[numeric[0]] > threshold
    }
    return result, firing


def test_alert_rules_run_and_fire_where_they_should(
    year: Year, reader: psycopg.Connection[Any]
) -> None:
    rules = _alert_rules()
    assert set(rules) == {
        "citystream-pledge-at-risk",
        "citystream-deadletter-spike",
        "citystream-unprocessable",
        "citystream-topic-reset",
        "citystream-data-stale",
    }
    runner = Runner(reader)
    now = datetime.now(UTC)

    result, firing = evaluate(rules["citystream-pledge-at-risk"], runner, AUGUST_END)
    python = progress(reader, on=AUGUST_END.date(), year=2024)
    flagged = {
        row.pledge_id
        for row in python
        if row.status in (Status.AT_RISK, Status.BEHIND)
        and row.start <= AUGUST_END.date() <= row.deadline
    }
    assert flagged and {labels[0] for labels in firing} == flagged
    assert len(result.rows) > len(firing)  # on-track pledges are rows too, not firing
    # level pledges (rates, read from the ledger, never from metric_daily) are judged too
    severity = dict(zip(result.column("pledge"), result.column("severity"), strict=True))
    by_id = {row.pledge_id: row for row in python}
    levels = [p.id for p in year.catalogue.pledges_for(2024) if p.progress_from == "level"]
    assert levels and all(pid in severity for pid in levels)
    for pid in levels:
        status = by_id[pid].status
        assert severity[pid] == {Status.BEHIND: 2, Status.AT_RISK: 1}.get(status, 0), pid

    result, firing = evaluate(rules["citystream-deadletter-spike"], runner, now)
    assert sum(result.column("dead_letters")) == len(year.plan.invalid) > 0
    assert not firing  # a handful of bad records is not a spike

    result, firing = evaluate(rules["citystream-data-stale"], runner, now)
    assert len(result.rows) == 1 and not firing
    _, firing = evaluate(
        rules["citystream-data-stale"],
        runner,
        now + timedelta(minutes=pipeline.STALE_AFTER_MINUTES + 5),
    )
    assert firing == {()}

    # Nothing in the simulated year that could not be stored, no topic re-created ...
    for uid in ("citystream-unprocessable", "citystream-topic-reset"):
        result, firing = evaluate(rules[uid], runner, now)
        assert result.rows == [] and not firing, uid
    # ... until a worker records one of each.
    with connect(year.settings) as app:
        app.execute(
            "INSERT INTO deadletters (topic, partition, kafka_offset, reason, message) "
            "VALUES ('city.heating.v1', 0, 999999, 'unprocessable', 'numeric overflow')"
        )
        app.execute(
            "INSERT INTO topic_incarnations (topic, incarnation, topic_id, reason) "
            "VALUES ('city.heating.v1', 2, gen_random_uuid(), 'topic reset: test')"
        )
        app.commit()
    for uid in ("citystream-unprocessable", "citystream-topic-reset"):
        _, firing = evaluate(rules[uid], runner, datetime.now(UTC))
        assert firing == {("city.heating.v1",)}, uid
    print(f"\n{runner.count} alert queries as grafana_reader")


def test_grafana_reader_reads_but_cannot_write(
    isolated: Settings, reader: psycopg.Connection[Any]
) -> None:
    assert reader.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert reader.execute("SHOW statement_timeout").fetchone() == ("30s",)
    with pytest.raises(errors.ReadOnlySqlTransaction):
        reader.execute(
            "INSERT INTO deadletters (topic, partition, kafka_offset, reason, message) "
            "VALUES ('t', 0, 0, 'r', 'm')"
        )
    # Behind the read-only default, the grants themselves refuse every write.
    reader.execute("SET default_transaction_read_only = off")
    writes = [
        "INSERT INTO deadletters (topic, partition, kafka_offset, reason, message) "
        "VALUES ('t', 0, 0, 'r', 'm')",
        "UPDATE metric_daily SET total = 0",
        "DELETE FROM events",
        "TRUNCATE consumer_offsets",
        "CREATE TABLE grafana_was_here (x int)",
    ]
    for statement in writes:
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute(statement.encode())

    # A table a later migration creates (as the owner role) is readable without a grant of
    # its own.
    with connect(isolated, admin=True) as owner:
        owner.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(OWNER_ROLE)))
        owner.execute("CREATE TABLE later_rollup (n integer)")
        owner.execute("INSERT INTO later_rollup VALUES (7)")
        owner.commit()
    assert reader.execute("SELECT n FROM later_rollup").fetchall() == [(7,)]
    with pytest.raises(errors.InsufficientPrivilege):
        reader.execute("INSERT INTO later_rollup VALUES (8)")


def test_hash_chain_panel_finds_an_edited_link(year: Year, reader: psycopg.Connection[Any]) -> None:
    board = _board(audit.UID)
    status = next(p for p in board["panels"] if p.get("title") == "哈希链 · Hash chain")
    context = Context(WHOLE_2024, timedelta(days=1), {}, _timescaledb_mode())
    query = expand(status["targets"][0]["rawSql"], context)
    runner = Runner(reader)
    assert runner.run(query).rows == [(0,)]
    # Someone with a superuser's rights rewrites a ledger row's link (the sort of edit the
    # chain exists to expose; the workers' role cannot UPDATE the ledger at all).
    with connect(year.settings, admin=True) as app:
        app.execute(
            sql.SQL(
                "UPDATE events SET prev_hash = {} WHERE (topic, partition, kafka_offset) = "
                "(SELECT topic, partition, max(kafka_offset) FROM events "
                " WHERE topic = 'city.parking.v1' GROUP BY topic, partition LIMIT 1)"
            ).format(sql.Literal(b"\x01" * 32))
        )
        app.commit()
    assert runner.run(query).rows == [(1,)]

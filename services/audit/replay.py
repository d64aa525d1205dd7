"""``audit replay``: recompute every rollup from history with the workers' own code and
list every difference from the live ``metric_daily``.

Two sources, one result:

- **kafka** re-reads the ``city.*`` topics (group-less, :mod:`services.kafka.reader`) and
  judges every record as the sink did: :func:`schemas.validation.decode` against the
  record's own timestamp, then the acceptance rules of :mod:`streams.acceptance`
  (redeliveries count once, a reused id is refused, corrections must be backed by their
  original). Records are judged one at a time in the order the departments sent them
  (partitions merged by record timestamp).
- **ledger** re-reads the ``events`` table alone (for when Kafka no longer holds the
  records) in ingest order, batch by batch as the sink wrote them, and judges every
  correction again by the same rules; a ledger correction the rules refuse is listed.

Either way the accepted events go through :func:`streams.rollup.rollup`, the function the
sink upserts with, and the result is compared with ``metric_daily`` row by row (day,
subdistrict, metric: total and event count).

A window (``--from`` / ``--to``) replays part of the history without losing the rest:
ledger rows before the window are taken as recorded (as the starting state, and in the
totals), and ledger rows after it are taken out of the live rollups before comparing. For
Kafka the window is a range of offsets (Kafka's time index, record timestamps), for the
ledger a range of ``ingested_at``. Kafka records beyond what the workers have stored
(``consumer_offsets``) are not replayed: the live rollups cannot contain them yet.

All database reads happen in one snapshot (:mod:`streams.db.audit`), so the workers may keep
running. The judging itself, without I/O, is :mod:`services.audit.rejudge`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from schemas.topics import TopicSpec
from services.audit.common import ProgressHook, select_topics
from services.audit.rejudge import (
    OTHER_TOPIC,
    Item,
    State,
    Tally,
    Ticker,
    after,
    baseline,
    kafka_items,
    ledger_items,
)
from streams.db import audit as db
from streams.db.cursors import heads, incarnations
from streams.rollup import RollupKey, Totals, rollup
from streams.settings import Settings

Source = Literal["kafka", "ledger"]


@dataclass(frozen=True)
class Difference:
    day: date
    district: str
    metric: str
    live_total: Decimal
    replayed_total: Decimal
    live_events: int
    replayed_events: int

    @property
    def delta(self) -> Decimal:
        """What the live rollup holds beyond the replayed one."""
        return self.live_total - self.replayed_total


@dataclass(kw_only=True)
class Replay(Tally):
    """A replay's result: what it counted while judging (:class:`Tally`), the recomputed
    rollups and the live ones they are compared with."""

    source: Source
    topics: tuple[str, ...]  # full topic names replayed
    totals: dict[RollupKey, Totals]  # recomputed
    live: dict[RollupKey, tuple[Decimal, int]]  # metric_daily for the same history
    unconsumed: int = 0  # Kafka records inside the window that no worker has stored yet
    # Kafka only: topics whose retention is not unlimited (their oldest records may be gone;
    # the ledger rows before Kafka's first offset are then the starting state).
    limited_retention: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Kafka only: topics re-created since a worker last read them; what Kafka holds of them
    # is not in the ledger yet (counted in ``unconsumed``), their earlier lives come from it.
    unread_incarnations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.events_read / self.seconds if self.seconds > 0 else 0.0

    def differences(self) -> list[Difference]:
        """Every (day, district, metric) whose total or event count differs, in order."""
        out = []
        for key in sorted(self.live.keys() | self.totals.keys()):
            live_total, live_events = self.live.get(key, (Decimal(0), 0))
            replayed = self.totals.get(key)
            total, events = (replayed.total, replayed.events) if replayed else (Decimal(0), 0)
            if live_total != total or live_events != events:
                out.append(Difference(*key, live_total, total, live_events, events))
        return out


def _subtract(
    live: dict[RollupKey, tuple[Decimal, int]], later: Mapping[RollupKey, Totals]
) -> dict[RollupKey, tuple[Decimal, int]]:
    """The live rollups without the contribution of rows ingested after the window."""
    out = dict(live)
    for key, totals in later.items():
        total, events = out.get(key, (Decimal(0), 0))
        out[key] = (total - totals.total, events - totals.events)
    return out


def _run(
    settings: Settings,
    source: Source,
    specs: tuple[TopicSpec, ...],
    window_for: Callable[[db.Conn], tuple[db.Window, Any]],
    progress: ProgressHook | None,
) -> Replay:
    started = time.perf_counter()
    names = tuple(settings.topic_name(spec.name) for spec in specs)
    by_name = {settings.topic_name(spec.name): spec for spec in specs}
    families = [spec.family for spec in specs]
    result = Replay(source=source, topics=names, totals={}, live={})
    state = State()
    with _no_cycle_collector(), db.snapshot(settings) as conn:
        window, records = window_for(conn)
        kafka = source == "kafka"
        corrected = set() if kafka else db.corrected_ids(conn, topics=names)
        if kafka:
            # Ids recorded on the topics not replayed: reusing one here is a conflict.
            for event_id in db.event_ids(conn, except_topics=names):
                state.known[event_id] = OTHER_TOPIC
            if isinstance(window, db.OffsetWindow):
                state.unstorable = db.unstorable_positions(conn, incarnations=window.incarnations)
        before = baseline(
            db.replay_rows(
                conn, topics=names, window=window, part="before", payloads=kafka, ordered=False
            ),
            state,
            result,
            originals=None if kafka else corrected,
            digests=kafka,
        )
        if isinstance(window, db.OffsetWindow):
            total = sum(hi - lo for lo, hi in window.bounds.values())
        else:
            total = db.count_rows(conn, topics=names, window=window, part="inside")
        ticker = Ticker(progress(total) if progress is not None else None)
        if kafka:
            inside = kafka_items(records, by_name, state, result, ticker)
        else:
            rows = db.replay_rows(
                conn, topics=names, window=window, part="inside", payloads=False, ordered=True
            )
            inside = ledger_items(rows, by_name, state, corrected, result, ticker)
        # rollup() reads its argument in order, so the baseline (and the state it leaves)
        # is complete before the first record of the window is judged.
        result.totals = rollup(_chain(before, inside))
        later = rollup(
            after(
                db.replay_rows(
                    conn, topics=names, window=window, part="after", payloads=False, ordered=False
                ),
                result,
            )
        )
        result.live = _subtract(db.rollups(conn, families=families), later)
    result.seconds = time.perf_counter() - started
    return result


@contextmanager
def _no_cycle_collector() -> Iterator[None]:
    """Python's cycle collector off for the replay: the state keeps an object or two per
    event ever seen (ids, contents, originals), and every full collection walked all of
    them again, about 30% of the time of a million-record replay from Kafka (``make
    bench``). What the replay allocates is acyclic; anything else is collected at the end."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect()


def _chain(*parts: Iterable[Item]) -> Iterator[Item]:
    for part in parts:
        yield from part


def replay_from_ledger(
    settings: Settings,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    topics: Sequence[str] | None = None,
    progress: ProgressHook | None = None,
) -> Replay:
    """Recompute the rollups of ``topics`` (names or families; default all) from the ledger
    rows ingested from ``start`` to ``end`` (default: all), on top of the rows before."""
    specs = select_topics(topics)

    def window(_: db.Conn) -> tuple[db.Window, None]:
        return db.TimeWindow(start, end), None

    return _run(settings, "ledger", specs, window, progress)


def replay_from_kafka(
    settings: Settings,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    topics: Sequence[str] | None = None,
    progress: ProgressHook | None = None,
) -> Replay:
    """Recompute the rollups of ``topics`` (default all) from the Kafka records sent from
    ``start`` to ``end`` (default: everything Kafka holds), up to what the workers have
    stored, on top of the ledger rows before that range."""
    from services.kafka.reader import TopicReader, topic_ids, topic_retention

    specs = select_topics(topics)
    names = [settings.topic_name(spec.name) for spec in specs]
    retention = topic_retention(settings, names)
    ids = topic_ids(settings, names)
    reader = TopicReader(settings, names)
    unconsumed = 0
    unread: list[str] = []

    def window(conn: db.Conn) -> tuple[db.Window, Iterator[Any]]:
        nonlocal unconsumed
        held = held_incarnations(incarnations(conn), ids, names)
        unread.extend(name for name, (_, known) in held.items() if not known)
        offsets = heads(conn)
        bounds = {}
        for tp, (lo, hi) in reader.bounds(start, end).items():
            stored = offsets.get((tp[0], held[tp[0]][0], tp[1]), (0, b""))[0]
            unconsumed += max(0, hi - max(lo, stored))
            hi = min(hi, stored)
            bounds[tp] = (min(lo, hi), hi)
        held_now = {name: number for name, (number, _) in held.items()}
        return db.OffsetWindow(bounds, held_now), reader.read(bounds)

    try:
        result = _run(settings, "kafka", specs, window, progress)
    finally:
        reader.close()
    result.unconsumed = unconsumed
    result.unread_incarnations = unread
    result.limited_retention = {name: kept for name, kept in retention.items() if kept != (-1, -1)}
    return result


def held_incarnations(
    recorded: Mapping[str, Sequence[tuple[int, UUID | None]]],
    ids: Mapping[str, UUID],
    names: Sequence[str],
) -> dict[str, tuple[int, bool]]:
    """Topic → (the incarnation whose records Kafka holds, whether the ledger knows it).

    Kafka holds only a topic's current life. It is the recorded incarnation with the
    topic's id now; a topic re-created since any worker last looked holds the next one,
    which no worker has stored anything of (its records count as not yet consumed).
    """
    held: dict[str, tuple[int, bool]] = {}
    for name in names:
        lives = recorded.get(name, [])
        if not lives:
            held[name] = (1, True)
            continue
        topic_id = ids.get(name)
        match = [number for number, known in lives if known is not None and known == topic_id]
        if match:
            held[name] = (match[-1], True)
        elif topic_id is None or lives[-1][1] is None:
            held[name] = (lives[-1][0], True)  # nothing to tell them apart by: the latest
        else:
            held[name] = (lives[-1][0] + 1, False)
    return held

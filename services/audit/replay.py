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

All database reads happen in one snapshot, so the workers may keep running.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.topics import TopicSpec
from schemas.validation import Rejection, decode, record_clock
from services.audit import store
from services.audit.common import select_topics
from streams.acceptance import (
    CorrectionRefs,
    NetCorrections,
    Original,
    judge_corrections,
    split_known,
)
from streams.chain import payload_digest
from streams.rollup import RollupKey, Totals, rollup
from streams.settings import Settings

Source = Literal["kafka", "ledger"]
Item = tuple[datetime, str, Mapping[str, Decimal]]  # what rollup() takes per event
ProgressHook = Callable[[int], Callable[[int], None]]
# Progress is reported every this many records: often enough for a smooth bar, rarely
# enough to cost nothing.
PROGRESS_STEP = 2_000


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


@dataclass
class Replay:
    source: Source
    topics: tuple[str, ...]  # full topic names replayed
    totals: dict[RollupKey, Totals]  # recomputed
    live: dict[RollupKey, tuple[Decimal, int]]  # metric_daily for the same history
    events_read: int = 0  # Kafka records / ledger rows read inside the window
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    baseline_rows: int = 0  # ledger rows before the window, taken as recorded
    after_rows: int = 0  # ledger rows after the window, taken out of the live rollups
    unconsumed: int = 0  # Kafka records inside the window that no worker has stored yet
    # Kafka only: topics whose retention is not unlimited (their oldest records may be gone;
    # the ledger rows before Kafka's first offset are then the starting state).
    limited_retention: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Ledger corrections the acceptance rules refuse: (event_id, reason).
    refused_in_ledger: list[tuple[UUID, str]] = field(default_factory=list)
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


class Content:
    """An event's content, compared as the sink compares a stored event with a new one
    under the same id (their JSON payloads), but worked out only when an id comes back:
    most ids never do, and a payload digest per event would cost as much as decoding it.

    Made from a digest (ledger rows), from an event, or from the Kafka record an accepted
    event came in (decoded again only if needed; equal bytes are equal content).
    """

    __slots__ = ("_digest", "_event", "_raw")

    def __init__(
        self,
        *,
        digest: bytes | None = None,
        event: Envelope | None = None,
        raw: tuple[TopicSpec, bytes | None, datetime] | None = None,
    ) -> None:
        self._digest = digest
        self._event = event
        self._raw = raw

    def digest(self) -> bytes:
        if self._digest is None:
            event = self._event
            if event is None and self._raw is not None:
                spec, value, timestamp = self._raw
                decoded = decode(spec, value, now=timestamp)
                # It was accepted once, so it decodes again; a Rejection here is a bug.
                if isinstance(decoded, Rejection):
                    raise RuntimeError(f"an accepted record no longer decodes: {decoded.message}")
                event = decoded
            if event is None:
                raise RuntimeError("Content without digest, event or record")
            self._digest = payload_digest(event.model_dump(mode="json"))
        return self._digest

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Content):
            return NotImplemented
        if self._raw is not None and other._raw is not None and self._raw[1] == other._raw[1]:
            return True
        return self.digest() == other.digest()

    __hash__ = None  # type: ignore[assignment]  # compared, never a key


def event_content(event: Envelope) -> Content:
    return Content(event=event)


# An id recorded on a topic not replayed: any event under it here is other content.
_OTHER_TOPIC = Content(digest=b"")


@dataclass
class _State:
    """What the sink reads from the ledger to judge a record, built up by the replay."""

    known: dict[UUID, Content] = field(default_factory=dict)
    originals: dict[UUID, Original] = field(default_factory=dict)
    net: NetCorrections = field(default_factory=dict)
    refs: CorrectionRefs = field(default_factory=set)
    # Kafka positions the workers dead-lettered because storing them failed (PostgreSQL
    # refused a value): a verdict of the database, not of the rules, so it is read back.
    unstorable: set[tuple[str, int, int]] = field(default_factory=set)


def _decimals(measures: Mapping[str, str]) -> dict[str, Decimal]:
    return {metric: Decimal(quantity) for metric, quantity in measures.items()}


def _baseline(
    rows: Iterable[tuple[Any, ...]],
    state: _State,
    result: Replay,
    *,
    originals: set[UUID] | None,
    digests: bool,
) -> Iterator[Item]:
    """Ledger rows before the window, as recorded: their rollup items, and the state they
    leave (ids, originals — only those in ``originals`` when given — and net corrections)."""
    for event_id, event_type, district, occurred_at, measures, corrects, _, payload in rows:
        result.baseline_rows += 1
        amounts = _decimals(measures)
        if digests:
            state.known[event_id] = Content(digest=payload_digest(payload))
        if corrects is None:
            if originals is None or event_id in originals:
                state.originals[event_id] = (event_type, district, amounts)
        else:
            for metric, delta in amounts.items():
                key = (corrects, metric)
                state.net[key] = state.net.get(key, Decimal(0)) + delta
            # Corrections always come with their payload: it holds their reference.
            state.refs.add((payload["department"], payload.get("source_ref")))
        yield occurred_at, district, amounts


def _after(rows: Iterable[tuple[Any, ...]], result: Replay) -> Iterator[Item]:
    for _, _, district, occurred_at, measures, *_ in rows:
        result.after_rows += 1
        yield occurred_at, district, _decimals(measures)


class _Ticker:
    def __init__(self, advance: Callable[[int], None] | None) -> None:
        self._advance = advance
        self._pending = 0

    def tick(self) -> None:
        self._pending += 1
        if self._pending == PROGRESS_STEP:
            self.flush()

    def flush(self) -> None:
        if self._advance is not None and self._pending:
            self._advance(self._pending)
        self._pending = 0


def _kafka_items(
    records: Iterable[Any],
    specs: Mapping[str, TopicSpec],
    state: _State,
    result: Replay,
    ticker: _Ticker,
) -> Iterator[Item]:
    """Judge each Kafka record as the sink did; the accepted events' rollup items."""
    originals = state.originals
    for record in records:
        result.events_read += 1
        ticker.tick()
        spec = specs[record.topic]
        if (record.topic, record.partition, record.offset) in state.unstorable:
            result.rejected["unprocessable"] += 1
            continue
        now = record_clock(record.timestamp_ms, record.timestamp_type)
        if isinstance(now, Rejection):
            result.rejected[now.reason] += 1
            continue
        outcome = decode(spec, record.value, now=now)
        if isinstance(outcome, Rejection):
            result.rejected[outcome.reason] += 1
            continue
        fresh, conflicts = split_known([(record, outcome)], state.known, event_content)
        if conflicts:
            result.rejected[conflicts[0][1].reason] += 1
            continue
        if not fresh:
            result.duplicates += 1
            continue
        _, refused = judge_corrections(fresh, originals, state.net, state.refs)
        if refused:
            result.rejected[refused[0][1].reason] += 1
            continue
        state.known[outcome.event_id] = Content(raw=(spec, record.value, now))
        result.accepted += 1
        if isinstance(outcome, Correction):
            yield outcome.occurred_at, str(outcome.district), outcome.measures()
        else:
            # judge_corrections has just recorded the original: reuse its measures.
            _, district, measures = originals[outcome.event_id]
            yield outcome.occurred_at, district, measures
    ticker.flush()


def _correction_of(row: tuple[Any, ...], specs: Mapping[str, TopicSpec]) -> Envelope | None:
    """The correction a ledger row holds, rebuilt from its payload; None if it no longer
    validates (which only an edit of the ledger explains)."""
    event_type, payload = row[1], row[7]
    spec = next((s for s in specs.values() if event_type in s.by_type), None)
    if spec is None:
        return None
    try:
        return spec.by_type[event_type].model_validate(payload)
    except ValueError:
        return None


def _judge_ledger_corrections(
    pending: list[tuple[Any, ...]],
    specs: Mapping[str, TopicSpec],
    state: _State,
    result: Replay,
) -> Iterator[Item]:
    """One batch's corrections, judged once the batch's originals are all recorded (the
    sink counts an original of the same batch, whatever its position)."""
    judged = []
    for row in pending:
        event = _correction_of(row, specs)
        if event is None:
            result.refused_in_ledger.append((row[0], "invalid_payload"))
        else:
            judged.append((row, event))
    kept, refused = judge_corrections(judged, state.originals, state.net, state.refs)
    for row, why in refused:
        result.refused_in_ledger.append((row[0], why.reason))
    for row, _ in kept:
        result.accepted += 1
        yield row[3], row[2], _decimals(row[4])


def _ledger_items(
    rows: Iterable[tuple[Any, ...]],
    specs: Mapping[str, TopicSpec],
    state: _State,
    corrected: set[UUID],
    result: Replay,
    ticker: _Ticker,
) -> Iterator[Item]:
    """Ledger rows in ingest order, batch by batch (one ``ingested_at`` per batch the sink
    wrote): originals as recorded, corrections judged again at the end of their batch."""
    originals = state.originals
    pending: list[tuple[Any, ...]] = []
    batch = None
    for row in rows:
        result.events_read += 1
        ticker.tick()
        event_id, event_type, district, occurred_at, measures, corrects, ingested_at, _ = row
        if ingested_at != batch:
            if pending:
                yield from _judge_ledger_corrections(pending, specs, state, result)
                pending = []
            batch = ingested_at
        if corrects is not None:
            pending.append(row)
            continue
        amounts = _decimals(measures)
        if event_id in corrected:
            originals.setdefault(event_id, (event_type, district, amounts))
        result.accepted += 1
        yield occurred_at, district, amounts
    if pending:
        yield from _judge_ledger_corrections(pending, specs, state, result)
    ticker.flush()


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
    window_for: Callable[[store.Conn], tuple[store.Window, Any]],
    progress: ProgressHook | None,
) -> Replay:
    started = time.perf_counter()
    names = tuple(settings.topic_name(spec.name) for spec in specs)
    by_name = {settings.topic_name(spec.name): spec for spec in specs}
    families = [spec.family for spec in specs]
    result = Replay(source=source, topics=names, totals={}, live={})
    state = _State()
    with _no_cycle_collector(), store.snapshot(settings) as conn:
        window, records = window_for(conn)
        kafka = source == "kafka"
        corrected = set() if kafka else store.corrected_ids(conn, topics=names)
        if kafka:
            # Ids recorded on the topics not replayed: reusing one here is a conflict.
            for event_id in store.event_ids(conn, except_topics=names):
                state.known[event_id] = _OTHER_TOPIC
            if isinstance(window, store.OffsetWindow):
                state.unstorable = store.unstorable_positions(
                    conn, incarnations=window.incarnations
                )
        baseline = _baseline(
            store.replay_rows(
                conn, topics=names, window=window, part="before", payloads=kafka, ordered=False
            ),
            state,
            result,
            originals=None if kafka else corrected,
            digests=kafka,
        )
        if isinstance(window, store.OffsetWindow):
            total = sum(hi - lo for lo, hi in window.bounds.values())
        else:
            total = store.count_rows(conn, topics=names, window=window, part="inside")
        ticker = _Ticker(progress(total) if progress is not None else None)
        if kafka:
            inside = _kafka_items(records, by_name, state, result, ticker)
        else:
            rows = store.replay_rows(
                conn, topics=names, window=window, part="inside", payloads=False, ordered=True
            )
            inside = _ledger_items(rows, by_name, state, corrected, result, ticker)
        # rollup() reads its argument in order, so the baseline (and the state it leaves)
        # is complete before the first record of the window is judged.
        result.totals = rollup(_chain(baseline, inside))
        later = rollup(
            _after(
                store.replay_rows(
                    conn, topics=names, window=window, part="after", payloads=False, ordered=False
                ),
                result,
            )
        )
        result.live = _subtract(store.rollups(conn, families=families), later)
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

    def window(_: store.Conn) -> tuple[store.Window, None]:
        return store.TimeWindow(start, end), None

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

    def window(conn: store.Conn) -> tuple[store.Window, Iterator[Any]]:
        nonlocal unconsumed
        held = held_incarnations(store.incarnations(conn), ids, names)
        unread.extend(name for name, (_, known) in held.items() if not known)
        offsets = store.consumer_offsets(conn)
        bounds = {}
        for tp, (lo, hi) in reader.bounds(start, end).items():
            stored = offsets.get((tp[0], held[tp[0]][0], tp[1]), (0, b""))[0]
            unconsumed += max(0, hi - max(lo, stored))
            hi = min(hi, stored)
            bounds[tp] = (min(lo, hi), hi)
        incarnations = {name: number for name, (number, _) in held.items()}
        return store.OffsetWindow(bounds, incarnations), reader.read(bounds)

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

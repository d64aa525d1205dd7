"""Judging history again as the sink judged it, for ``audit replay``
(:mod:`services.audit.replay`): the state the sink reads from the ledger to judge a record
(ids and their content, originals, net corrections, correction references), built from the
ledger rows before a window, and the rollup items of what lies inside it — Kafka records
judged one at a time with :func:`schemas.validation.decode` and the rules of
:mod:`streams.acceptance`, or ledger rows batch by batch with their corrections judged again.
No I/O: the rows and records come from the caller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from schemas.corrections import Correction
from schemas.envelope import Envelope
from schemas.rejections import Rejection
from schemas.topics import TopicSpec
from schemas.validation import decode, record_clock
from streams.acceptance import (
    CorrectionRefs,
    NetCorrections,
    Original,
    judge_corrections,
    split_known,
)
from streams.chain import payload_digest
from streams.db.ledger_row import ReplayRow

Item = tuple[datetime, str, Mapping[str, Decimal]]  # what rollup() takes per event
# Progress is reported every this many records: often enough for a smooth bar, rarely
# enough to cost nothing.
PROGRESS_STEP = 2_000


@dataclass
class Tally:
    """What a replay counts while it judges."""

    events_read: int = 0  # Kafka records / ledger rows read inside the window
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    baseline_rows: int = 0  # ledger rows before the window, taken as recorded
    after_rows: int = 0  # ledger rows after the window, taken out of the live rollups
    # Ledger corrections the acceptance rules refuse: (event_id, reason).
    refused_in_ledger: list[tuple[UUID, str]] = field(default_factory=list)


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
OTHER_TOPIC = Content(digest=b"")


@dataclass
class State:
    """What the sink reads from the ledger to judge a record, built up by the replay."""

    known: dict[UUID, Content] = field(default_factory=dict)
    originals: dict[UUID, Original] = field(default_factory=dict)
    net: NetCorrections = field(default_factory=dict)
    refs: CorrectionRefs = field(default_factory=set)
    # Kafka positions the workers dead-lettered because storing them failed (PostgreSQL
    # refused a value): a verdict of the database, not of the rules, so it is read back.
    unstorable: set[tuple[str, int, int]] = field(default_factory=set)


def decimals(measures: Mapping[str, str]) -> dict[str, Decimal]:
    return {metric: Decimal(quantity) for metric, quantity in measures.items()}


def baseline(
    rows: Iterable[ReplayRow],
    state: State,
    result: Tally,
    *,
    originals: set[UUID] | None,
    digests: bool,
) -> Iterator[Item]:
    """Ledger rows before the window, as recorded: their rollup items, and the state they
    leave (ids, originals — only those in ``originals`` when given — and net corrections)."""
    for row in rows:
        result.baseline_rows += 1
        amounts = decimals(row.measures)
        if digests:
            state.known[row.event_id] = Content(digest=payload_digest(row.payload))
        if row.corrects is None:
            if originals is None or row.event_id in originals:
                state.originals[row.event_id] = (row.event_type, row.district, amounts)
        else:
            for metric, delta in amounts.items():
                key = (row.corrects, metric)
                state.net[key] = state.net.get(key, Decimal(0)) + delta
            # Corrections always come with their payload: it holds their reference.
            state.refs.add((row.payload["department"], row.payload.get("source_ref")))
        yield row.occurred_at, row.district, amounts


def after(rows: Iterable[ReplayRow], result: Tally) -> Iterator[Item]:
    for row in rows:
        result.after_rows += 1
        yield row.occurred_at, row.district, decimals(row.measures)


class Ticker:
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


def kafka_items(
    records: Iterable[Any],
    specs: Mapping[str, TopicSpec],
    state: State,
    result: Tally,
    ticker: Ticker,
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


def correction_of(row: ReplayRow, specs: Mapping[str, TopicSpec]) -> Envelope | None:
    """The correction a ledger row holds, rebuilt from its payload; None if it no longer
    validates (which only an edit of the ledger explains)."""
    spec = next((s for s in specs.values() if row.event_type in s.by_type), None)
    if spec is None:
        return None
    try:
        return spec.by_type[row.event_type].model_validate(row.payload)
    except ValueError:
        return None


def judge_ledger_corrections(
    pending: list[ReplayRow],
    specs: Mapping[str, TopicSpec],
    state: State,
    result: Tally,
) -> Iterator[Item]:
    """One batch's corrections, judged once the batch's originals are all recorded (the
    sink counts an original of the same batch, whatever its position)."""
    judged = []
    for row in pending:
        event = correction_of(row, specs)
        if event is None:
            result.refused_in_ledger.append((row.event_id, "invalid_payload"))
        else:
            judged.append((row, event))
    kept, refused = judge_corrections(judged, state.originals, state.net, state.refs)
    for row, why in refused:
        result.refused_in_ledger.append((row.event_id, why.reason))
    for row, _ in kept:
        result.accepted += 1
        yield row.occurred_at, row.district, decimals(row.measures)


def ledger_items(
    rows: Iterable[ReplayRow],
    specs: Mapping[str, TopicSpec],
    state: State,
    corrected: set[UUID],
    result: Tally,
    ticker: Ticker,
) -> Iterator[Item]:
    """Ledger rows in ingest order, batch by batch (one ``ingested_at`` per batch the sink
    wrote): originals as recorded, corrections judged again at the end of their batch."""
    originals = state.originals
    pending: list[ReplayRow] = []
    batch = None
    for row in rows:
        result.events_read += 1
        ticker.tick()
        if row.ingested_at != batch:
            if pending:
                yield from judge_ledger_corrections(pending, specs, state, result)
                pending = []
            batch = row.ingested_at
        if row.corrects is not None:
            pending.append(row)
            continue
        amounts = decimals(row.measures)
        if row.event_id in corrected:
            originals.setdefault(row.event_id, (row.event_type, row.district, amounts))
        result.accepted += 1
        yield row.occurred_at, row.district, amounts
    if pending:
        yield from judge_ledger_corrections(pending, specs, state, result)
    ticker.flush()

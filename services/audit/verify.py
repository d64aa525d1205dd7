"""``audit verify``: walk every topic-partition's hash chain in the ledger and report where
it breaks. A topic deleted and created again is a new incarnation, whose partitions have
chains of their own from ``GENESIS`` (``topic#2[0]``); the earlier incarnations' chains
stay as they were and are verified as well.

Each ledger row stores ``prev_hash`` and ``hash = sha256(prev_hash + canonical(row))``
(:mod:`streams.chain`, computed by the sink in ``streams.db.ledger``). Walking a partition
in offset order from ``GENESIS``:

- ``content``: the stored hash is not the hash of the row's stored content — the row (its
  payload, measures, ingest time or Kafka position) was changed, or moved;
- ``link``: the row's ``prev_hash`` is not the hash of the stored row before it — a row
  between the two was deleted (Kafka offsets have gaps anyway: duplicates, dead letters,
  so only the chain can tell);
- ``inserted``: the row after it links past it to the row before it — this row was added;
- ``column``: a column the hash does not cover (event_type, district, occurred_at, …,
  copies of the payload kept for queries) differs from the hashed payload;
- ``head``: ``consumer_offsets.last_hash``, which the sink writes in the same transaction,
  is not the hash of the partition's last row — rows at the end were deleted or added.

After a break the walk carries on from the stored hash, so one edit is one break; the
first break of each partition is the one to read. Reads one consistent snapshot through a
server-side cursor (``services.audit.store``); nothing is held but the current partition's
last two hashes.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from services.audit import store
from services.settings import Settings
from streams.chain import GENESIS, canonical, link
from streams.db import errors

# (topic, incarnation, partition)
ChainKey = tuple[str, int, int]
BreakKind = Literal["content", "link", "inserted", "column", "head"]

# Columns stored beside the payload for queries, and the payload field each copies.
COPIED_COLUMNS = (
    "event_type",
    "schema_version",
    "department",
    "district",
    "occurred_at",
    "reported_at",
    "project",
    "source_ref",
    "corrects",
)


@dataclass(frozen=True)
class Break:
    kind: BreakKind
    topic: str
    partition: int
    offset: int | None  # None: a partition's head with no row to name
    event_id: uuid.UUID | None
    expected: str  # hex of the hash the chain needs here, or the payload's value
    found: str  # what is stored
    detail: str  # what it means, in a sentence
    incarnation: int = 1

    @property
    def where(self) -> str:
        at = "" if self.offset is None else f"@{self.offset}"
        return f"{chain_name(self.topic, self.incarnation, self.partition)}{at}"


def chain_name(topic: str, incarnation: int, partition: int) -> str:
    """``topic[p]``, or ``topic#n[p]`` for the partitions of a re-created topic."""
    life = "" if incarnation == 1 else f"#{incarnation}"
    return f"{topic}{life}[{partition}]"


@dataclass
class PartitionChain:
    topic: str
    partition: int
    rows: int = 0
    head: bytes = GENESIS
    breaks: int = 0
    incarnation: int = 1

    @property
    def key(self) -> ChainKey:
        return (self.topic, self.incarnation, self.partition)

    @property
    def name(self) -> str:
        return chain_name(self.topic, self.incarnation, self.partition)


@dataclass
class VerifyReport:
    partitions: list[PartitionChain] = field(default_factory=list)
    breaks: list[Break] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def _text(value: object) -> str:
    return "NULL" if value is None else str(value)


def _instant(value: object) -> object:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value)
    return value


def _event_id(value: object) -> object:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return uuid.UUID(value)
    return value


def copied_mismatches(row: tuple[Any, ...]) -> list[tuple[str, str, str]]:
    """(column, payload value, stored value) for every copied column that differs."""
    payload = row[5]
    if not isinstance(payload, dict):
        return [("payload", "a JSON object", type(payload).__name__)]
    get = payload.get
    corrects = get("corrects")
    expected = (
        get("event_type"),
        get("schema_version"),
        get("department"),
        get("district"),
        _instant(get("occurred_at")),
        _instant(get("reported_at")),
        get("project"),
        get("source_ref"),
        None if corrects is None else _event_id(corrects),
    )
    found = row[9:18]
    # One comparison for the whole row: this runs for every row of the ledger.
    if expected == found:
        return []
    return [
        (name, _text(want), _text(have))
        for name, want, have in zip(COPIED_COLUMNS, expected, found, strict=True)
        if want != have
    ]


class ChainWalker:
    """Feeds on ledger rows in chain order (``store.CHAIN_COLUMNS``), collects breaks."""

    def __init__(self, heads: Mapping[ChainKey, tuple[int, bytes]]) -> None:
        self._heads = heads
        self.report = VerifyReport()
        self._current: PartitionChain | None = None
        self._head = GENESIS  # hash of the last stored row
        self._before = GENESIS  # hash of the stored row before that
        self._last: tuple[int, uuid.UUID] | None = None  # offset, id of the last row
        self._last_broken = False

    def _break(
        self,
        kind: BreakKind,
        offset: int | None,
        event_id: uuid.UUID | None,
        expected: str,
        found: str,
        detail: str,
    ) -> None:
        current = self._current
        if current is None:  # cannot happen: every caller has a partition open
            raise RuntimeError("a chain break outside any partition")
        current.breaks += 1
        self.report.breaks.append(
            Break(
                kind,
                current.topic,
                current.partition,
                offset,
                event_id,
                expected,
                found,
                detail,
                current.incarnation,
            )
        )

    def feed(self, row: tuple[Any, ...]) -> None:
        event_id, topic, partition, offset, ingested_at, payload, measures, prev, stored = row[:9]
        incarnation = row[18]
        prev, stored = bytes(prev), bytes(stored)
        current = self._current
        if current is None or current.key != (topic, incarnation, partition):
            self._close()
            current = self._current = PartitionChain(topic, partition, incarnation=incarnation)
            self.report.partitions.append(current)
            self._head, self._before, self._last, self._last_broken = GENESIS, GENESIS, None, False
        current.rows += 1
        self.report.rows += 1
        recomputed = link(
            prev,
            canonical(
                event_id=event_id,
                topic=topic,
                incarnation=incarnation,
                partition=partition,
                offset=offset,
                ingested_at=ingested_at,
                payload=payload,
                measures=measures,
            ),
        )
        linked = prev == self._head
        if not linked and self._last is not None and prev == self._before and not self._last_broken:
            inserted_offset, inserted_id = self._last
            self._break(
                "inserted",
                inserted_offset,
                inserted_id,
                expected=self._before.hex(),
                found=self._head.hex(),
                detail=(
                    f"row {inserted_id} at offset {inserted_offset} is not part of the "
                    f"chain: the next row (offset {offset}) links past it — it was inserted"
                ),
            )
            # This row itself links to its true predecessor.
            linked = True
        broken = True
        if recomputed != stored:
            moved = (
                ""
                if linked
                else "; its prev_hash does not link to the row before it either "
                "(moved or rewritten)"
            )
            self._break(
                "content",
                offset,
                event_id,
                expected=recomputed.hex(),
                found=stored.hex(),
                detail="the stored hash is not the hash of the row's content: "
                f"the row was changed{moved}",
            )
        elif not linked:
            before = (
                "the chain's start (GENESIS)"
                if self._last is None
                else f"the row at offset {self._last[0]} ({self._last[1]})"
            )
            self._break(
                "link",
                offset,
                event_id,
                expected=self._head.hex(),
                found=prev.hex(),
                detail=(
                    f"prev_hash is not the hash of {before}: a row before offset {offset} "
                    "was deleted, or this row was moved"
                ),
            )
        elif mismatches := copied_mismatches(row):
            self._break(
                "column",
                offset,
                event_id,
                expected="; ".join(f"{name}={value}" for name, value, _ in mismatches),
                found="; ".join(f"{name}={value}" for name, _, value in mismatches),
                detail=(
                    f"column {', '.join(name for name, _, _ in mismatches)} differs from the "
                    "hashed payload: the column was edited"
                ),
            )
        else:
            broken = False
        self._before, self._head = self._head, stored
        self._last = (offset, event_id)
        self._last_broken = broken

    def _close(self) -> None:
        """Check the finished partition's last hash against the sink's recorded head."""
        current = self._current
        if current is None:
            return
        current.head = self._head
        recorded = self._heads.get(current.key)
        if recorded is None:
            self._break(
                "head",
                None,
                None,
                expected="a consumer_offsets row",
                found="none",
                detail="the ledger has rows of this partition, but consumer_offsets has no "
                "cursor for it",
            )
            return
        if recorded[1] == self._head:
            return
        offset, event_id = self._last or (None, None)
        if recorded[1] == self._before and not self._last_broken:
            self._break(
                "inserted",
                offset,
                event_id,
                expected=recorded[1].hex(),
                found=self._head.hex(),
                detail=(
                    f"row {event_id} at offset {offset} is past the chain head the sink "
                    "recorded — it was inserted"
                ),
            )
        else:
            self._break(
                "head",
                offset,
                event_id,
                expected=recorded[1].hex(),
                found=self._head.hex(),
                detail=(
                    f"consumer_offsets.last_hash is not the hash of the last row (offset "
                    f"{offset}): rows after it were deleted, or the cursor was edited"
                ),
            )

    def finish(self) -> VerifyReport:
        self._close()
        self._current = None
        seen = {p.key for p in self.report.partitions}
        for (topic, incarnation, partition), (_, last_hash) in sorted(self._heads.items()):
            if (topic, incarnation, partition) in seen or last_hash == GENESIS:
                continue
            current = self._current = PartitionChain(topic, partition, incarnation=incarnation)
            self.report.partitions.append(current)
            self._break(
                "head",
                None,
                None,
                expected=last_hash.hex(),
                found=GENESIS.hex(),
                detail="consumer_offsets records a chain here, but the ledger has no row of "
                "this partition: every row was deleted",
            )
        self._current = None
        return self.report


def walk(
    rows: Iterable[tuple[Any, ...]], heads: Mapping[ChainKey, tuple[int, bytes]]
) -> VerifyReport:
    """Verify rows given in chain order against the recorded heads (no I/O)."""
    walker = ChainWalker(heads)
    for row in rows:
        walker.feed(row)
    return walker.finish()


ProgressHook = Callable[[int], Callable[[int], None]]


def verify(settings: Settings, *, progress: ProgressHook | None = None) -> VerifyReport:
    """Walk every chain of the ledger in ``settings``' schema, in one snapshot."""
    started = time.perf_counter()
    with store.snapshot(settings) as conn:
        heads = store.consumer_offsets(conn)
        advance: Callable[[int], None] | None = None
        if progress is not None:
            with errors("counting ledger rows"):
                row = conn.execute("SELECT count(*) FROM events").fetchone()
            advance = progress(int(row[0]) if row else 0)
        walker = ChainWalker(heads)
        step = 0
        for row in store.chain_rows(conn):
            walker.feed(row)
            step += 1
            if advance is not None and step == 5_000:
                advance(step)
                step = 0
        if advance is not None and step:
            advance(step)
        report = walker.finish()
    report.seconds = time.perf_counter() - started
    return report

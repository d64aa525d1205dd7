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
first break of each partition is the one to read.

Signed checkpoints (``services.audit.checkpoint``) are checked in the same walk: beside the
stored chain, the walker recomputes each chain from ``GENESIS`` using only the rows'
content, and where a checkpoint names a chain's head (its last offset then), that
recomputed hash and the row count must equal what the auditors signed. A row at or before
that offset changed, deleted or inserted, or a chain rewritten from any point to its head
(stored hashes and ``consumer_offsets`` made consistent again), gives another hash there:
a ``contradicted`` finding naming the checkpoint; a checkpointed row that is gone, a
``missing`` one. Reads one consistent snapshot through a
server-side cursor (``streams.db.audit``); nothing is held but the current partition's
last two hashes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from services.audit import checkpoint
from services.audit.checkpoint import CheckpointFinding, Expectation
from services.audit.common import ProgressHook
from streams.chain import GENESIS, canonical, link
from streams.db.audit import chain_rows, row_count, snapshot
from streams.db.cursors import Position, heads
from streams.db.ledger_row import LedgerRow
from streams.settings import Settings

BreakKind = Literal["content", "link", "inserted", "column", "head"]


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
    last_offset: int | None = None
    # The chain recomputed from GENESIS over the rows' content alone (equal to ``head``
    # while nothing is broken): what a checkpoint signs.
    recomputed_head: bytes = GENESIS

    @property
    def key(self) -> Position:
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
    findings: list[CheckpointFinding] = field(default_factory=list)
    # Labels of the checkpoints whose signature held and which were compared with the ledger.
    checkpoints: list[str] = field(default_factory=list)
    # consumer_offsets' next offset of each chain, as read in the same snapshot.
    next_offsets: dict[Position, int] = field(default_factory=dict)

    def chain_heads(self) -> list[checkpoint.ChainHead]:
        """Every chain's head as a checkpoint signs it (the chain recomputed from GENESIS)."""
        return [
            checkpoint.ChainHead(
                topic=chain.topic,
                incarnation=chain.incarnation,
                partition=chain.partition,
                rows=chain.rows,
                last_offset=chain.last_offset,
                head=chain.recomputed_head,
                next_offset=self.next_offsets.get(chain.key),
            )
            for chain in self.partitions
            if chain.last_offset is not None
        ]

    @property
    def ok(self) -> bool:
        return not self.breaks and not any(f.fails for f in self.findings)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


class ChainWalker:
    """Feeds on ledger rows in chain order, collects breaks, and compares the chains with
    what checkpoints signed (``expectations``)."""

    def __init__(
        self,
        heads: Mapping[Position, tuple[int, bytes]],
        expectations: Mapping[Position, Sequence[Expectation]] | None = None,
    ) -> None:
        self._heads = heads
        self._expectations = {
            key: sorted(found, key=lambda e: e.offset)
            for key, found in (expectations or {}).items()
        }
        self._pending: list[Expectation] = []
        self._running = GENESIS  # this chain recomputed from GENESIS over content alone
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

    def feed(self, row: LedgerRow) -> None:
        event_id, topic, incarnation = row.event_id, row.topic, row.incarnation
        partition, offset = row.partition, row.kafka_offset
        prev, stored = bytes(row.prev_hash), bytes(row.hash)
        current = self._current
        if current is None or current.key != (topic, incarnation, partition):
            self._close()
            current = self._current = PartitionChain(topic, partition, incarnation=incarnation)
            self.report.partitions.append(current)
            self._head, self._before, self._last, self._last_broken = GENESIS, GENESIS, None, False
            self._running = GENESIS
            self._pending = list(self._expectations.pop(current.key, ()))
        current.rows += 1
        self.report.rows += 1
        content = canonical(
            event_id=event_id,
            topic=topic,
            incarnation=incarnation,
            partition=partition,
            offset=offset,
            ingested_at=row.ingested_at,
            payload=row.payload,
            measures=row.measures,
        )
        recomputed = link(prev, content)
        # While the stored links hold, the stored prev_hash is the recomputed chain's.
        self._running = recomputed if prev == self._running else link(self._running, content)
        current.last_offset = offset
        current.recomputed_head = self._running
        if self._pending:
            self._check_expectations(current, offset)
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
        elif mismatches := row.mismatched_copies():
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

    def _check_expectations(self, current: PartitionChain, offset: int) -> None:
        """Compare this row (at ``offset``) with the checkpoints that signed a head here,
        and report those whose head row the walk has passed without finding."""
        while self._pending and self._pending[0].offset <= offset:
            expected = self._pending.pop(0)
            if expected.offset < offset:
                self._missing(current, expected, f"the next row is at offset {offset}")
                continue
            if expected.head == self._running and expected.rows == current.rows:
                continue
            self.report.findings.append(
                CheckpointFinding(
                    "contradicted",
                    expected.checkpoint,
                    detail=(
                        f"the chain up to offset {offset} ({current.rows:,} rows now, "
                        f"{expected.rows:,} signed) does not hash to the signed head: a row at "
                        "or before this offset was changed, deleted or inserted, or the chain "
                        "was rewritten from some row to its head"
                    ),
                    chain=current.name,
                    offset=offset,
                    expected=expected.head.hex(),
                    found=self._running.hex(),
                )
            )

    def _missing(self, chain: PartitionChain | None, expected: Expectation, why: str) -> None:
        name = chain.name if chain is not None else "?"
        self.report.findings.append(
            CheckpointFinding(
                "missing",
                expected.checkpoint,
                detail=(
                    f"the checkpoint signed a head at offset {expected.offset} "
                    f"({expected.rows:,} rows), but the ledger has no row there ({why}): rows "
                    "were deleted"
                ),
                chain=name,
                offset=expected.offset,
                expected=expected.head.hex(),
                found="none",
            )
        )

    def _close(self) -> None:
        """Check the finished partition's last hash against the sink's recorded head."""
        current = self._current
        if current is None:
            return
        for expected in self._pending:
            self._missing(current, expected, f"the chain ends at offset {current.last_offset}")
        self._pending = []
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
        for (topic, incarnation, partition), expected in sorted(self._expectations.items()):
            for one in expected:
                self._missing(
                    PartitionChain(topic, partition, incarnation=incarnation),
                    one,
                    "the ledger has no row of this chain at all",
                )
        self._expectations = {}
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
    rows: Iterable[LedgerRow],
    heads: Mapping[Position, tuple[int, bytes]],
    expectations: Mapping[Position, Sequence[Expectation]] | None = None,
) -> VerifyReport:
    """Verify rows given in chain order against the recorded heads (no I/O)."""
    walker = ChainWalker(heads, expectations)
    for row in rows:
        walker.feed(row)
    return walker.finish()


def verify(
    settings: Settings,
    *,
    progress: ProgressHook | None = None,
    checkpoints: Iterable[checkpoint.Checkpoint | checkpoint.CheckpointError] = (),
    trusted: Mapping[str, Any] | None = None,
) -> VerifyReport:
    """Walk every chain of the ledger in ``settings``' schema, in one snapshot, and compare
    it with ``checkpoints`` signed by one of the ``trusted`` keys (key id → public key)."""
    started = time.perf_counter()
    expected, findings, used = checkpoint.expectations(
        checkpoints, settings=settings, trusted=trusted or {}
    )
    with snapshot(settings) as conn:
        recorded = heads(conn)
        advance: Callable[[int], None] | None = None
        if progress is not None:
            advance = progress(row_count(conn))
        walker = ChainWalker(recorded, expected)
        walker.report.findings.extend(findings)
        walker.report.checkpoints.extend(used)
        walker.report.next_offsets.update({key: offset for key, (offset, _) in recorded.items()})
        step = 0
        for row in chain_rows(conn):
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

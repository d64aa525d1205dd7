"""What the family loop takes as one batch: at most CITYSTREAM_BATCH_SIZE records and,
past the first, CITYSTREAM_BATCH_MAX_BYTES of values — a topic of records as large as the
broker allows must not gather gigabytes before validation refuses them."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from schemas.topics import HEATING
from streams.batch import Record, batch_end
from streams.family import FamilyLoop
from streams.settings import Settings

KB = 1024


def _records(*sizes: int) -> list[Record]:
    return [Record("t", 0, offset, b"x" * size) for offset, size in enumerate(sizes)]


def test_a_batch_ends_at_its_record_count_or_its_bytes() -> None:
    assert batch_end(_records(10, 10, 10), size=2, max_bytes=100) == 2
    assert batch_end(_records(10, 10, 10), size=5, max_bytes=100) == 3
    assert batch_end(_records(60, 60, 60), size=5, max_bytes=100) == 1
    # One record alone larger than the bound still makes a batch of one: never stuck.
    assert batch_end(_records(500, 10), size=5, max_bytes=100) == 1
    assert batch_end(_records(40, 60, 1), size=5, max_bytes=100) == 2
    assert batch_end([Record("t", 0, 0, None), *_records(100)], size=5, max_bytes=100) == 2
    assert batch_end([], size=5, max_bytes=100) == 0


def test_the_family_loop_takes_large_records_a_few_at_a_time() -> None:
    settings = Settings().model_copy(
        update={"batch_size": 4000, "batch_wait_s": 0.05, "batch_max_bytes": 256 * KB}
    )
    loop = FamilyLoop(cast(Any, None), settings, HEATING, None, {})

    async def take_all() -> list[int]:
        # Fetches of twenty 64 KB records, as many as the inbox holds (four); the broker's
        # limit could be larger still.
        for start in range(0, 200, 20):
            records = [Record("t", 0, o, b"x" * (64 * KB)) for o in range(start, start + 20)]
            loop.inbox.put_nowait((loop.epoch, records))
            if loop.inbox.full():
                break
        sizes = []
        taken = 0
        while taken < 80:  # the four fetches the inbox holds
            _, batch = await loop._take()
            sizes.append(len(batch))
            taken += len(batch)
            assert [r.offset for r in batch] == list(range(taken - len(batch), taken))
        return sizes

    sizes = asyncio.run(take_all())
    # 256 KB is four records; the fifth is the one that goes over, and waits for the next.
    assert sizes == [4] * 20

"""Benchmark events: valid heating connections as the bytes a producer sends.

Built with orjson from plain dicts (a million pydantic models would take longer to build
than the pipeline takes to process them); a sample is checked with the real decoder.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
from uuid6 import uuid7

from schemas.districts import SUBDISTRICTS
from schemas.rejections import Rejection
from schemas.topics import HEATING
from schemas.validation import decode

START = datetime(2024, 1, 1, tzinfo=UTC)


def heating_records(count: int, *, seed: int) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs of ``count`` distinct valid events spread over 2024."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        occurred = START + timedelta(seconds=rng.randrange(0, 330 * 86400))
        district = str(rng.choice(SUBDISTRICTS))
        project = f"estate {rng.randrange(1, 2000)}"
        body = {
            "event_type": "heating.area_connected",
            "event_id": str(uuid7()),
            "department": "heating",
            "district": district,
            "occurred_at": occurred.isoformat(),
            "reported_at": (occurred + timedelta(hours=6)).isoformat(),
            "project": project,
            "source_ref": f"bench#{rng.randrange(1, 10**7)}",
            "area_m2": f"{rng.randrange(100, 500_000)}.{rng.randrange(0, 100):02d}",
        }
        out.append((f"{district}/{project}".encode(), orjson.dumps(body)))
    for _, value in out[:: max(1, count // 50)]:
        outcome = decode(HEATING, value)
        if isinstance(outcome, Rejection):
            raise AssertionError(f"benchmark event rejected: {outcome.message}")
    return out

"""The envelope every event carries, whatever its family.

The pipeline adds ``ingested_at`` and the Kafka coordinates; they are not part of what a
department sends.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from uuid6 import uuid7

from schemas.districts import District

# Namespace for ids derived from a department's own ledger reference (uuid5), so that
# importing the same ledger twice yields the same event ids and counts nothing twice.
LEDGER_NAMESPACE = uuid.UUID("5b1f8f0e-7a3c-4c55-9a55-0c1c17c5a1e1")


def new_event_id() -> uuid.UUID:
    """Time-ordered ids keep the ledger's primary-key index append-mostly."""
    return uuid7()


def ledger_event_id(department: str, source_ref: str) -> uuid.UUID:
    return uuid.uuid5(LEDGER_NAMESPACE, f"{department}\x1f{source_ref}")


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    # Set by each concrete event model.
    event_type_name: ClassVar[str]
    family: ClassVar[str]

    event_id: uuid.UUID
    schema_version: int = Field(default=1, ge=1, le=1)
    department: str = Field(min_length=1, max_length=64)
    district: District
    occurred_at: AwareDatetime
    reported_at: AwareDatetime
    project: str | None = Field(default=None, min_length=1, max_length=200)
    source_ref: str | None = Field(default=None, min_length=1, max_length=200)

    def measures(self) -> dict[str, Decimal]:
        """Metric name → quantity this event adds; what the rollups sum."""
        raise NotImplementedError

    def partition_key(self) -> bytes:
        """Events of one project stay in order on one partition."""
        return f"{self.district}/{self.project or ''}".encode()


"""Corrections: the one way to change a figure after the fact.

Nothing in the ledger is updated or deleted. A department that finds a mistake sends a
``<family>.correction`` on its own topic naming the event it corrects, the metric, a
signed delta, why, and who approved it. The rollups add the delta like any other measure.

:class:`Correction` defines the fields and rules once; each family module binds it to its
topic with a three-line subclass (``HeatingCorrection`` …) that sets ``event_type`` and the
metrics it may correct, so every event model keeps ``event_type_name`` and ``family`` as
class attributes and each topic's JSON Schema lists only its own metrics.

The delta is booked like any event, on the correction's own ``district`` and
``occurred_at``: to restate the original day and subdistrict, send the corrected event's
values (and its ``project``, so the correction also lands on the same partition).
Whether ``corrects`` names an event that exists, and of that family, only the ledger can
tell; :func:`schemas.validation.decode` checks everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from schemas.envelope import Envelope, EventId
from schemas.fields import (
    Metric,
    Name,
    Note,
    Person,
    decimal_places,
    rule_error,
    signed_decimal,
)

CORRECTION = "correction"


class Correction(Envelope):
    """A signed change to one metric of one earlier event of the same family.

    The delta is non-zero, and no larger in size than that metric's per-event bound (it
    corrects one event), with no more decimal places than the metric allows (a count is
    corrected by whole numbers).
    """

    # Set by each family's subclass: metric name → its bounds.
    metrics: ClassVar[Mapping[str, Metric]]

    corrects: EventId = Field(description="event_id of the event this corrects")
    metric: str = Field(description="a metric of this family, e.g. heating.connected_area_m2")
    delta: Decimal = signed_decimal(
        places=3,
        description="signed change to the metric, non-zero; e.g. -120.5 removes 120.5 m²",
    )
    reason: Note = Field(description="why the figure was wrong (non-empty)")
    approved_by: Person = Field(description="who approved the correction (non-empty)")
    # Required here, unlike on other events: it is the correction's identity. The same
    # correction sent again under a new event_id (a retried script, a re-imported sheet)
    # carries the same reference and is refused instead of applied twice.
    source_ref: Name = Field(
        description="the correction's own reference (审批单号, approval number), unique per "
        "department: a correction re-sent under another event_id is refused"
    )

    @field_validator("metric")
    @classmethod
    def _metric_of_family(cls, value: str) -> str:
        if value in cls.metrics:
            return value
        allowed = ", ".join(sorted(cls.metrics))
        family = value.partition(".")[0]
        from schemas.topics import DEPARTMENTS  # collected after this module is loaded

        if family != cls.family and family in DEPARTMENTS:
            raise rule_error(
                "metric_not_in_family",
                rule=f"one of {allowed}",
                zh=f"{cls.event_type_name} 只能更正本类指标（{allowed}）；"
                f"{family} 指标请在 city.{family}.v1 上更正",
                en=f"{cls.event_type_name} corrects only {cls.family} metrics ({allowed}); "
                f"correct {family} metrics on city.{family}.v1",
            )
        raise rule_error(
            "invalid_field",
            rule=f"one of {allowed}",
            zh=f"不是已知指标，应为 {allowed} 之一",
            en=f"is not a known metric; use one of {allowed}",
        )

    @model_validator(mode="after")
    def _delta_within_bounds(self) -> Correction:
        spec = self.metrics[self.metric]
        if self.delta == 0:
            raise rule_error(
                "out_of_range",
                rule="delta != 0",
                zh="更正量不能为 0",
                en="must not be zero",
                field="delta",
                value=str(self.delta),
            )
        if abs(self.delta) > spec.max_per_event:
            bound = f"|delta| <= {spec.max_per_event} {spec.unit}"
            raise rule_error(
                "out_of_range",
                rule=bound,
                zh=f"超出单个事件的上限 {spec.max_per_event} {spec.unit}",
                en=f"exceeds what one event can add ({spec.max_per_event} {spec.unit})",
                field="delta",
                value=str(self.delta),
            )
        if decimal_places(self.delta) > spec.decimal_places:
            raise rule_error(
                "too_precise",
                rule=f"at most {spec.decimal_places} decimal places",
                zh=f"{self.metric} 最多 {spec.decimal_places} 位小数",
                en=f"{self.metric} takes at most {spec.decimal_places} decimal places",
                field="delta",
                value=str(self.delta),
            )
        if self.corrects == self.event_id:
            raise rule_error(
                "invalid_field",
                rule="corrects != event_id",
                zh="更正事件不能更正自己",
                en="a correction cannot correct itself",
                field="corrects",
                value=str(self.corrects),
            )
        return self

    def measures(self) -> dict[str, Decimal]:
        return {self.metric: self.delta}

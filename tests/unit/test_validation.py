"""decode() against the bad-input corpus, good examples of every event type, and property
tests that it never raises, whatever arrives."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import rejections, validation
from schemas.envelope import Envelope
from schemas.rejections import REASONS, Rejection
from schemas.topics import ALL, BY_EVENT_TYPE, BY_FAMILY
from schemas.validation import MAX_RECORD_BYTES, decode
from tests.unit.bad_inputs import ACCEPTED, CASES, GOOD, NOW, Accepted, Case, encode, event

DECODE_CASES = [case for case in CASES if case.stage == "decode"]
SINK_CASES = [case for case in CASES if case.stage == "sink"]


def test_corpus_is_big_and_names_are_unique() -> None:
    assert len(DECODE_CASES) >= 45
    names = [case.name for case in CASES] + [case.name for case in ACCEPTED]
    assert len(names) == len(set(names))
    assert {case.reason for case in CASES} <= set(REASONS)


def _assert_printable_for_postgres(rejection: Rejection) -> None:
    """What the worker writes to the deadletters table and Kafka headers must be storable."""
    for text in rejection.as_dict().values():
        if text is not None:
            assert "\x00" not in text
            text.encode("utf-8")  # no lone surrogates


@pytest.mark.parametrize("case", DECODE_CASES, ids=lambda case: case.name)
def test_bad_input_is_rejected_with_reason_and_field(case: Case) -> None:
    outcome = decode(BY_FAMILY[case.family], case.raw, now=NOW)

    assert isinstance(outcome, Rejection), f"accepted: {outcome!r}"
    assert (outcome.reason, outcome.field) == (case.reason, case.field), outcome.message
    assert outcome.message == f"{outcome.message_zh} / {outcome.message_en}"
    assert outcome.rule
    assert outcome.rule in outcome.message_en and outcome.rule in outcome.message_zh
    if outcome.field is not None:
        assert outcome.message_en.startswith(f"{outcome.field}: ")
        assert outcome.message_zh.startswith(f"{outcome.field}：")
    if outcome.value is not None:
        assert len(outcome.value) <= rejections.VALUE_CHARS
        assert outcome.value in outcome.message_en
    # Chinese first, and actually Chinese.
    assert re.search(r"[\u4e00-\u9fff]", outcome.message_zh)
    _assert_printable_for_postgres(outcome)
    assert set(outcome.as_dict()) == {
        "reason", "field", "value", "rule", "message", "message_zh", "message_en",
    }  # fmt: skip


@pytest.mark.parametrize("case", SINK_CASES, ids=lambda case: case.name)
def test_sink_stage_cases_pass_decode(case: Case) -> None:
    for raw in (*case.before, case.raw):
        assert isinstance(decode(BY_FAMILY[case.family], raw, now=NOW), Envelope)


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda case: case.name)
def test_odd_but_valid_input_is_accepted(case: Accepted) -> None:
    outcome = decode(BY_FAMILY[case.family], case.raw, now=NOW)

    assert isinstance(outcome, Envelope), getattr(outcome, "message", outcome)
    assert getattr(outcome, case.field) == case.expected


@pytest.mark.parametrize("event_type", sorted(BY_EVENT_TYPE))
def test_every_event_type_has_a_good_example_that_decodes(event_type: str) -> None:
    spec = BY_EVENT_TYPE[event_type]
    outcome = decode(spec, orjson.dumps(GOOD[event_type]), now=NOW)

    assert isinstance(outcome, spec.by_type[event_type]), getattr(outcome, "message", outcome)
    assert outcome.event_type_name == event_type
    # What the producer sends (model_dump_json) decodes to the same event.
    assert decode(spec, outcome.model_dump_json().encode(), now=NOW) == outcome


def test_good_examples_cover_every_event_type() -> None:
    assert set(GOOD) == set(BY_EVENT_TYPE)


def test_wall_clock_is_the_default_now() -> None:
    future = datetime.now(UTC).replace(microsecond=0).isoformat()
    raw = encode("heating.area_connected", occurred_at=future, reported_at=future)
    assert isinstance(decode(BY_FAMILY["heating"], raw), Envelope)
    assert isinstance(decode(BY_FAMILY["heating"], raw, now=NOW), Rejection)


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decode(BY_FAMILY["heating"], b"{}", now=datetime(2024, 1, 1))


def test_record_of_exactly_the_limit_is_read() -> None:
    base = orjson.dumps(event("heating.area_connected", source_ref=None, project="x"))
    padded = base[:-1] + b" " * (MAX_RECORD_BYTES - len(base)) + b"}"
    assert len(padded) == MAX_RECORD_BYTES
    assert isinstance(decode(BY_FAMILY["heating"], padded, now=NOW), Envelope)


def test_reason_table_in_the_docstring_lists_every_code() -> None:
    doc = rejections.__doc__ or ""
    in_table = set(re.findall(r"^([a-z_0-9]+) {2,}", doc, flags=re.MULTILINE))
    assert in_table - {"reason"} == set(REASONS)


def test_unexpected_exceptions_become_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(validation, "_decode", boom)
    outcome = decode(BY_FAMILY["heating"], b"{}", now=NOW)
    assert isinstance(outcome, Rejection) and outcome.reason == "internal_error"


# --- properties: decode never raises ------------------------------------------------------

_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(
        ["NaN", "Infinity", "-1", "0", "1e308", "石佛", "\u200b", "\x00", "2024-09-01"]
    )
)
JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=20,
)
_SPECS = st.sampled_from(ALL)


def _check(outcome: Envelope | Rejection) -> None:
    if isinstance(outcome, Rejection):
        assert outcome.reason in REASONS and outcome.reason != "internal_error", outcome.message
        _assert_printable_for_postgres(outcome)
        return
    # An accepted event must be usable all the way down the pipeline.
    for metric, quantity in outcome.measures().items():
        assert metric.startswith(f"{outcome.family}.")
        assert isinstance(quantity, Decimal) and quantity.is_finite()
    assert isinstance(outcome.partition_key(), bytes)
    orjson.dumps(outcome.model_dump(mode="json"))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(spec=_SPECS, value=JSON_VALUES)
def test_any_json_value_is_decoded_or_rejected(spec: Any, value: Any) -> None:
    _check(decode(spec, orjson.dumps(value), now=NOW))


@settings(max_examples=300)
@given(spec=_SPECS, raw=st.binary(max_size=300))
def test_any_bytes_are_decoded_or_rejected(spec: Any, raw: bytes) -> None:
    _check(decode(spec, raw, now=NOW))


# Values that are nearly right: other examples' values, edge numbers, text to normalise.
_NEAR_VALUES = st.sampled_from(
    [
        *sorted({repr(v): v for ex in GOOD.values() for v in ex.values()}.values(), key=repr),
        *["0", "-0", "0.001", "5000000", "5000000.01", 1e308, -1, 0, 1, 5000, 20001, "12"],
        *["石佛\u200b", "\uff21\u3000", " ", "", "zone", "Shifo", "2024-09-01T08:00:00Z", None],
    ]
)
_FIELD_NAMES = st.sampled_from(
    sorted({key for example in GOOD.values() for key in example} | {"location", "extra"})
)


@st.composite
def mutated_events(draw: st.DrawFn) -> tuple[Any, bytes]:
    event_type = draw(st.sampled_from(sorted(GOOD)))
    data = dict(GOOD[event_type])
    own = st.sampled_from(sorted(data))
    for name in draw(st.lists(own | own | own | _FIELD_NAMES, max_size=3, unique=True)):
        action = draw(st.sampled_from(["replace", "replace", "drop"]))
        if action == "drop":
            data.pop(name, None)
        else:
            data[name] = draw(_NEAR_VALUES | JSON_VALUES)
    if draw(st.integers(0, 4)) == 0:
        data[draw(st.text(alphabet=string.printable + "石\x00\u200b", max_size=8))] = draw(
            JSON_VALUES
        )
    return BY_EVENT_TYPE[event_type], orjson.dumps(data)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_events())
def test_valid_events_with_fields_replaced_are_decoded_or_rejected(case: tuple[Any, bytes]) -> None:
    spec, raw = case
    outcome = decode(spec, raw, now=NOW)
    _check(outcome)
    if isinstance(outcome, Envelope):
        # Decoding what the producer would send of it changes nothing.
        assert decode(spec, outcome.model_dump_json().encode(), now=NOW) == outcome

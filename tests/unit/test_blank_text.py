"""Text that renders as blank is whitespace, in every text field (issue 12, item 5).

For each class of character that draws as nothing (or as an empty cell) but is not
``str.isspace()``: a field of only such characters is ``empty_text``, and inside a name the
character gives the same name as the plain spelling — a space for blanks with a width, nothing
for zero-width ones. Bidi controls and other format characters stay refused.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from schemas.districts import District, district_code
from schemas.envelope import Envelope
from schemas.fields import BLANK, INVISIBLE_RANGES, normalise_text
from schemas.rejections import Rejection
from schemas.topics import BY_EVENT_TYPE, BY_FAMILY
from schemas.validation import decode
from tests.unit.bad_inputs import AREA, GOOD, NOW, encode

# class → (characters, what one stands for inside a name)
BLANK_CLASSES: dict[str, tuple[str, ...]] = {
    # NFKC turns U+3164 and U+FFA0 into U+1160: all four must read alike.
    "hangul_filler": ("\u115f", "\u1160", "\u3164", "\uffa0"),
    "braille_blank": ("\u2800",),
    "musical_null_notehead": ("\U0001d159",),
}
INVISIBLE_CLASSES: dict[str, tuple[str, ...]] = {
    "zero_width": ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"),
    "invisible_operator": ("\u2061", "\u2062", "\u2063", "\u2064"),
    "mongolian_vowel_separator": ("\u180e",),
    "grapheme_joiner": ("\u034f",),
    "variation_selector": tuple(map(chr, range(0xFE00, 0xFE10))),
    # 240 of them: the first, one in the middle, the last (every one: see below).
    "ideographic_variation_selector": ("\U000e0100", "\U000e0170", "\U000e01ef"),
    "mongolian_variation_selector": ("\u180b", "\u180c", "\u180d", "\u180f"),
    "khmer_inherent_vowel": ("\u17b4", "\u17b5"),
    "musical_format": tuple(map(chr, range(0x1D173, 0x1D17B))),
    "tag": ("\U000e0000", "\U000e0001", "\U000e0020", "\U000e0041", "\U000e007f"),
}
# Python already calls these whitespace; they must go on collapsing to one space.
SPACE_CLASSES: dict[str, tuple[str, ...]] = {
    "line_paragraph_separator": ("\u2028", "\u2029"),
    "ideographic_space": ("\u3000",),
}
# Draw as nothing (or nearly), but change how the text around them reads: refused.
REFUSED: dict[str, tuple[str, ...]] = {
    # ALM, LRM, RLM, the embeddings and overrides U+202A–E, the isolates U+2066–9.
    "bidi_control": (
        "\u061c",
        "\u200e",
        "\u200f",
        *map(chr, range(0x202A, 0x202F)),
        *map(chr, range(0x2066, 0x206A)),
    ),
    "soft_hyphen": ("\u00ad",),
    "deprecated_shaping_control": tuple(map(chr, range(0x206A, 0x2070))),
    "interlinear_annotation": ("\ufff9", "\ufffa", "\ufffb"),
    "shorthand_format_control": ("\U0001bca0", "\U0001bca3"),
    "c0_c1_control": ("\x00", "\x1b", "\x7f", "\x9b"),
}


def _cases(classes: dict[str, tuple[str, ...]], stands_for: str) -> list[Any]:
    return [
        pytest.param(char, stands_for, id=f"{name}-U+{ord(char):04X}")
        for name, chars in classes.items()
        for char in chars
    ]


HIDDEN = _cases(BLANK_CLASSES, " ") + _cases(INVISIBLE_CLASSES, "") + _cases(SPACE_CLASSES, " ")


def _decode_project(project: str) -> Envelope | Rejection:
    return decode(BY_FAMILY["heating"], encode(AREA, project=project), now=NOW)


@pytest.mark.parametrize(("char", "stands_for"), HIDDEN)
def test_a_field_of_only_that_character_is_empty_text(char: str, stands_for: str) -> None:
    for text in (char, char * 3, f" {char}\u3000{char}\t"):
        assert normalise_text(text) == ""
        outcome = _decode_project(text)
        assert isinstance(outcome, Rejection), f"{text!r} accepted as {outcome!r}"
        assert (outcome.reason, outcome.field) == ("empty_text", "project"), outcome.message


@pytest.mark.parametrize(("char", "stands_for"), HIDDEN)
def test_inside_a_name_it_is_the_plain_spelling(char: str, stands_for: str) -> None:
    for before, after in (("石佛", "安置区"), ("estate", "12"), ("外国语", "Primary")):
        plain = normalise_text(f"{before}{stands_for}{after}")
        assert normalise_text(f"{before}{char}{after}") == plain
        # Beside a real space it adds nothing: one space, not two.
        assert normalise_text(f"{before} {char}{after}") == normalise_text(f"{before} {after}")
        outcome = _decode_project(f"{char}{before}{char}{after}{char}")
        assert isinstance(outcome, Envelope), getattr(outcome, "message", outcome)
        assert outcome.project == plain


def test_the_plain_and_the_filler_spelling_are_one_project() -> None:
    """The issue's own example: not two projects, and not two ledger ids on import."""
    assert normalise_text("石佛\u3164安置区") == normalise_text("石佛 安置区") == "石佛 安置区"
    assert normalise_text("石佛\u200b\ufe0f安置区") == "石佛安置区"


def test_every_character_of_the_tables_is_handled() -> None:
    """Each of the ~400 code points, not only the samples above."""
    blanks = set(BLANK)
    every = blanks | {chr(c) for first, last in INVISIBLE_RANGES for c in range(first, last + 1)}
    assert len(every) > 400
    for char in every:
        assert normalise_text(char) == "", f"U+{ord(char):04X}"
        expected = "石佛 安置区" if char in blanks else "石佛安置区"
        assert normalise_text(f"石佛{char}安置区") == expected, f"U+{ord(char):04X}"


def test_removal_comes_before_nfkc_so_the_result_is_normal() -> None:
    # With the zero-width space gone first, e + combining acute compose to é.
    assert normalise_text("Cafe\u200b\u0301") == "Café"
    for text in ("Cafe\u200b\u0301", "ＡＢＣ\u3164１２３", "石佛\ufe0f\u3000安置区\U000e0041"):
        once = normalise_text(text)
        assert normalise_text(once) == once


REFUSED_CASES = [
    pytest.param(char, id=f"{name}-U+{ord(char):04X}")
    for name, chars in REFUSED.items()
    for char in chars
]


@pytest.mark.parametrize("char", REFUSED_CASES)
def test_bidi_and_other_format_controls_stay_refused(char: str) -> None:
    for text in (f"estate {char}1", f"石佛{char}安置区", char):
        outcome = _decode_project(text)
        assert isinstance(outcome, Rejection), f"{text!r} accepted"
        assert (outcome.reason, outcome.field) == ("invalid_field", "project"), outcome.message
        assert f"U+{ord(char):04X}" in outcome.message_en


def _text_fields() -> list[Any]:
    """Every (event type, field) whose JSON Schema is a non-empty string: the text fields."""
    out = []
    for event_type, spec in sorted(BY_EVENT_TYPE.items()):
        schema = spec.by_type[event_type].model_json_schema()
        for name, prop in schema["properties"].items():
            branches = prop.get("anyOf", [prop])
            if any(b.get("type") == "string" and b.get("minLength") == 1 for b in branches):
                out.append(pytest.param(event_type, name, id=f"{event_type}.{name}"))
    return out


TEXT_FIELDS = _text_fields()


def test_the_text_fields_found_are_all_of_them() -> None:
    names = {p.values[1] for p in TEXT_FIELDS}
    assert names == {
        "project", "source_ref", "school_name", "lot_name", "point_name", "reason", "approved_by",
        "project_name",
    }  # fmt: skip


@pytest.mark.parametrize(("event_type", "field"), TEXT_FIELDS)
def test_every_text_field_of_every_event_type(event_type: str, field: str) -> None:
    spec = BY_EVENT_TYPE[event_type]

    def judged(value: str) -> Envelope | Rejection:
        return decode(spec, orjson.dumps({**GOOD[event_type], field: value}), now=NOW)

    empty = judged("\u3164\u2800\u200b\ufe0f\u2062\U000e0041\u17b4 ")
    assert isinstance(empty, Rejection)
    assert (empty.reason, empty.field) == ("empty_text", field), empty.message
    filled = judged("甲\u3164乙\u2064丙")
    assert isinstance(filled, Envelope), getattr(filled, "message", filled)
    assert getattr(filled, field) == "甲 乙丙"


def test_district_names_read_through_blanks() -> None:
    assert district_code("\u3164shifo\u2800") is District.SHIFO
    assert district_code("石佛\ufe0f街道\u200b") is District.SHIFO
    assert district_code("\u3164") is None

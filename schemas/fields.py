"""Field types every event family shares: normalised text, bounded quantities, metrics.

Validators here raise :func:`rule_error`, whose error type is one of the stable reason codes
of :mod:`schemas.validation` and whose context carries the rule and the message in Chinese
and English, so a rejection can say exactly what to fix.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError, PydanticUndefined

# Text that renders as nothing must not make a second name: "石佛\u200b安置区" is "石佛安置区",
# "石佛\u3164安置区" is "石佛 安置区", and a project of U+3164 alone is empty. NFKC keeps every
# character below, so they are handled explicitly — before NFKC, so that what remains
# composes as it would have without them (NFKC turns U+3164 and U+FFA0 into U+1160, and no
# other character into one of these). The invisible ones are Unicode's assigned
# Default_Ignorable_Code_Point characters (what a renderer shows as nothing) except those
# that must stay refused (listed below); the blanks are what fonts draw as an empty cell.

# Blanks with a width: fonts draw an empty cell, so they read as a space (then collapsed
# with the other whitespace); removing them would glue "石佛\u3164安置区" into one word.
BLANK = (
    # Hangul fillers: choseong, jungseong, the compatibility filler and its half-width form
    # (the "invisible nickname" trick); they stand for "no letter here".
    "\u115f\u1160\u3164\uffa0"
    # Braille pattern blank: a braille cell with no dots, as wide as any other.
    "\u2800"
    # Musical symbol null notehead: a notehead-wide blank.
    "\U0001d159"
)

# Zero width: drawn as nothing, so removed (a space would split "石佛\u200b安置区").
INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x200B, 0x200D),  # zero-width space, non-joiner, joiner
    (0x2060, 0x2060),  # word joiner
    (0xFEFF, 0xFEFF),  # zero-width no-break space (a BOM inside text)
    (0x2061, 0x2064),  # invisible operators: function application, times, separator, plus
    (0x180E, 0x180E),  # Mongolian vowel separator: zero width since Unicode 6.3
    # Selectors pick a glyph of the character before them, never another character
    # ("❤\ufe0f" / "❤", 葛\U000e0100 / 葛 are one name); standing alone they draw nothing.
    (0x034F, 0x034F),  # combining grapheme joiner
    (0xFE00, 0xFE0F),  # variation selectors 1–16
    (0xE0100, 0xE01EF),  # variation selectors 17–256 (CJK ideographic variants)
    (0x180B, 0x180D),  # Mongolian free variation selectors 1–3
    (0x180F, 0x180F),  # Mongolian free variation selector 4
    (0x17B4, 0x17B5),  # Khmer inherent vowels: "not to be used", drawn as nothing
    (0x1D173, 0x1D17A),  # musical beam, tie, slur and phrase begin/end: layout marks
    # The Tags block: deprecated language tags and the tails of emoji flag sequences
    # (🏴 + tags reads 🏴 once they are gone); on their own they draw nothing.
    (0xE0000, 0xE007F),
)
# Stay refused as "invalid_field" by _text, although some draw nothing either: the bidi
# controls (U+061C, U+200E/F, U+202A–E, U+2066–9) reorder the text around them, which is the
# spoofing trick; the soft hyphen U+00AD draws a "-" at a line break; U+206A–F change how
# digits and Arabic are shaped; interlinear annotations, prepended concatenation marks and
# the Egyptian and Duployan format controls change how their neighbours render.

# One table for str.translate: blanks → " ", invisible → removed.
_TO_BLANK: dict[int, str | None] = {
    **{code: None for first, last in INVISIBLE_RANGES for code in range(first, last + 1)},
    **dict.fromkeys(map(ord, BLANK), " "),
}
# Most text has none of these, and searching is far cheaper than translating. The search
# is a pre-filter: the BMP characters exactly, the few astral ones as one range from the
# first to the last (an emoji in between takes the translate path, which leaves it alone).
# One range per character instead of four keeps the search about as cheap on Chinese text
# as the five zero-width characters it replaces (timeit: +0–25 ns on names of 7–20 characters).
_ASTRAL = [code for code in _TO_BLANK if code > 0xFFFF]
_MAY_HIDE_RE = re.compile(
    "["
    + re.escape("".join(sorted(chr(code) for code in _TO_BLANK if code <= 0xFFFF)))
    + f"{chr(min(_ASTRAL))}-{chr(max(_ASTRAL))}]"
)


_NO_VALUE: Any = object()


def rule_error(
    reason: str, *, rule: str, zh: str, en: str, field: str | None = None, value: Any = _NO_VALUE
) -> PydanticCustomError:
    """A validation error whose type is a reason code of :mod:`schemas.validation`.

    ``field`` and ``value`` are needed only from model validators, whose errors carry no
    location of their own.
    """
    context: dict[str, Any] = {"rule": rule, "zh": zh, "en": en}
    if field is not None:
        context["field"] = field
    if value is not _NO_VALUE:
        context["value"] = value
    return PydanticCustomError(reason, "{en}", context)


def normalise_text(value: str) -> str:
    """Invisible characters removed, blank-looking ones read as spaces, NFKC (full-width →
    half-width), whitespace collapsed.

    ASCII text is already NFKC and has none of those characters: it skips both steps,
    which keeps the common case cheap.
    """
    if not value.isascii():
        if _MAY_HIDE_RE.search(value):
            value = value.translate(_TO_BLANK)
        value = unicodedata.normalize("NFKC", value)
    return " ".join(value.split())


def _text(max_length: int) -> AfterValidator:
    """Normalise, then check length and content: one Python call per present text field."""

    def check(value: str) -> str:
        text = normalise_text(value)
        if not text:
            raise rule_error(
                "empty_text",
                rule="non-empty after trimming spaces and invisible characters",
                zh="去掉空格和不可见字符后为空",
                en="is empty after removing spaces and invisible characters",
            )
        if len(text) > max_length:
            raise rule_error(
                "invalid_field",
                rule=f"length <= {max_length}",
                zh=f"长度 {len(text)} 超过 {max_length} 个字符",
                en=f"is {len(text)} characters long, over {max_length}",
            )
        # After the whitespace collapse the only separator left is " ", so anything not
        # printable is a control, format (e.g. a bidi override), private-use, unassigned or
        # surrogate character. PostgreSQL text cannot even hold U+0000.
        if not text.isprintable():
            bad = next(c for c in text if not c.isprintable() and c != " ")
            raise rule_error(
                "invalid_field",
                rule="printable characters only",
                zh=f"包含不可见的控制字符 U+{ord(bad):04X}",
                en=f"contains the invisible control character U+{ord(bad):04X}",
            )
        return text

    return AfterValidator(check)


def _text_schema(max_length: int) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "minLength": 1, "maxLength": max_length})


# Free text typed by people: project, school, lot and point names, ledger references.
Name = Annotated[str, _text(200), _text_schema(200)]
# Who approved a correction (a name or a staff id).
Person = Annotated[str, _text(100), _text_schema(100)]
# Why a correction was made.
Note = Annotated[str, _text(1000), _text_schema(1000)]


def _no_bool(value: object) -> object:
    # Lax int validation would take true as 1: a spreadsheet checkbox is not a count.
    if isinstance(value, bool):
        raise rule_error(
            "invalid_field",
            rule="type: integer",
            zh="应为整数，不能是布尔值",
            en="must be an integer, not a boolean",
        )
    return value


# A whole number of things (units, households, persons, places, spaces). Numeric strings
# such as "12" are accepted: `citystream emit units=12` sends them.
Count = Annotated[int, BeforeValidator(_no_bool)]


def _iso_only(value: object) -> object:
    # Lax datetime validation would read a number as Unix seconds or milliseconds,
    # guessing which: timestamps must say what they mean.
    if isinstance(value, _NUMBERS):
        raise rule_error(
            "invalid_field",
            rule="ISO 8601 date-time with offset, e.g. 2024-09-01T08:00:00+08:00",
            zh="时间必须是带时区的 ISO 8601 字符串（如 2024-09-01T08:00:00+08:00），不能是数字",
            en="must be an ISO 8601 string with offset (e.g. 2024-09-01T08:00:00+08:00), "
            "not a number",
        )
    return value


# A tuple, made once: ``int | float`` in the check made a union object per call.
_NUMBERS = (int, float)

# Before AwareDatetime: ``Annotated[AwareDatetime, ISO_ONLY]``.
ISO_ONLY = BeforeValidator(_iso_only)


def _not_nil(value: Any) -> Any:
    # A default-filled all-zero id would make every such event a duplicate of the first.
    if value.int == 0 or value.int == (1 << 128) - 1:
        raise rule_error(
            "invalid_field",
            rule="not the nil or max UUID",
            zh="不能是全 0 或全 F 的 UUID",
            en="must not be the nil or max UUID",
        )
    return value


NOT_NIL = AfterValidator(_not_nil)


@dataclass(frozen=True)
class Metric:
    """One quantity the rollups sum, and the most one event can add to it.

    ``max_per_event`` and ``decimal_places`` are those of the event field that feeds the
    metric; a correction's delta obeys the same bounds, because it corrects one event.
    A ``level`` (a rate a department measures, :mod:`schemas.indicators`) is not summed:
    its value is the latest report, and the rollups leave it out.
    """

    name: str
    family: str
    unit: str
    max_per_event: Decimal
    decimal_places: int
    level: bool = False


def metric_map(specs: tuple[Metric, ...]) -> Mapping[str, Metric]:
    """Metric name → spec, read-only (a class attribute shared by every instance)."""
    return MappingProxyType({spec.name: spec for spec in specs})


def decimal_places(value: Decimal) -> int:
    """Places after the point, trailing zeros aside: 1.50 → 1, 1E+3 → 0.

    Not via ``normalize()``, which rounds to the context's 28 digits and would turn
    1.0000000000000000000000000001 into 1.
    """
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0:
        return 0
    significant = bytes(digits).rstrip(b"\0")
    if not significant:
        return 0  # zero, however written
    return max(0, -exponent - (len(digits) - len(significant)))


def quantity(*, maximum: int, places: int, description: str) -> Any:
    """A positive decimal field, e.g. ``area_m2: Decimal = quantity(...)``.

    Decimal rather than float, so sums are exact. The JSON Schema says numbers or
    numeric strings (pydantic writes Decimal to JSON as a string).
    """
    return Field(
        gt=0,
        le=maximum,
        decimal_places=places,
        description=description,
        json_schema_extra=_decimal_string_pattern(places, signed=False),
    )


def count(*, maximum: int, description: str, default: Any = PydanticUndefined) -> Any:
    """A positive whole-number field, e.g. ``units: Count = count(...)``."""
    return Field(default, gt=0, le=maximum, description=description)


def _decimal_string_pattern(places: int, *, signed: bool) -> Any:
    sign = "-?" if signed else ""
    fraction = rf"(\.[0-9]{{1,{places}}}0*)?" if places else r"(\.0*)?"
    pattern = rf"^{sign}[0-9]+{fraction}$"

    def extra(schema: dict[str, Any]) -> None:
        for branch in schema.get("anyOf", ()):
            if branch.get("type") == "string":
                branch["pattern"] = pattern

    return extra


def signed_decimal(*, places: int, description: str) -> Any:
    return Field(
        description=description, json_schema_extra=_decimal_string_pattern(places, signed=True)
    )

"""The five subdistricts (街道) of Zhengzhou National High-tech Zone, and the zone itself.

Events store the code (``shifo``, …); :func:`district_code` also reads the names
departments write in their ledgers: 石佛街道 or 石佛, Shifo Subdistrict or Shifo, and the
subdistrict office's names clerks write (石佛街道办事处, 石佛办事处, 石佛办, 石佛 街道,
高新区石佛街道). :func:`named_subdistricts` says which subdistricts a name that is none of
these mentions, so a refusal can tell an unknown name from one naming two subdistricts.
"""

from __future__ import annotations

from enum import StrEnum

from schemas.fields import normalise_text


class District(StrEnum):
    SHIFO = "shifo"
    GOUZHAO = "gouzhao"
    FENGYANG = "fengyang"
    WUTONG = "wutong"
    SHUANGQIAO = "shuangqiao"
    # Zone-wide figures that the departments do not split by subdistrict.
    ZONE = "zone"


LABELS: dict[District, tuple[str, str]] = {
    District.SHIFO: ("石佛街道", "Shifo Subdistrict"),
    District.GOUZHAO: ("沟赵街道", "Gouzhao Subdistrict"),
    District.FENGYANG: ("枫杨街道", "Fengyang Subdistrict"),
    District.WUTONG: ("梧桐街道", "Wutong Subdistrict"),
    District.SHUANGQIAO: ("双桥街道", "Shuangqiao Subdistrict"),
    District.ZONE: ("高新区（全区）", "High-tech Zone (zone-wide)"),
}

SUBDISTRICTS: tuple[District, ...] = tuple(d for d in District if d is not District.ZONE)


def _key(text: str) -> str:
    """Lookup key: the text fields' normalisation (NFKC, no invisible characters, single
    spaces), case-folded."""
    return normalise_text(text).casefold()


def _names() -> dict[str, District]:
    names: dict[str, District] = {}
    for district in SUBDISTRICTS:
        zh, en = LABELS[district]
        short_zh, short_en = zh.removesuffix("街道"), en.removesuffix(" Subdistrict")
        spellings = (
            district.value,
            zh,
            short_zh,
            en,
            short_en,
            f"{short_en} Sub-district",
            f"{short_en} Street",
            f"{short_en} Street Office",
        )
        names.update(dict.fromkeys(spellings, district))
    zone_spellings = (
        "zone",
        *LABELS[District.ZONE],
        "高新区",
        "全区",
        "郑州高新区",
        "郑州高新技术产业开发区",
        "High-tech Zone",
        "zone-wide",
        "Zhengzhou High-tech Zone",
        "Zhengzhou National High-tech Zone",
    )
    names.update(dict.fromkeys(zone_spellings, District.ZONE))
    return names


NAMES: dict[str, District] = _names()
"""Every accepted spelling, as written, → district (what the JSON Schema description lists)."""

_BY_KEY: dict[str, District] = {_key(name): district for name, district in NAMES.items()}
# The exact spellings first: most records carry the code itself and skip normalisation.
_EXACT: dict[str, District] = {**NAMES, **{d.value: d for d in District}}


# A subdistrict's office (街道办事处) and its short forms stand for the subdistrict: clerks
# name their own office (石佛街道办事处, 石佛办事处, 石佛办) as often as the subdistrict.
# Longest first, so 石佛街道办事处 loses the whole suffix. A bare 街 is not among them:
# 梧桐街 is a street (a project name), not the subdistrict.
OFFICE_SUFFIXES: tuple[str, ...] = ("街道办事处", "街道办", "办事处", "街道", "办")
# The zone named in front of a subdistrict (高新区石佛街道) adds nothing.
ZONE_PREFIXES: tuple[str, ...] = ("郑州市高新区", "郑州高新区", "高新区")
_SHORT: dict[str, District] = {
    LABELS[district][0].removesuffix("街道"): district for district in SUBDISTRICTS
}


def district_code(text: str) -> District | None:
    """The district a code or name means, or None; case, width and spaces do not matter,
    and an office's name (石佛街道办事处, 石佛办, …) means its subdistrict."""
    found = _EXACT.get(text)
    if found is None:
        key = _key(text)
        found = _BY_KEY.get(key)
        if found is None:
            found = _office(key)
    return found


def _office(key: str) -> District | None:
    """石佛街道办事处, 石佛办, 石 佛 街道, 高新区石佛办事处 → shifo; anything else None."""
    compact = key.replace(" ", "")
    for prefix in ZONE_PREFIXES:
        if compact.startswith(prefix) and len(compact) > len(prefix):
            compact = compact[len(prefix) :]
            break
    for suffix in OFFICE_SUFFIXES:
        if compact.endswith(suffix):
            compact = compact[: -len(suffix)]
            break
    return _SHORT.get(compact)


def named_subdistricts(text: str) -> list[District]:
    """The subdistricts whose Chinese or English short name appears in ``text``, in the
    order of :data:`SUBDISTRICTS`: two or more mean the name is ambiguous (石佛/沟赵)."""
    key = _key(text).replace(" ", "")
    return [
        district
        for district in SUBDISTRICTS
        if LABELS[district][0].removesuffix("街道") in key or district.value in key
    ]


def accepted_names() -> str:
    """The five subdistricts' names, for a refusal: 石佛街道、沟赵街道、…、双桥街道."""
    return "、".join(LABELS[district][0] for district in SUBDISTRICTS)

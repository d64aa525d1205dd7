"""The five subdistricts (街道) of Zhengzhou National High-tech Zone, and the zone itself.

Events store the code (``shifo``, …); :func:`district_code` also reads the names
departments write in their ledgers: 石佛街道 or 石佛, Shifo Subdistrict or Shifo.
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


def district_code(text: str) -> District | None:
    """The district a code or name means, or None; case, width and spaces do not matter."""
    found = _EXACT.get(text)
    if found is None:
        found = _BY_KEY.get(_key(text))
    return found

"""The five subdistricts (街道) of Zhengzhou National High-tech Zone, and the zone itself."""

from __future__ import annotations

from enum import StrEnum


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

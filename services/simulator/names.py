"""Plausible Chinese project names per subdistrict for ``citystream simulate``.

The villages, roads and estates below are invented in the style of the zone's place names
(its roads are named after trees: 莲花街, 长椿路, 翠竹街 …); none of them is a claim
about a real site, and a simulated event must never be mistaken for a department's report
(every simulated ``source_ref`` starts with ``sim-``). Pure data and pure functions: no
I/O, no topics, no tables, no environment variables.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from schemas.districts import LABELS, District


@dataclass(frozen=True)
class Place:
    """What a subdistrict's projects are named after, and roughly where it lies."""

    villages: tuple[str, ...]
    roads: tuple[str, ...]
    # Centre in WGS-84 degrees; drainage points scatter around it.
    lat: float
    lon: float


PLACES: dict[District, Place] = {
    District.SHIFO: Place(
        villages=("石佛", "冉屯", "孟砦", "司马", "东史马", "瓦屋孙"),
        roads=("长椿路", "莲花街", "科学大道", "红松路", "雪松路", "翠竹街", "银杏路"),
        lat=34.815,
        lon=113.575,
    ),
    District.GOUZHAO: Place(
        villages=("沟赵", "老俩河", "常庄", "申河", "贾庄", "苏庄"),
        roads=("金梭路", "银屏路", "西四环", "瑞达路", "石楠路", "合欢街", "檀香路"),
        lat=34.785,
        lon=113.515,
    ),
    District.FENGYANG: Place(
        villages=("枫杨", "南流", "岗李", "后牛", "郭庄", "杜庄"),
        roads=("枫杨街", "冬青街", "化工路", "西三环", "红杉路", "香樟路", "柏杨路"),
        lat=34.845,
        lon=113.548,
    ),
    District.WUTONG: Place(
        villages=("西史赵", "东周", "朱屯", "堂李", "柿园", "梧桐"),
        roads=("梧桐街", "瑞达路", "长椿路", "木兰路", "紫荆山路", "桂香路", "丁香街"),
        lat=34.802,
        lon=113.552,
    ),
    District.SHUANGQIAO: Place(
        villages=("双桥", "牛砦", "薛岗", "王垌", "马寨", "前刘"),
        roads=("玉兰街", "杜鹃街", "碧桃路", "香梅路", "迎春街", "海棠路", "芍药路"),
        lat=34.862,
        lon=113.602,
    ),
}

ESTATE_PREFIXES = ("锦绣", "翠湖", "枫林", "云栖", "紫荆", "金桂", "悦澜", "和园", "书香", "康桥")
ESTATE_SUFFIXES = ("苑", "花园", "家园", "雅居", "小区", "公寓")
CORNERS = ("东北角", "西北角", "东南角", "西南角")
PHASES = ("一", "二", "三", "四", "五", "六", "七", "八")


SUBDISTRICT_NAMES: dict[District, str] = {d: zh for d, (zh, _) in LABELS.items()}


def _bare(road: str) -> str:
    """长椿路 → 长椿, 科学大道 → 科学: a road's name as a park or estate takes it."""
    return road.removesuffix("路").removesuffix("街").removesuffix("大道")


class Names:
    """Hands out project names, never the same one twice in a simulated year."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def unique(self, make: list[str]) -> str:
        """The first unused of the candidates ``make`` (in preference order), else a numbered
        variant of the first, so a name is always found. A new family's generator names its
        projects with this and :data:`PLACES`."""
        for name in make:
            if name not in self._used:
                self._used.add(name)
                return name
        base = make[0]
        n = 2
        while f"{base}（{n}）" in self._used:
            n += 1
        name = f"{base}（{n}）"
        self._used.add(name)
        return name

    def _two_roads(self, district: District) -> tuple[str, str]:
        first, second = self._rng.sample(PLACES[district].roads, 2)
        return first, second

    def resettlement_estate(self, district: District) -> str:
        """A resettlement estate (安置区) and phase, e.g. 冉屯安置区二期."""
        villages = list(PLACES[district].villages)
        self._rng.shuffle(villages)
        return self.unique([f"{v}安置区{p}期" for p in PHASES for v in villages])

    def village_estate(self, district: District) -> tuple[str, str]:
        """A village moving back and the estate it moves into."""
        villages = list(PLACES[district].villages)
        self._rng.shuffle(villages)
        name = self.unique([f"{v}村回迁安置" for v in villages])
        village = name.removesuffix("村回迁安置")
        return village, f"{village}安置区"

    def estate(self, district: District) -> str:
        """A residential estate to connect to district heating."""
        if self._rng.random() < 0.5:
            return self.resettlement_estate(district)
        candidates = [
            f"{road.removesuffix('路').removesuffix('街').removesuffix('大道')}{p}{s}"
            for road in self._rng.sample(PLACES[district].roads, 3)
            for p in self._rng.sample(ESTATE_PREFIXES, 3)
            for s in self._rng.sample(ESTATE_SUFFIXES, 2)
        ]
        return self.unique(candidates)

    def pipe_section(self, district: District) -> str:
        road, *ends = self._rng.sample(PLACES[district].roads, 3)
        return self.unique([f"{road}供热管网（{ends[0]}—{ends[1]}）"])

    def school(self, district: District, kind: str) -> str:
        roads = list(PLACES[district].roads)
        self._rng.shuffle(roads)
        return self.unique([f"{r}{kind}" for r in roads] + [f"{r}第二{kind}" for r in roads])

    def car_park(self, district: District, *, temporary: bool) -> str:
        a, b = self._two_roads(district)
        corner = self._rng.choice(CORNERS)
        what = "临时停车场" if temporary else "公共停车场"
        return self.unique([f"{a}与{b}交叉口{corner}{what}"])

    def idle_plot(self, district: District) -> str:
        a, b = self._two_roads(district)
        corner = self._rng.choice(CORNERS)
        return self.unique([f"{a}与{b}交叉口{corner}闲置地块临时停车位"])

    def crossing(self, district: District, road: str | None = None) -> str:
        """A waterlogging point at a crossing, e.g. 科学大道与长椿路交叉口."""
        if road is None:
            a, b = self._two_roads(district)
            return self.unique([f"{a}与{b}交叉口", f"{b}与{a}交叉口"])
        others = [r for r in PLACES[district].roads if r not in road]
        self._rng.shuffle(others)
        return self.unique([f"{road}与{o}交叉口" for o in others])

    def road_section(self, district: District) -> str:
        """A municipal road project between two crossings, e.g. 冬青街（红杉路—香樟路）."""
        road, *ends = self._rng.sample(PLACES[district].roads, 3)
        return self.unique([f"{road}（{ends[0]}—{ends[1]}）"])

    def water_main(self, district: District) -> str:
        road, *ends = self._rng.sample(PLACES[district].roads, 3)
        return self.unique([f"{road}供水管网（{ends[0]}—{ends[1]}）"])

    def gas_main(self, district: District) -> str:
        road, *ends = self._rng.sample(PLACES[district].roads, 3)
        return self.unique([f"{road}燃气管网（{ends[0]}—{ends[1]}）"])

    def park(self, district: District) -> str:
        """A park or pocket park (游园), e.g. 孟砦游园, 银杏路口袋公园."""
        villages = list(PLACES[district].villages)
        roads = [_bare(r) for r in PLACES[district].roads]
        self._rng.shuffle(villages)
        self._rng.shuffle(roads)
        return self.unique(
            [f"{v}游园" for v in villages]
            + [f"{r}口袋公园" for r in roads]
            + [f"{v}公园" for v in villages]
        )

    def green_site(self, district: District) -> str:
        """A site greened: a road's verges, a corner garden or an estate's green."""
        a, b = self._two_roads(district)
        villages = list(PLACES[district].villages)
        self._rng.shuffle(villages)
        candidates = [f"{a}道路绿化提升", f"{a}与{b}交叉口街头绿地"]
        self._rng.shuffle(candidates)
        return self.unique([*candidates, *(f"{v}安置区绿化" for v in villages)])

    def renewal_project(self, district: District) -> str:
        """An urban renewal (城中村改造) project named after its village."""
        villages = list(PLACES[district].villages)
        self._rng.shuffle(villages)
        return self.unique([f"{v}片区城市更新项目" for v in villages])

    def clinic(self, district: District) -> str:
        """A community health centre or station, e.g. 石佛街道社区卫生服务中心."""
        villages = list(PLACES[district].villages)
        self._rng.shuffle(villages)
        return self.unique(
            [f"{SUBDISTRICT_NAMES[district]}社区卫生服务中心"]
            + [f"{v}社区卫生服务站" for v in villages]
        )

    def insurance_station(self, district: District) -> str:
        """A medical-insurance service station, e.g. 枫杨街道医保服务站."""
        villages = list(PLACES[district].villages)
        self._rng.shuffle(villages)
        return self.unique(
            [f"{SUBDISTRICT_NAMES[district]}医保服务站"] + [f"{v}社区医保服务站" for v in villages]
        )

    def location(self, district: District) -> tuple[float, float]:
        place = PLACES[district]
        lat = round(place.lat + self._rng.uniform(-0.015, 0.015), 6)
        lon = round(place.lon + self._rng.uniform(-0.02, 0.02), 6)
        return lat, lon

    def official(self, officials: tuple[str, ...]) -> str:
        """One of a family's officials (``FamilySimulator.officials``), to approve a correction."""
        return self._rng.choice(officials)

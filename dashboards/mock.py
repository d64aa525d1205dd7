"""A picture of a dashboard's layout, drawn from its JSON: a mock, not a screenshot.

Grafana cannot run on our machines, so the README shows the pledge overview as an SVG drawn
from the generated JSON: every panel's box at its ``gridPos`` (24 columns; a grid row is 30
px as in Grafana), its title, its kind and a sketch of it. A repeated row is drawn once and
labelled as repeating. Pure function of the JSON: the same dashboard gives the same bytes.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from xml.sax.saxutils import escape

COLUMN_PX = 44
ROW_PX = 30
MARGIN = 16
HEADER_PX = 64
FONT = "Noto Sans CJK SC, Source Han Sans SC, PingFang SC, Microsoft YaHei, sans-serif"

KIND_NAMES = {
    "stat": "stat · 数值",
    "gauge": "gauge · 仪表",
    "timeseries": "time series · 折线",
    "table": "table · 表格",
    "bargauge": "bar gauge · 条形",
    "text": "text · 文本",
}


def _text_width(text: str, size: float) -> float:
    wide = sum(1 for c in text if unicodedata.east_asian_width(c) in "WF")
    return wide * size + (len(text) - wide) * size * 0.55


def _fit(text: str, width: float, size: float) -> str:
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _sketch(kind: str, x: float, y: float, w: float, h: float) -> list[str]:
    """A few strokes that say what the panel shows."""
    cx, cy = x + w / 2, y + h / 2 + 8
    if kind == "gauge":
        r = max(8.0, min(w, h) / 3)
        return [
            f'<path d="M {cx - r:.1f} {cy:.1f} A {r:.1f} {r:.1f} 0 0 1 {cx + r:.1f} {cy:.1f}" '
            'fill="none" stroke="#d0d7de" stroke-width="8"/>',
            f'<path d="M {cx - r:.1f} {cy:.1f} A {r:.1f} {r:.1f} 0 0 1 {cx:.1f} {cy - r:.1f}" '
            'fill="none" stroke="#73bf69" stroke-width="8"/>',
        ]
    if kind == "timeseries":
        left, right, bottom, top = x + 16, x + w - 16, y + h - 14, y + 40
        schedule = f"{left:.1f},{bottom:.1f} {right:.1f},{top:.1f}"
        steps = [(0, 0), (0.2, 0.05), (0.35, 0.3), (0.55, 0.35), (0.7, 0.6), (0.8, 0.62)]
        actual = " ".join(
            f"{left + (right - left) * fx:.1f},{bottom - (bottom - top) * fy:.1f}"
            for fx, fy in steps
        )
        return [
            f'<polyline points="{schedule}" fill="none" stroke="#8ab8ff" stroke-dasharray="6 4" '
            'stroke-width="2"/>',
            f'<polyline points="{actual}" fill="none" stroke="#73bf69" stroke-width="2"/>',
        ]
    if kind == "table":
        lines = []
        row_y = y + 44
        while row_y < y + h - 8:
            lines.append(
                f'<line x1="{x + 10:.1f}" y1="{row_y:.1f}" x2="{x + w - 10:.1f}" y2="{row_y:.1f}" '
                'stroke="#d0d7de"/>'
            )
            row_y += 14
        return lines
    if kind == "bargauge":
        return [
            f'<rect x="{x + 12:.1f}" y="{y + 40 + i * 16:.1f}" width="{(w - 24) * f:.1f}" '
            'height="9" fill="#8ab8ff"/>'
            for i, f in enumerate((0.9, 0.6, 0.75, 0.4))
            if y + 40 + i * 16 + 9 < y + h - 4
        ]
    if kind == "stat":
        return [
            f'<text x="{cx:.1f}" y="{cy + 6:.1f}" font-size="{min(24.0, h / 3):.1f}" '
            'text-anchor="middle" fill="#57606a">123</text>'
        ]
    return []


def render_svg(dashboard: dict[str, Any]) -> str:
    panels: list[dict[str, Any]] = dashboard["panels"]
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    width = 24 * COLUMN_PX + 2 * MARGIN
    height = HEADER_PX + bottom * ROW_PX + 2 * MARGIN
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}">',
        f'<rect width="{width}" height="{height}" fill="#f6f8fa"/>',
        f'<text x="{MARGIN}" y="{MARGIN + 18}" font-size="18" font-weight="bold" fill="#24292f">'
        f"{escape(dashboard['title'])}</text>",
        f'<text x="{MARGIN}" y="{MARGIN + 40}" font-size="12" fill="#cf222e">'
        "示意图（非截图）· MOCK, not a screenshot: panel grid drawn from "
        f"deploy/grafana/dashboards/{escape(dashboard['uid'])}.json by dashboards/mock.py</text>",
    ]
    for panel in panels:
        pos = panel["gridPos"]
        x = MARGIN + pos["x"] * COLUMN_PX
        y = HEADER_PX + MARGIN + pos["y"] * ROW_PX
        w, h = pos["w"] * COLUMN_PX - 4, pos["h"] * ROW_PX - 4
        if panel["type"] == "row":
            label = panel.get("title", "")
            if panel.get("repeat"):
                label = (
                    f"↻ 每项承诺一行（按变量 ${panel['repeat']} 重复）· one row per pledge, "
                    f"repeated over ${panel['repeat']}"
                )
            out.append(
                f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#eaeef2" rx="2"/>'
                f'<text x="{x + 8}" y="{y + 19}" font-size="13" font-weight="bold" '
                f'fill="#24292f">{escape(_fit(label, w - 16, 13))}</text>'
            )
            continue
        kind = panel["type"]
        out.append(
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#ffffff" '
            'stroke="#d0d7de" rx="3"/>'
        )
        out.append(
            f'<text x="{x + 8}" y="{y + 17}" font-size="12" font-weight="bold" fill="#24292f">'
            f"{escape(_fit(panel.get('title', ''), w - 16, 12))}</text>"
        )
        out.append(
            f'<text x="{x + 8}" y="{y + 31}" font-size="10" fill="#57606a">'
            f"{escape(_fit(KIND_NAMES.get(kind, kind), w - 16, 10))}</text>"
        )
        out.extend(_sketch(kind, x, y, w, h))
    out.append("</svg>")
    return "\n".join(out) + "\n"

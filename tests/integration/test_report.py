"""The main job end to end, and its report in a real browser.

``run_demo`` on the local stack (its own schema, topics and consumer group): a worker
process, 2022 and 2024 to 31 August simulated through Kafka, the 2022 check, the pledge
table, ``report.html``. Run twice, it shows the same numbers. The page is then opened in
headless Chromium (Debian's ``chromium``): the DOM it builds holds every pledge with its
charted series, and its screenshot is a drawn page, not a blank one.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat
from rich.console import Console

from schemas.seeds import load_catalogue
from services.demo import STATUS_DAY, run_demo
from services.pledges.formats import format_quantity
from services.pledges.report import gather
from services.pledges.rules import Status
from services.pledges.screenshot import rendered_dom, screenshot
from streams.db import connect
from streams.settings import Settings
from tests.conftest import ROOT, settings_env
from tests.integration.helpers import scalar
from tests.unit.test_report import ReportDom, assert_every_pledge_charted, assert_self_contained

pytestmark = pytest.mark.integration

ACTUAL_BLUE = (0x1F, 0x6F, 0xEB)  # --actual in services/pledges/report.html


def _mask(rgb: Image.Image, colour: tuple[int, int, int], tolerance: int = 24) -> Image.Image:
    """255 where a pixel is within ``tolerance`` of ``colour`` in every channel, else 0."""
    bands = [
        band.point(lambda v, c=c: 255 if abs(v - c) <= tolerance else 0)
        for band, c in zip(rgb.split(), colour, strict=True)
    ]
    return ImageChops.multiply(ImageChops.multiply(bands[0], bands[1]), bands[2])


def test_the_demo_writes_a_report_that_chromium_renders(isolated: Settings, tmp_path: Path) -> None:
    if shutil.which("chromium") is None:
        pytest.fail(
            "chromium is not installed: the report must be checked in a real browser; "
            "run 'make system-deps' as root or 'sudo apt-get install chromium'"
        )
    out = tmp_path / "report.html"
    output = io.StringIO()
    first = run_demo(isolated, timeout_s=120, console=Console(file=output, width=200), out=out)
    text = output.getvalue()
    events = scalar(isolated, "SELECT count(*) FROM events")

    # 2022: every reported achievement an event family measures, exactly.
    assert len(first.checks) >= 9
    assert [c.achievement.id for c in first.checks if c.difference != 0] == []
    assert "2022 年度成果核对" in text and "承诺进度 Pledge progress · 2024-08-31" in text
    # 2024 on 31 August: some pledges on track and some behind, as the simulator designs.
    statuses = {row.pledge_id: row.status for row in first.pledges}
    assert statuses["2024-housing-completed-area"] is Status.ON_TRACK
    assert statuses["2024-housing-started-area"] is Status.BEHIND
    assert statuses["2024-drainage-waterlogging-points"] is Status.ACHIEVED
    assert first.report == out.resolve() and f"7/7 report: {out.resolve()}" in text

    # The page's daily series end where the progress numbers are.
    catalogue = load_catalogue()
    with connect(isolated) as conn:
        views = gather(conn, on=STATUS_DAY, year=2024, catalogue=catalogue)
    assert [view.row for view in views] == first.pledges
    for view in views:
        if view.actual is not None:
            assert view.actual[-1] == (STATUS_DAY, view.row.actual_to_date), view.pledge.id
    assert any(view.actual is not None and len(view.actual) > 5 for view in views)

    # Again: nothing counts twice, the same numbers come out.
    second = run_demo(
        isolated, timeout_s=120, console=Console(file=io.StringIO(), width=200), out=out
    )
    assert second.pledges == first.pledges
    assert [(c.achievement.id, c.platform) for c in second.checks] == [
        (c.achievement.id, c.platform) for c in first.checks
    ]
    assert scalar(isolated, "SELECT count(*) FROM events") == events
    print(
        f"\ndemo: first run {first.seconds:.1f} s (caught up {first.caught_up_s:.1f} s after "
        f"the first send), second run {second.seconds:.1f} s"
    )

    html = out.read_text(encoding="utf-8")
    assert_self_contained(html)
    page = ReportDom(html)
    assert_every_pledge_charted(page, views)
    for view in views:
        shown = " ".join(page.section_text[view.pledge.id])
        assert format_quantity(view.row.actual_to_date, view.metric) in shown, view.pledge.id
        assert page.statuses[view.pledge.id] == view.row.status.value

    # What Chromium built from the file: every pledge, every series.
    dom = ReportDom(rendered_dom(out))
    assert_every_pledge_charted(dom, views)
    assert dom.statuses == page.statuses

    # What Chromium drew: the whole page, 1280 px wide.
    height = 7600
    png = screenshot(out, tmp_path / "report.png", width=1280, height=height)
    with Image.open(png) as image:
        assert image.size == (1280, height)
        rgb = image.convert("RGB")
    grey = rgb.convert("L")
    inked = sum(grey.histogram()[:200]) / (1280 * height)
    spread = ImageStat.Stat(grey).stddev[0]
    blue = _mask(rgb, ACTUAL_BLUE)
    blue_pixels = blue.histogram()[255]
    print(f"screenshot: {inked:.1%} inked, grey stddev {spread:.1f}, {blue_pixels} blue px")
    assert inked > 0.03, "the screenshot is (nearly) blank"
    assert spread > 20
    # The actual series are drawn in their colour, down to the last charts of the page.
    assert blue_pixels > 2000
    bbox = blue.getbbox()
    assert bbox is not None and bbox[3] > height * 0.75


def test_the_report_command(isolated: Settings, tmp_path: Path) -> None:
    """`citystream report` on its own: an empty ledger still gives a page for every pledge."""
    out = tmp_path / "cli" / "report.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "report",
            "--year",
            "2024",
            "--on",
            "2024-06-30",
            "--out",
            str(out),
        ],
        env=settings_env(isolated) | {"COLUMNS": "200"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"report: {out.resolve()}" in done.stdout
    html = out.read_text(encoding="utf-8")
    assert "2024年6月30日" in html
    assert set(ReportDom(html).sections) == {p.id for p in load_catalogue().pledges_for(2024)}

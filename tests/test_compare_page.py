"""The comparison page in a real headless Chromium (Debian's chromium, driven by Playwright):
slider, zoom, pan, layer and image switching, checked from the rendered pixels.

The page is opened from disk (file://) with the network-free flags a closed machine needs.
Without Chromium or Playwright these tests are skipped, unless FATSR_REQUIRE_BROWSER=1
(set by .ci/run, which installs both) makes that a failure.
"""

import base64
import io
import json
import os
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fatsr.cli import main
from test_compare import SCENE, smooth_image  # tests/ is on sys.path (pytest rootdir-relative imports)

FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
TOLERANCE = 3  # 8-bit levels between a rendered pixel and the layer's pixel


def _unavailable(reason: str):
    if os.environ.get("FATSR_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (FATSR_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        _unavailable("Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium,
            headless=True,
            args=FLAGS,
            viewport={"width": 1000, "height": 760},
        )
        yield context
        context.close()


class Page:
    """An opened compare page, its data (decoded layers) and the console errors it logged."""

    def __init__(self, context, path: Path) -> None:
        html = path.read_text()
        self.data = json.loads(re.search(r'id="fatsr-data">(.*?)</script>', html, re.S).group(1))
        self.errors: list[str] = []
        self.page = context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(path.as_uri())
        self.wait_images()

    def wait_images(self) -> None:
        self.page.wait_for_function(
            "window.fatsrPage && [...document.querySelectorAll('#viewer img.layer')].every(i => i.complete && i.naturalWidth)"
        )

    def state(self) -> dict:
        return self.page.evaluate("JSON.parse(JSON.stringify(fatsrPage.state))")

    def layer(self, item: int, name: str) -> np.ndarray:
        """The layer's pixels at output size (the LR repeated: nearest neighbour)."""
        entry = next(x for x in self.data["items"][item]["layers"] if x["name"] == name)
        with Image.open(io.BytesIO(base64.b64decode(entry["src"].split(",", 1)[1]))) as im:
            array = np.asarray(im.convert("RGB")).astype(int)
        if entry["lr"]:
            s = self.data["scale"]
            array = array.repeat(s, axis=0).repeat(s, axis=1)
        return array

    def screenshot(self) -> np.ndarray:
        with Image.open(io.BytesIO(self.page.screenshot())) as im:
            return np.asarray(im.convert("RGB")).astype(int)

    def box(self, selector: str) -> dict:
        return self.page.locator(selector).bounding_box()

    def samples(self, side: int) -> list[tuple[int, int, float, float]]:
        """Image pixels whose square lies on ``side`` (0 left, 1 right) of the swipe line or
        in that pane: (ix, iy, screen x, screen y) of each square's centre."""
        st = self.state()
        item = self.data["items"][st["item"]]
        pane = self.box("#pane-a" if side == 0 or st["mode"] == "swipe" else "#pane-b")
        viewer = self.box("#viewer")
        split = viewer["x"] + st["split"] * viewer["width"]
        lo, hi = (pane["x"], pane["x"] + pane["width"]) if st["mode"] == "side" else (
            (viewer["x"], split) if side == 0 else (split, viewer["x"] + viewer["width"]))  # fmt: skip
        out = []
        for iy in range(item["height"]):
            sy = pane["y"] + st["y"] + (iy + 0.5) * st["zoom"]
            if not pane["y"] + 30 < sy < pane["y"] + pane["height"] - 4:  # below the layer names
                continue
            for ix in range(item["width"]):
                sx = pane["x"] + st["x"] + (ix + 0.5) * st["zoom"]
                margin = max(st["zoom"] / 2 + 2, 16)  # clear of the swipe line and its handle
                if lo + margin < sx < hi - margin:
                    out.append((ix, iy, sx, sy))
        return out[:: max(1, len(out) // 60)]

    def assert_shows(self, side: int, name: str, other: str) -> None:
        """The squares on ``side`` are the pixels of layer ``name``, and several of them
        differ from layer ``other`` (so the check tells the two apart)."""
        st, shot = self.state(), self.screenshot()
        expected, alternative = self.layer(st["item"], name), self.layer(st["item"], other)
        points = self.samples(side)
        assert len(points) >= 4, "too few pixel squares visible to check"
        telling = 0
        for ix, iy, sx, sy in points:
            rendered = shot[int(sy), int(sx)]
            assert np.abs(rendered - expected[iy, ix]).max() <= TOLERANCE, (
                f"side {side}: pixel {ix},{iy} shows {rendered}, layer {name} has {expected[iy, ix]}")  # fmt: skip
            telling += np.abs(expected[iy, ix] - alternative[iy, ix]).max() > 3 * TOLERANCE
        assert telling >= 3, f"layers {name} and {other} hardly differ where checked"


@pytest.fixture(scope="module")
def image_page(tmp_path_factory, model_file) -> Path:
    folder = tmp_path_factory.mktemp("compare")
    (folder / "hr").mkdir()
    for i in range(2):
        Image.fromarray(smooth_image(10 + i, 96)).save(folder / "hr" / f"tile{i}.png")
    page = folder / "page.html"
    assert main(["compare", "--hr", str(folder / "hr"), "--model", "bicubic", "--model", str(model_file),
                 "-o", str(page)]) == 0  # fmt: skip
    return page


def test_image_page_slider_zoom_layers_and_images(browser, image_page: Path) -> None:
    p = Page(browser, image_page)
    page = p.page
    assert [x["name"] for x in p.data["items"][0]["layers"]] == ["LR", "bicubic", "tiny", "HR"]
    st = p.state()
    assert st["layers"] == ["bicubic", "tiny"] and st["mode"] == "swipe" and st["item"] == 0  # the baseline first
    p.assert_shows(0, "bicubic", "tiny")
    p.assert_shows(1, "tiny", "bicubic")

    # zoom with the wheel about the cursor: the image point under it stays put
    viewer = p.box("#viewer")
    cx, cy = viewer["x"] + viewer["width"] * 0.3, viewer["y"] + viewer["height"] * 0.4
    page.mouse.move(cx, cy)
    before = p.state()
    point = ((cx - viewer["x"] - before["x"]) / before["zoom"], (cy - viewer["y"] - before["y"]) / before["zoom"])
    for _ in range(2):
        page.mouse.wheel(0, -300)
    page.wait_for_function(f"fatsrPage.state.zoom > {before['zoom'] * 3.9}")
    after = p.state()
    assert after["zoom"] == pytest.approx(before["zoom"] * 4) and after["zoom"] >= 8
    assert (
        (cx - viewer["x"] - after["x"]) / after["zoom"],
        (cy - viewer["y"] - after["y"]) / after["zoom"],
    ) == pytest.approx(point, abs=0.05)
    assert page.locator("#zoom-label").inner_text() == f"{after['zoom']:.0f}x"
    p.assert_shows(0, "bicubic", "tiny")
    p.assert_shows(1, "tiny", "bicubic")

    # drag the swipe line to 85%: what was the right layer there is now the left one
    page.mouse.move(viewer["x"] + viewer["width"] * 0.5, viewer["y"] + viewer["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(viewer["x"] + viewer["width"] * 0.85, viewer["y"] + viewer["height"] * 0.5, steps=5)
    page.mouse.up()
    assert p.state()["split"] == pytest.approx(0.85, abs=0.01)
    assert p.state()["zoom"] == after["zoom"] and p.state()["x"] == after["x"]  # the drag moved no image
    p.assert_shows(0, "bicubic", "tiny")
    shot = p.screenshot()
    sx, sy = viewer["x"] + viewer["width"] * 0.7, viewer["y"] + viewer["height"] * 0.5
    ix, iy = int((sx - viewer["x"] - after["x"]) / after["zoom"]), int((sy - viewer["y"] - after["y"]) / after["zoom"])
    if 0 <= ix < 96 and 0 <= iy < 96:
        assert np.abs(shot[int(sy), int(sx)] - p.layer(0, "bicubic")[iy, ix]).max() <= TOLERANCE

    # pan with the keyboard, then with the mouse
    page.keyboard.press("ArrowLeft")
    assert p.state()["x"] == pytest.approx(after["x"] + 40)
    page.mouse.move(viewer["x"] + 100, viewer["y"] + 100)
    page.mouse.down()
    page.mouse.move(viewer["x"] + 130, viewer["y"] + 80, steps=3)
    page.mouse.up()
    moved = p.state()
    assert (moved["x"], moved["y"]) == pytest.approx((after["x"] + 70, after["y"] - 20))
    p.assert_shows(0, "bicubic", "tiny")

    # switch layers: the right one from the menu, then with keys
    page.keyboard.press("BracketLeft")
    page.keyboard.press("BracketLeft")
    page.keyboard.press("BracketLeft")
    page.keyboard.press("BracketLeft")
    page.keyboard.press("BracketLeft")
    page.keyboard.press("BracketLeft")
    page.keyboard.press("BracketLeft")
    assert p.state()["split"] == pytest.approx(0.5)
    page.select_option("#layer-b", "HR")
    p.wait_images()
    p.assert_shows(1, "HR", "bicubic")
    page.locator("#viewer").focus()
    page.keyboard.press("2")  # right: layer 2, bicubic
    page.keyboard.press("Shift+Digit3")  # left: layer 3, tiny
    p.wait_images()
    assert p.state()["layers"] == ["tiny", "bicubic"]
    p.assert_shows(0, "tiny", "bicubic")
    p.assert_shows(1, "bicubic", "tiny")
    page.keyboard.press("x")
    p.wait_images()
    p.assert_shows(0, "bicubic", "tiny")

    # side by side: the same image pixel in both panes, one layer each
    page.keyboard.press("s")
    assert p.state()["mode"] == "side"
    p.assert_shows(0, "bicubic", "tiny")
    p.assert_shows(1, "tiny", "bicubic")
    page.keyboard.press("s")

    # next image with the keyboard, back with a thumbnail; the layer choice is kept
    page.keyboard.press("n")
    p.wait_images()
    assert p.state()["item"] == 1
    p.assert_shows(0, "bicubic", "tiny")
    p.assert_shows(1, "tiny", "bicubic")
    page.locator("#thumbs li").nth(0).click()
    p.wait_images()
    assert p.state()["item"] == 0
    p.assert_shows(1, "tiny", "bicubic")

    # the magnifier shows the layer under the cursor, 4x the view's zoom
    page.locator("#magnifier").check()
    page.locator("#viewer").focus()
    st = p.state()
    ix, iy = int((viewer["width"] * 0.25 - st["x"]) / st["zoom"]), int((viewer["height"] * 0.5 - st["y"]) / st["zoom"])
    cx, cy = viewer["x"] + st["x"] + (ix + 0.5) * st["zoom"], viewer["y"] + st["y"] + (iy + 0.5) * st["zoom"]
    page.mouse.move(cx, cy)
    assert page.locator("#loupe").is_visible()
    loupe = p.box("#loupe")
    shot = p.screenshot()
    centre = shot[int(loupe["y"] + loupe["height"] / 2), int(loupe["x"] + loupe["width"] / 2)]
    assert np.abs(centre - p.layer(0, st["layers"][0])[iy, ix]).max() <= TOLERANCE

    # numbers shown for the scored layers
    rows = page.locator("#scores tbody tr").all_inner_texts()
    tiny = next(x for x in p.data["items"][0]["layers"] if x["name"] == "tiny")
    assert any(r.startswith("tiny") and f"{tiny['scores']['psnr_y']:.2f}" in r for r in rows)
    assert page.locator("#table-wrap").is_visible()
    assert "Shift+1-9" in page.locator("#keys").inner_text()
    assert p.errors == []
    page.close()


def test_evaluate_page_opens_with_its_table(browser, tmp_path: Path, model_file: Path) -> None:
    (tmp_path / "hr").mkdir()
    for i in range(3):
        Image.fromarray(smooth_image(20 + i, 32)).save(tmp_path / "hr" / f"im{i}.png")
    assert (
        main(["evaluate", str(tmp_path / "hr"), "--model", str(model_file), "-o", str(tmp_path / "ev"), "--html"]) == 0
    )
    p = Page(browser, tmp_path / "ev" / "report.html")
    names = [i["name"] for i in p.data["items"]]
    rows = p.page.locator("#table tbody tr")
    assert rows.count() == 3 and [rows.nth(i).locator("td").nth(1).inner_text() for i in range(3)] == names
    rows.nth(2).click()
    p.wait_images()
    assert p.state()["item"] == 2
    p.assert_shows(1, "tiny", "LR")
    assert p.errors == []
    p.page.close()


def test_scene_page_overview_regions_and_coordinates(browser, tmp_path: Path) -> None:
    import rasterio

    path = tmp_path / "scene.html"
    assert (
        main(["compare", str(SCENE), "--model", "bicubic", "--region-size", "32", "--regions", "3", "-o", str(path)])
        == 0
    )
    p = Page(browser, path)
    page = p.page
    scene = p.data["scene"]
    with rasterio.open(SCENE) as ds:
        transform, width, height = ds.transform, ds.width, ds.height
    assert (scene["width"], scene["height"], scene["crs"]) == (width, height, "EPSG:32621")
    cells = [tuple(i["cell"]) for i in p.data["items"]]
    assert len(cells) == 3
    overview = p.box("#overview")
    at = lambda c, r: (overview["x"] + (c + 0.5) * 32 / width * overview["width"],  # noqa: E731
                       overview["y"] + (r + 0.5) * 32 / height * overview["height"])  # fmt: skip

    # a click on another computed cell shows that region, read from the file
    page.mouse.click(*at(*cells[2]))
    p.wait_images()
    assert p.state()["item"] == 2
    p.assert_shows(0, "LR", "bicubic")
    p.assert_shows(1, "bicubic", "LR")
    zoom = p.state()["zoom"]
    page.locator("#viewer").focus()
    page.keyboard.press("+")
    page.keyboard.press("]")
    assert p.state()["zoom"] == pytest.approx(2 * zoom) and p.state()["split"] == pytest.approx(0.55)
    p.assert_shows(0, "LR", "bicubic")
    p.assert_shows(1, "bicubic", "LR")

    # a click on a cell not in the page names the command that adds it
    missing = next((c, r) for r in range(height // 32) for c in range(width // 32) if (c, r) not in cells)
    page.mouse.click(*at(*missing))
    status = page.locator("#status").inner_text()
    x, y = map(float, re.search(r"--region (\S+) (\S+)$", status).groups())
    assert (x, y) == pytest.approx(transform @ ((missing[0] + 0.5) * 32, (missing[1] + 0.5) * 32), abs=0.01)
    assert p.state()["item"] == 2
    command = shlex.split(re.search(r"run: (fatsr compare .*)$", status).group(1))
    assert main(command[1:]) == 0  # the same page again, with that region
    again = json.loads(re.search(r'id="fatsr-data">(.*?)</script>', path.read_text(), re.S).group(1))
    assert sorted(tuple(i["cell"]) for i in again["items"]) == sorted([*cells, missing])

    # the cursor over the region reads coordinates in the raster's CRS
    viewer = p.box("#viewer")
    st = p.state()
    sx, sy = viewer["x"] + viewer["width"] * 0.5 + 3, viewer["y"] + viewer["height"] * 0.5 + 3
    page.mouse.move(sx, sy)
    text = page.locator("#cursor").inner_text()
    assert "EPSG:32621" in text
    gx, gy = map(float, re.search(r"x (-?[\d.]+)\s+y (-?[\d.]+)", text).groups())
    c, r = cells[2]
    ox, oy = (sx - viewer["x"] - st["x"]) / st["zoom"], (sy - viewer["y"] - st["y"]) / st["zoom"]
    expected = transform @ (c * 32 + ox / 4, r * 32 + oy / 4)
    assert (gx, gy) == pytest.approx(expected, abs=0.1)
    assert "percentile" in page.locator("#notes").inner_text()
    assert p.errors == []
    page.close()

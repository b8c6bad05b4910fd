"""Grid-anchored windows: the upscaled pixels of any window of a scene are those of the
whole-scene output cut to it, bit for bit; --window / --bbox georeference, clipping and
refusals."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from rasterio.warp import transform_bounds

import fatsr
from checks import assert_one_line_error
from checks import upscale_cli as cli
from fatsr.errors import FatsrError
from fatsr.inference.options import RasterOptions
from fatsr.inference.raster import upscale_raster
from fatsr.inference.tiling import Tiling, array_reader, upscale_tiled, upscale_window
from fatsr.inference.windows import PixelWindow
from fatsr.models.bicubic import BicubicModel

RASTERS = Path(__file__).resolve().parents[1] / "fixtures" / "rasters"
OSBS = RASTERS / "OSBS_029.tif"  # 300x350 uint8 RGB, nodata 255 (saturated pixels), EPSG:32617
SIX = RASTERS / "LC08_232066_20190727_sr_int16_6band.tif"  # 130x130 int16 x 6, nodata -9999
TILINGS = [Tiling(24, 6, panel=64), Tiling(36, 12, batch=3, panel=96)]  # several panels, batches of 1 and 3
FAST = RasterOptions(cog=False, overviews=False)


def random_windows(height: int, width: int, count: int, seed: int) -> list[PixelWindow]:
    """``count`` random windows, the first four touching the top, bottom, left and right edges,
    the fifth the whole scene's corner."""
    rng = random.Random(seed)
    found = []
    for k in range(count):
        h, w = rng.randint(1, height // 2), rng.randint(1, width // 2)
        row, col = rng.randint(0, height - h), rng.randint(0, width - w)
        row = {0: 0, 1: height - h}.get(k, row)
        col = {2: 0, 3: width - w, 4: width - w}.get(k, col)
        row = height - h if k == 4 else row
        found.append(PixelWindow(col, row, w, h))
    return found


def pixels(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    with rasterio.open(path) as ds:
        return ds.read(), ds.read_masks(), ds.profile


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("tiling", TILINGS, ids=["24-6", "36-12-batch3"])
def test_window_is_the_whole_scene_output_cut_to_it(tmp_path, model_file, tiling, threads):
    """A real orthophoto with nodata (inpainted for the network): every window's pixels, mask and
    transform are those of the whole-scene output there."""
    torch.set_num_threads(threads)
    model = fatsr.load_model(model_file)
    whole = tmp_path / "whole.tif"
    upscale_raster(OSBS, whole, model, tiling=tiling, options=FAST)
    data, mask, profile = pixels(whole)
    with rasterio.open(OSBS) as ds:
        windows = random_windows(ds.height, ds.width, 7, seed=threads)
        assert (ds.read() == 255).any()  # nodata pixels to inpaint
    for k, window in enumerate(windows):
        dst = tmp_path / f"window{k}.tif"
        upscale_raster(OSBS, dst, model, tiling=tiling, options=FAST, window=window)
        got, got_mask, got_profile = pixels(dst)
        rows = slice(window.row * 2, (window.row + window.height) * 2)
        cols = slice(window.col * 2, (window.col + window.width) * 2)
        assert got.shape == (3, window.height * 2, window.width * 2)
        assert np.array_equal(got, data[:, rows, cols]), window
        assert np.array_equal(got_mask, mask[:, rows, cols]), window
        assert got_profile["transform"] == profile["transform"] @ Affine.translation(cols.start, rows.start)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("tiling", TILINGS, ids=["24-6", "36-12-batch3"])
def test_upscale_window_matches_the_whole_array(model_file, tiling, threads):
    """The reusable block function: many random windows of an array against one whole run."""
    torch.set_num_threads(threads)
    model = fatsr.load_model(model_file)
    with rasterio.open(OSBS) as ds:
        image = ds.read(window=((0, 150), (0, 170))).astype(np.float32) / 255
    whole = upscale_tiled(model, image, tiling)
    for window in random_windows(150, 170, 12, seed=10 + threads):
        top, bottom, left, right = window.area
        got = upscale_window(model, array_reader(image), 150, 170, window.area, tiling)
        assert np.array_equal(got, whole[:, top * 2 : bottom * 2, left * 2 : right * 2]), window


def test_int16_six_bands_window_with_back_projection(tmp_path):
    """Six int16 bands with nodata, each band alone through bicubic, back-projected: the window
    is the whole scene's output there (the percentile mapping is the whole scene's)."""
    model = BicubicModel(2)
    whole, dst = tmp_path / "whole.tif", tmp_path / "window.tif"
    options = RasterOptions(cog=False, overviews=False, back_project=True)
    upscale_raster(SIX, whole, model, tiling=Tiling(24, 6, panel=48), options=options)
    upscale_raster(SIX, dst, model, tiling=Tiling(24, 6, panel=48), options=options, window=PixelWindow(50, 7, 61, 90))
    assert np.array_equal(pixels(dst)[0], pixels(whole)[0][:, 14:194, 100:222])


def test_bbox_in_the_raster_crs_and_in_lon_lat(capsys, tmp_path, model_file):
    with rasterio.open(OSBS) as ds:
        t, crs = ds.transform, ds.crs
    x0, y0 = t @ (40, 30)  # pixel edges: exactly the window 40 30 20 10
    x1, y1 = t @ (60, 40)
    dst = tmp_path / "bbox.tif"
    fatsr.upscale(OSBS, model_file, tile=24, overlap=6, output=dst, bbox=(x0, y1, x1, y0), bbox_crs=str(crs))
    window_dst = tmp_path / "window.tif"
    fatsr.upscale(OSBS, model_file, tile=24, overlap=6, output=window_dst, window=(40, 30, 20, 10))
    assert np.array_equal(pixels(dst)[0], pixels(window_dst)[0])
    with rasterio.open(dst) as out:
        assert out.tags()["FATSR_WINDOW"].startswith("40 30 20 10")
    # lon/lat: the window covers the bbox (snapped outward), by less than a pixel on each side
    west, south, east, north = transform_bounds(crs, "EPSG:4326", x0 + 0.3, y1 + 0.3, x1 - 0.3, y0 - 0.3)
    code, _, err = cli(capsys, OSBS, "--model", model_file, "--tile", "24", "--overlap", "6",
                       "--bbox", west, south, east, north, "-o", tmp_path / "ll.tif")  # fmt: skip
    assert code == 0, err
    with rasterio.open(tmp_path / "ll.tif") as ll:
        inner = transform_bounds("EPSG:4326", crs, west, south, east, north)
        b = ll.bounds
        assert b.left <= inner[0] and b.bottom <= inner[1] and b.right >= inner[2] and b.top >= inner[3]
        assert inner[0] - b.left < 0.1 and b.right - inner[2] < 0.1 and inner[1] - b.bottom < 0.1
        assert b.top - inner[3] < 0.1  # 0.1 m: one source pixel


def test_bbox_in_the_wrong_crs_is_one_line(capsys, tmp_path, model_file):
    with rasterio.open(OSBS) as ds:
        x0, y0 = ds.transform @ (40, 30)
        x1, y1 = ds.transform @ (60, 40)
    # projected metres given as longitude/latitude (the default --bbox-crs): no place on the Earth
    code, _, err = cli(capsys, OSBS, "--model", model_file, "--bbox", x0, y1, x1, y0, "-o", tmp_path / "o.tif")
    assert_one_line_error(code, err, "cannot be placed in the raster's CRS (EPSG:32617) from EPSG:4326; "
                                     "give its coordinates in EPSG:4326, or name the CRS they are in")  # fmt: skip
    assert not (tmp_path / "o.tif").exists()


def test_window_partly_outside_is_clipped_with_a_warning(capsys, tmp_path, model_file):
    dst = tmp_path / "clip.tif"
    code, _, err = cli(capsys, OSBS, "--model", model_file, "--tile", "24", "--overlap", "6",
                       "--window", 290, -5, 20, 15, "-o", dst)  # fmt: skip
    assert code == 0
    assert (
        "warning: " in err
        and "the window 290 -5 20 15 reaches outside the raster; clipped to the window 290 0 10 10" in err
    )
    with rasterio.open(dst) as out, rasterio.open(OSBS) as ds:
        assert (out.width, out.height) == (20, 20)
        assert out.transform == ds.transform @ Affine.translation(290, 0) @ Affine.scale(0.5)
    with pytest.warns(UserWarning, match="clipped to the window 290 0 10 10"):
        fatsr.upscale(OSBS, model_file, tile=24, overlap=6, output=tmp_path / "api.tif", window=(290, -5, 20, 15))


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--window", 400, 0, 10, 10], "the window 400 0 10 10 is outside the raster (300x350 pixels)"),
        (["--window", 0, 0, 0, 10], "window 0 0 0 10: give a positive WIDTH and HEIGHT"),
        (["--bbox", 10, 40, 11, 41], "the bbox 10 40 11 41 (EPSG:4326) is outside the raster"),
        (["--bbox", 1, 2, 0, 3], "WEST < EAST"),
        (["--bbox", 0, 0, 1, 1, "--bbox-crs", "EPSG:99999"], "bbox CRS 'EPSG:99999': not a CRS"),
    ],
)
def test_area_refusals_are_one_line_and_write_nothing(capsys, tmp_path, model_file, flags, needle):
    code, _, err = cli(capsys, OSBS, "--model", model_file, "--tile", "24", *flags, "-o", tmp_path / "out.tif")
    assert_one_line_error(code, err, needle)
    assert list(tmp_path.iterdir()) == []


def test_window_of_a_picture_is_refused(tmp_path, model_file):
    png = Path(__file__).resolve().parents[2] / "examples" / "harbor55.png"
    with pytest.raises(FatsrError, match="window: not for a plain picture"):
        fatsr.upscale(png, model_file, output=tmp_path / "out.png", window=(0, 0, 10, 10))

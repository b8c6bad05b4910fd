"""Bands and bit depths as the file declares them: colour order from colour interpretation and
band names, bands the model was not trained on bicubic, alpha bands holding data, NBITS,
back-projection under clipping, and ``fatsr evaluate``'s peak. Rasters are made here from the
harbour picture in examples/ (real pixels, invented placements and bands)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import ColorInterp

import fatsr
from checks import assert_one_line_error
from checks import upscale_cli as cli
from fatsr.cli import main
from fatsr.inference.bands import name_role, rgb_roles
from fatsr.inference.bitdepth import back_project
from fatsr.inference.options import RasterOptions
from fatsr.inference.raster import upscale_raster
from fatsr.inference.resample import Bicubic
from fatsr.inference.tiling import Tiling
from fatsr.models.contract import ModelInfo

HARBOR = Path(__file__).resolve().parents[2] / "examples" / "harbor55.png"
SCALE = 2
TILING = Tiling(24, 6)
UTM = CRS.from_epsg(32633)
PLACE = Affine(0.3, 0, 500000, 0, -0.3, 4100000)
NOTE = "taken as red, green, blue"


def harbor(height: int = 40, width: int = 52, top: int = 60, left: int = 30) -> np.ndarray:
    """(3, H, W) uint8 RGB of the real picture."""
    return np.asarray(Image.open(HARBOR))[top : top + height, left : left + width].transpose(2, 0, 1).copy()


def nir_of(rgb: np.ndarray) -> np.ndarray:
    """An invented near-infrared band: bright where the green is, many distinct values."""
    return np.clip(1.6 * rgb[1].astype(np.float64) - 0.4 * rgb[0], 0, 255)


def write(path: Path, data: np.ndarray, interp: list[ColorInterp] | None = None, descriptions=None, **profile) -> Path:
    profile = {"driver": "GTiff", "count": data.shape[0], "height": data.shape[1], "width": data.shape[2],
               "dtype": data.dtype.name, "crs": UTM, "transform": PLACE} | profile  # fmt: skip
    with rasterio.open(path, "w", **profile) as out:
        out.write(data)
        if interp is not None:
            out.colorinterp = interp
        for i, text in enumerate(descriptions or [], 1):
            out.set_band_description(i, text)
    return path


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def block_means(out: np.ndarray) -> np.ndarray:
    c, h, w = out.shape
    return out.astype(np.float64).reshape(c, h // SCALE, SCALE, w // SCALE, SCALE).mean(axis=(2, 4))


# --- colour order ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "role"),
    [("Red", "red"), ("B04", "red"), ("band 2 - blue", "blue"), ("NIR", "nir"), ("Near Infrared", "nir"),
     ("B8A", "nir"), ("Red Edge 1", "red edge"), ("SWIR 1", "swir"), ("B4", None), ("elevation", None)],
)  # fmt: skip
def test_band_names_say_their_role(text, role):
    assert name_role(text) == role


def test_blue_green_red_tagged_file_equals_rgb_order_with_bands(capsys, tmp_path, model_file):
    rgb = harbor()
    bgr = rgb[::-1].copy()
    tagged = write(tmp_path / "bgr.tif", bgr, [ColorInterp.blue, ColorInterp.green, ColorInterp.red])
    named = write(tmp_path / "named.tif", bgr, descriptions=["B02", "B03", "B04"])
    plain = write(tmp_path / "plain.tif", bgr, [ColorInterp.undefined] * 3)
    for src in (tagged, named):
        with rasterio.open(src) as ds:
            assert rgb_roles(ds).rgb == (3, 2, 1) and rgb_roles(ds).declared
    outputs = {}
    for src, flags in ((tagged, []), (named, []), (plain, ["--bands", "3,2,1"])):  # plain: chosen by hand
        code, _, err = cli(capsys, src, "--model", model_file, "--tile", 24, "--overlap", 6, *flags)
        assert code == 0 and NOTE not in err, err
        outputs[src.name] = read(tmp_path / f"{src.stem}_x2.tif")
        with rasterio.open(tmp_path / f"{src.stem}_x2.tif") as ds:
            assert json.loads(ds.tags()["FATSR_BANDS"]) == {"3,2,1": "rgb"}
    np.testing.assert_array_equal(outputs["bgr.tif"], outputs["plain.tif"])
    np.testing.assert_array_equal(outputs["named.tif"], outputs["plain.tif"])
    # and the network really sees the order: file order (1,2,3 as R,G,B) gives other values
    upscale_raster(plain, tmp_path / "file_order.tif", fatsr.load_model(model_file), tiling=TILING)
    assert not np.array_equal(read(tmp_path / "file_order.tif"), outputs["plain.tif"])


def test_undeclared_colours_give_a_one_line_notice(capsys, tmp_path, model_file):
    src = write(tmp_path / "plain.tif", harbor().astype(np.uint16) * 40)  # GDAL tags 3-band uint8 RGB by default
    with rasterio.open(src) as ds:
        assert ColorInterp.red not in ds.colorinterp
    code, _, err = cli(capsys, src, "--model", model_file, "--tile", 24, "--overlap", 6)
    notes = [line for line in err.splitlines() if NOTE in line]
    assert code == 0 and notes == [f"note: {src}: bands 1,2,3 taken as red, green, blue (no colour interpretation "
                                   "or band name says which is which); choose others with --bands"]  # fmt: skip


def test_a_band_named_nir_is_not_taken_as_a_colour(tmp_path):
    rgb = harbor()
    data = np.concatenate([nir_of(rgb)[None], rgb]).astype(np.uint16)  # uint16: GDAL adds no RGB(A) tags
    src = write(tmp_path / "nrgb.tif", data, descriptions=["nir", "", "", ""])
    with rasterio.open(src) as ds:
        assert rgb_roles(ds).rgb == (2, 3, 4) and not rgb_roles(ds).declared


# --- bands the model was not trained on -------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "int16"])
def test_a_fourth_band_goes_bicubic_and_rgb_through_the_network(tmp_path, model_file, dtype):
    rgb = harbor()
    nir = nir_of(rgb)
    if dtype == "int16":  # surface reflectance-like: negative and large values
        rgb, nir = rgb.astype(np.int16) * 30 - 200, (nir * 30 - 200).astype(np.int16)
    data = np.concatenate([rgb, nir[None].astype(rgb.dtype)])
    interp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined]
    src = write(tmp_path / "rgbn.tif", data, interp, photometric="RGB", alpha="UNSPECIFIED")
    three = write(tmp_path / "rgb.tif", rgb, interp[:3])
    with rasterio.open(src) as ds:
        assert ds.colorinterp[3] == ColorInterp.undefined
    model = fatsr.load_model(model_file)
    for path in (src, three):
        upscale_raster(path, tmp_path / f"{path.stem}_net.tif", model, tiling=TILING)
    upscale_raster(src, tmp_path / "bicubic.tif", Bicubic(SCALE), tiling=TILING)
    out = read(tmp_path / "rgbn_net.tif")
    np.testing.assert_array_equal(out[3], read(tmp_path / "bicubic.tif")[3])  # fatsr's bicubic of that band
    np.testing.assert_array_equal(out[:3], read(tmp_path / "rgb_net.tif"))  # RGB: the network's, as alone
    reference = F.interpolate(torch.from_numpy(data[3:].astype(np.float64))[None], scale_factor=SCALE,
                              mode="bicubic", align_corners=False)[0, 0].numpy()  # fmt: skip
    info = np.iinfo(data.dtype)
    assert np.abs(out[3].astype(np.float64) - np.clip(np.rint(reference), info.min, info.max)).max() <= 1
    with rasterio.open(tmp_path / "rgbn_net.tif") as ds:
        assert json.loads(ds.tags()["FATSR_BANDS"]) == {"1,2,3": "rgb", "4": "bicubic"}
    options = RasterOptions(other_bands="network")  # the network as grey stays an option
    upscale_raster(src, tmp_path / "grey.tif", model, tiling=TILING, options=options)
    with rasterio.open(tmp_path / "grey.tif") as ds:
        assert json.loads(ds.tags()["FATSR_BANDS"])["4"] == "network"
        assert not np.array_equal(ds.read(4), out[3])


def test_a_single_band_goes_through_the_network_as_grey(capsys, tmp_path, model_file):
    band = harbor()[1:2]
    src = write(tmp_path / "pan.tif", band)
    code, _, err = cli(capsys, src, "--model", model_file, "--tile", 24, "--overlap", 6)
    assert code == 0 and "note" not in err, err
    with rasterio.open(tmp_path / "pan_x2.tif") as ds:
        assert json.loads(ds.tags()["FATSR_BANDS"]) == {"1": "network"}
        grey = ds.read(1)
    expected = fatsr.upscale(np.ascontiguousarray(band.transpose(1, 2, 0)), model_file, tile=24, overlap=6)
    np.testing.assert_array_equal(grey, expected[:, :, 0])  # the picture path's grey: the same network


# --- alpha bands that hold data ----------------------------------------------------------------


def rgba(tmp_path: Path, fourth: np.ndarray) -> Path:
    data = np.concatenate([harbor(), fourth[None].astype(np.uint8)])
    return write(tmp_path / "rgba.tif", data, photometric="RGB", alpha="YES")


def test_an_alpha_band_with_many_values_warns_and_the_flag_upscales_it(capsys, tmp_path, model_file):
    rgb = harbor()
    nir = nir_of(rgb)
    nir[:5] = 0  # where NIR is 0 an alpha mask would say "no data"
    src = rgba(tmp_path, nir)
    with rasterio.open(src) as ds:
        assert ds.colorinterp[3] == ColorInterp.alpha
    code, _, err = cli(capsys, src, "--model", model_file, "--tile", 24, "--overlap", 6)
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert code == 0 and len(warnings) == 1, err
    assert "band 4 is tagged alpha" in warnings[0] and "--alpha-as-data" in warnings[0]
    with rasterio.open(tmp_path / "rgba_x2.tif") as ds:
        assert json.loads(ds.tags()["FATSR_BANDS"])["4"] == "nearest"
    code, _, err = cli(capsys, src, "--model", model_file, "--tile", 24, "--overlap", 6, "--alpha-as-data",
                       "--overwrite")  # fmt: skip
    assert code == 0 and "warning" not in err, err
    with rasterio.open(tmp_path / "rgba_x2.tif") as ds:
        assert json.loads(ds.tags()["FATSR_BANDS"]) == {"1,2,3": "rgb", "4": "bicubic"}
        assert ds.colorinterp[3] == ColorInterp.undefined and (ds.dataset_mask() == 255).all()
        out = ds.read()
    upscale_raster(write(tmp_path / "rgb.tif", rgb, photometric="RGB"), tmp_path / "rgb_x2.tif",
                   fatsr.load_model(model_file), tiling=TILING)  # fmt: skip
    np.testing.assert_array_equal(out[:3], read(tmp_path / "rgb_x2.tif"))  # no pixel masked by the NIR
    upscale_raster(src, tmp_path / "bicubic.tif", Bicubic(SCALE), tiling=TILING,
                   options=RasterOptions(alpha_as_data=True))  # fmt: skip
    np.testing.assert_array_equal(out[3], read(tmp_path / "bicubic.tif")[3])


def test_a_true_alpha_band_does_not_warn(capsys, tmp_path, model_file):
    alpha = np.where(np.arange(52) < 20, 0, 255)[None].repeat(40, 0)
    src = rgba(tmp_path, alpha)
    code, _, err = cli(capsys, src, "--model", model_file, "--tile", 24, "--overlap", 6)
    assert code == 0 and "warning" not in err, err


# --- bit depth -----------------------------------------------------------------------------------


def twelve_bit(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 12-bit (NBITS=12) uint16 raster with a saturated roof (4095) and a black shadow (0)."""
    data = (harbor().astype(np.uint16) * 16).clip(0, 4095)
    data[:, 8:20, 10:24] = 4095
    data[:, 26:34, 30:44] = 0
    return write(tmp_path / "twelve.tif", data, nbits=12), data


class Overshoot:
    """A stand-in network that overshoots both ends: nearest x2, contrast 1.5 about 0.5."""

    scale = SCALE
    channels = 3
    info = ModelInfo(name="overshoot", scale=SCALE, in_channels=3, out_channels=3)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (F.interpolate(x, scale_factor=SCALE, mode="nearest") - 0.5) * 1.5 + 0.5


def test_twelve_bit_file_keeps_nbits_and_its_range(capsys, tmp_path, model_file):
    src, data = twelve_bit(tmp_path)
    wide = write(tmp_path / "wide.tif", data)  # the same values without NBITS
    with rasterio.open(src) as ds:
        assert ds.tags(1, ns="IMAGE_STRUCTURE")["NBITS"] == "12"
    upscale_raster(wide, tmp_path / "wide_x2.tif", Overshoot(), tiling=TILING)
    assert read(tmp_path / "wide_x2.tif").max() > 5000  # what the overshoot gives where nothing bounds it
    for cog in (True, False):
        dst = tmp_path / f"out{cog}.tif"
        upscale_raster(src, dst, Overshoot(), tiling=TILING, options=RasterOptions(cog=cog))
        with rasterio.open(dst) as ds:
            out = ds.read()
            assert ds.tags(1, ns="IMAGE_STRUCTURE")["NBITS"] == "12" and ds.dtypes[0] == "uint16"
            assert json.loads(ds.tags()["FATSR_VALUE_MAPPING"])["clamp"] == [0, 4095]
        assert out.max() == 4095 and out.min() == 0
    code, _, err = cli(capsys, src, "--model", model_file, "--tile", 24, "--overlap", 6)
    assert code == 0, err
    with rasterio.open(tmp_path / "twelve_x2.tif") as ds:
        assert ds.tags(1, ns="IMAGE_STRUCTURE")["NBITS"] == "12" and ds.read().max() <= 4095


def test_back_projection_holds_block_means_where_values_clip(tmp_path, model_file):
    model = fatsr.load_model(model_file)
    src12, data12 = twelve_bit(tmp_path)
    data8 = harbor()
    data8[:, 8:20, 10:24] = 255
    data8[:, 26:34, 30:44] = 0
    src8 = write(tmp_path / "eight.tif", data8, photometric="RGB")
    shadow = np.maximum(data8, 1)  # nodata 0: valid pixels end at 1
    src8n = write(tmp_path / "nodata.tif", shadow, photometric="RGB", nodata=0)
    cases = ((src8, data8, 0, 255), (src8n, shadow, 1, 255), (src12, data12, 0, 4095))
    for src, data, bottom, top in cases:
        dst = tmp_path / f"{src.stem}_bp.tif"
        upscale_raster(src, dst, model, tiling=TILING, options=RasterOptions(back_project=True))
        out = read(dst)
        assert (out == top).any() and (out == bottom).any() and out.min() == bottom  # values clip at both ends
        assert np.abs(block_means(out) - data).max() <= 0.5


def test_back_project_spreads_what_clips_and_names_what_cannot_hold():
    rng = np.random.default_rng(0)
    lr = np.array([[[0.99, 0.5], [0.0, 1.0]]])  # (1, 2, 2) in unit space, limits 0..1
    unit = np.clip(lr.repeat(SCALE, 1).repeat(SCALE, 2) + rng.normal(0, 0.2, (1, 4, 4)), -0.5, 1.5)
    shifted = np.clip(back_project(unit, lr, SCALE)[0], 0, 1)  # one shift per block, then the clip
    assert np.abs(block_means(shifted) - lr).max() > 1e-3
    limits = (np.zeros((1, 1, 1)), np.ones((1, 1, 1)))
    exact, off = back_project(unit, lr, SCALE, limits)
    assert exact.min() >= 0 and exact.max() <= 1 and not off.any()
    np.testing.assert_allclose(block_means(exact), lr, atol=1e-9)
    _, off = back_project(unit, lr + np.array([[[0, 0], [0, 0.5]]]), SCALE, limits)  # 1.5: beyond the range
    np.testing.assert_array_equal(off, [[[False, False], [False, True]]])


def test_an_input_at_the_limit_rounded_to_float32_can_hold():
    """A 12-bit top value mapped to a unit limit above 1 (4095 / 4068.0, say) lands a float32
    rounding step beyond the float64 limit; it is still an input at the limit, not one beyond."""
    high = 4095 / 4068.0
    lr = np.full((1, 2, 2), high, np.float32)
    assert float(lr[0, 0, 0]) > high  # the rounding this test is about
    unit = np.full((1, 2 * SCALE, 2 * SCALE), 1.2, np.float32)
    out, off = back_project(unit, lr, SCALE, (np.zeros((1, 1, 1)), np.full((1, 1, 1), high)))
    assert not off.any() and out.max() <= np.float32(high)
    np.testing.assert_allclose(block_means(out.astype(np.float64)), high, atol=1e-7)


# --- fatsr evaluate's peak -------------------------------------------------------------------------


def evaluate_cli(capsys, hr: Path, sr: Path, out: Path, *flags: str) -> tuple[int, str, str, dict]:
    code = main(["evaluate", str(hr), "--sr", str(sr), "--scale", "2", "--border", "0", "-o", str(out), *flags])
    printed, err = capsys.readouterr()
    if code:
        return code, printed, err, {}
    with (out / "metrics.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    return code, printed, err, row


def test_evaluate_twelve_bit_uses_peak_4095(capsys, tmp_path):
    _, hr = twelve_bit(tmp_path)
    write(tmp_path / "hr.tif", hr, nbits=12)
    sr = np.clip(hr.astype(np.int64) + np.random.default_rng(1).integers(-40, 41, hr.shape), 0, 4095).astype(np.uint16)
    write(tmp_path / "sr.tif", sr, nbits=12)
    code, printed, err, row = evaluate_cli(capsys, tmp_path / "hr.tif", tmp_path / "sr.tif", tmp_path / "out")
    assert code == 0, err
    expected = 10 * np.log10(4095.0**2 / np.mean((sr.astype(np.float64) - hr) ** 2))
    assert float(row["psnr_rgb"]) == pytest.approx(expected, rel=1e-5)
    assert "0..4095 (NBITS=12)" in printed and "no data: no HR pixel left out" in printed


def test_evaluate_int16_with_range_and_nodata(capsys, tmp_path):
    hr = harbor().astype(np.int16) * 20 - 100
    hr[:, :4, :] = -9999  # a strip without data
    sr = hr + np.random.default_rng(2).integers(-30, 31, hr.shape).astype(np.int16)
    sr[hr == -9999] = -9999
    write(tmp_path / "hr.tif", hr, nodata=-9999)
    write(tmp_path / "sr.tif", sr, nodata=-9999)
    code, _, err, _ = evaluate_cli(capsys, tmp_path / "hr.tif", tmp_path / "sr.tif", tmp_path / "out")
    assert_one_line_error(code, err, "int16", "--range 0 10000")
    code, printed, err, row = evaluate_cli(capsys, tmp_path / "hr.tif", tmp_path / "sr.tif", tmp_path / "out",
                                           "--range", "-100", "5000")  # fmt: skip
    assert code == 0, err
    valid = (slice(None), slice(4, None), slice(None))
    expected = 10 * np.log10(5100.0**2 / np.mean((sr[valid].astype(np.float64) - hr[valid]) ** 2))
    assert float(row["psnr_rgb"]) == pytest.approx(expected, rel=1e-5)
    assert "-100..5000 (--range)" in printed
    assert f"no data: {4 * 52} HR pixels left out of every score (hr {4 * 52})" in printed

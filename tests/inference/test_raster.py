"""GeoTIFF upscaling on windows of the real NEON/Landsat files: georeference, nodata,
dtypes, value mapping, bands, tags, and user errors (CLI: one line, exit 2, no file left)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from rasterio.windows import Window

import fatsr
from checks import assert_one_line_error
from checks import upscale_cli as cli
from fatsr.errors import FatsrError
from fatsr.inference.options import RasterOptions
from fatsr.inference.raster import upscale_raster
from fatsr.inference.reading import is_raster
from fatsr.inference.resample import Bicubic
from fatsr.inference.tiling import Tiling
from fatsr.models.contract import ModelInfo

NEON = (
    Path(__file__).resolve().parents[1] / "fixtures" / "rasters"
)  # top-left crops of the real files (fixtures/README.md)
OSBS = NEON / "OSBS_029.tif"  # uint8 RGB, nodata 255 (saturated pixels)
COLLAR = NEON / "RGB.byte_crop512.tif"  # uint8 RGB, nodata 0 collar
SIX = NEON / "LC08_232066_20190727_sr_int16_6band.tif"  # int16 x 6, nodata -9999
DEEP = NEON / "LC08_L1TP_224078_20200518_uint16_3band_crop512.tif"  # uint16 x 3, no nodata
SCALE = 2
TILING = Tiling(24, 6)


def crop(src: Path, dst: Path, col: int, row: int, width: int, height: int, **changes) -> Path:
    """Copy a window of a real raster (profile and georeference kept) into ``dst``."""
    with rasterio.open(src) as ds:
        window = Window(col, row, width, height)
        data = ds.read(window=window)
        profile = ds.profile | {"width": width, "height": height, "transform": ds.window_transform(window)}
        tags = [ds.tags(i) for i in ds.indexes]
    profile.update(changes)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data.astype(profile["dtype"]))
        for i, band_tags in enumerate(tags, 1):
            out.update_tags(i, **band_tags)
    return dst


def read(path: Path) -> tuple[np.ndarray, dict, dict]:
    with rasterio.open(path) as ds:
        return ds.read(), ds.profile, ds.tags()


def nearest(a: np.ndarray) -> np.ndarray:
    return a.repeat(SCALE, axis=-2).repeat(SCALE, axis=-1)


def bicubic(a: np.ndarray) -> np.ndarray:
    """Independent reference: whole-image torch bicubic in float64."""
    x = torch.from_numpy(a.astype(np.float64))[None]
    return F.interpolate(x, scale_factor=SCALE, mode="bicubic", align_corners=False)[0].numpy()


class ChannelShift:
    """A stand-in model that tells channels apart: nearest x2 plus 0, 0.1, 0.2 per channel."""

    scale = SCALE
    channels = 3
    info = ModelInfo(name="channelshift", scale=SCALE, in_channels=3, out_channels=3)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shift = torch.tensor([0.0, 0.1, 0.2])[: x.shape[1]].view(1, -1, 1, 1)
        return F.interpolate(x, scale_factor=SCALE, mode="nearest") + shift


# --- georeference, nodata, dtypes ---------------------------------------------------------


def test_same_seed_same_file_with_one_or_two_torch_threads(tmp_path, model_file):
    """Two threads run two tile workers; the COG copy compresses on two threads too."""
    src = crop(OSBS, tmp_path / "osbs.tif", 200, 40, 70, 60)
    hashes = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        dst = tmp_path / f"out{threads}.tif"
        fatsr.upscale(src, model_file, tile=24, overlap=6, output=dst)
        hashes.append(hashlib.sha256(dst.read_bytes()).hexdigest())
    assert hashes[0] == hashes[1]


def test_rgb_geotiff_keeps_crs_transform_nodata_and_records_tags(tmp_path, model_file):
    src = crop(OSBS, tmp_path / "osbs.tif", 200, 40, 60, 44)  # holds saturated (= nodata) pixels
    dst = tmp_path / "out.tif"
    fatsr.upscale(src, model_file, tile=24, overlap=6, output=dst)
    lr, lr_profile, _ = read(src)
    hr, profile, tags = read(dst)
    assert profile["crs"] == lr_profile["crs"]
    assert profile["transform"] == lr_profile["transform"] @ Affine.scale(1 / SCALE)
    assert profile["transform"].c == lr_profile["transform"].c and profile["transform"].f == lr_profile["transform"].f
    assert (profile["width"], profile["height"]) == (60 * SCALE, 44 * SCALE)
    assert profile["dtype"] == "uint8" and profile["nodata"] == 255 and profile["tiled"]
    masked = nearest(lr == 255)
    assert masked.any() and (~masked).any()
    np.testing.assert_array_equal(hr == 255, masked)  # nodata exactly where the source had it
    model_hash = hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert tags["FATSR_VERSION"] == fatsr.__version__ and tags["FATSR_MODEL"] == "tiny"
    assert tags["FATSR_MODEL_SHA256"] == model_hash
    assert (tags["FATSR_SCALE"], tags["FATSR_TILE"], tags["FATSR_OVERLAP"], tags["FATSR_SEED"]) == ("2", "24", "6", "0")
    mapping = json.loads(tags["FATSR_VALUE_MAPPING"])
    assert mapping["method"] == "dtype range" and mapping["low"] == [0.0] * 3 and mapping["high"] == [255.0] * 3
    with rasterio.open(src) as ds:
        assert "STATISTICS_MEAN" in ds.tags(1)
    with rasterio.open(dst) as ds:
        assert ds.compression.value.lower() == "deflate"
        assert not any(k.startswith("STATISTICS_") for i in ds.indexes for k in ds.tags(i))


def test_nodata_collar_round_trips(tmp_path, model_file):
    src = crop(COLLAR, tmp_path / "collar.tif", 100, 80, 64, 40)
    dst = tmp_path / "out.tif"
    upscale_raster(src, dst, fatsr.load_model(model_file), tiling=TILING)
    lr, hr = read(src)[0], read(dst)[0]
    masked = nearest(lr == 0)
    assert 0.1 < masked.mean() < 0.9
    np.testing.assert_array_equal(hr == 0, masked)


def test_sixteen_bit_mapping_is_recorded_and_inverted(tmp_path):
    """uint16 through a bicubic 'model': the percentile mapping must cancel exactly."""
    src = crop(DEEP, tmp_path / "deep.tif", 100, 200, 50, 40)
    dst = tmp_path / "out.tif"
    upscale_raster(src, dst, Bicubic(SCALE), tiling=TILING)
    lr, hr, tags = read(src)[0], *read(dst)[::2]
    assert hr.dtype == np.uint16 and hr.shape == (3, 80, 100)
    expected = np.clip(np.rint(bicubic(lr)), 0, 65535)
    assert np.abs(hr.astype(np.int64) - expected).max() <= 1
    mapping = json.loads(tags["FATSR_VALUE_MAPPING"])
    assert mapping["method"].startswith("percentile 0.5-99.5")
    for band, low, high in zip(lr, mapping["low"], mapping["high"]):
        assert low == pytest.approx(np.percentile(band, 0.5)) and high == pytest.approx(np.percentile(band, 99.5))


def test_six_band_int16_with_nodata(tmp_path, model_file):
    src = crop(SIX, tmp_path / "six.tif", 30, 30, 40, 36)
    with rasterio.open(src, "r+") as ds:  # a corner of real nodata
        block = ds.read(window=Window(0, 0, 7, 5))
        ds.write(np.full_like(block, -9999), window=Window(0, 0, 7, 5))
    dst = tmp_path / "out.tif"
    fatsr.upscale(src, model_file, tile=24, overlap=6, output=dst)
    lr, hr, tags = read(src)[0], *read(dst)[::2]
    assert hr.dtype == np.int16 and hr.shape == (6, 72, 80)
    np.testing.assert_array_equal(hr == -9999, nearest(lr == -9999))
    valid = hr[hr != -9999]
    assert valid.min() > -9999 and valid.std() > 0
    assert json.loads(tags["FATSR_BANDS"]) == {"1,2,3": "rgb", "4": "bicubic", "5": "bicubic", "6": "bicubic"}


def test_other_bands_bicubic(tmp_path, model_file):
    src = crop(SIX, tmp_path / "six.tif", 100, 100, 30, 30)
    dst = tmp_path / "out.tif"
    options = RasterOptions(bands=(3, 2, 1), other_bands="bicubic")
    upscale_raster(src, dst, fatsr.load_model(model_file), tiling=TILING, options=options)
    lr, hr = read(src)[0], read(dst)[0]
    assert np.abs(hr[3:].astype(np.int64) - np.rint(bicubic(lr[3:]))).max() <= 1


def test_bands_choose_the_network_channels(tmp_path):
    src = crop(OSBS, tmp_path / "osbs.tif", 10, 10, 30, 26, nodata=None)
    dst = tmp_path / "out.tif"
    upscale_raster(src, dst, ChannelShift(), tiling=TILING, options=RasterOptions(bands=(3, 2, 1)))
    lr, hr = read(src)[0].astype(np.int64), read(dst)[0].astype(np.int64)
    shifts = {3: 0.0, 2: 25.5, 1: 51.0}  # band 3 fed as R (+0), 2 as G (+0.1), 1 as B (+0.2), in 8-bit levels
    for band, shift in shifts.items():
        assert np.abs(hr[band - 1] - np.clip(nearest(lr[band - 1]) + shift, 0, 255)).max() <= 0.5


def test_user_range_is_used_and_recorded(tmp_path):
    src = crop(DEEP, tmp_path / "deep.tif", 0, 0, 30, 30)
    dst = tmp_path / "out.tif"
    upscale_raster(src, dst, ChannelShift(), tiling=TILING, options=RasterOptions(value_range=(5000, 20000)))
    lr, hr, tags = read(src)[0].astype(np.int64), *read(dst)[::2]
    assert json.loads(tags["FATSR_VALUE_MAPPING"])["low"] == [5000.0] * 3
    np.testing.assert_array_equal(hr[1], nearest(lr[1]) + 1500)  # 0.1 of the 15000-level range


# --- the CLI ------------------------------------------------------------------------------


def test_cli_geotiff_default_name_zstd_and_flags(capsys, tmp_path, model_file):
    src = crop(SIX, tmp_path / "six.tif", 0, 0, 30, 24)
    assert is_raster(src)
    code, out, err = cli(
        capsys,
        src,
        "--model",
        model_file,
        "--tile",
        24,
        "--overlap",
        6,
        "--bands",
        "4,3,2",
        "--other-bands",
        "bicubic",
        "--compress",
        "zstd",
        "--range",
        -100,
        6000,
    )
    assert code == 0, err
    dst = tmp_path / "six_x2.tif"
    assert out.splitlines() == [str(dst)]
    with rasterio.open(dst) as ds:
        assert ds.compression.value.lower() == "zstd" and ds.dtypes[0] == "int16" and ds.count == 6
        assert json.loads(ds.tags()["FATSR_BANDS"])["4,3,2"] == "rgb"


def test_cli_large_png_goes_through_the_tiler(capsys, tmp_path, model_file):
    from PIL import Image

    with rasterio.open(OSBS) as ds:
        rgb = ds.read(window=Window(0, 0, 60, 50)).transpose(1, 2, 0)
    Image.fromarray(rgb).save(tmp_path / "big.png")
    code, _, err = cli(capsys, tmp_path / "big.png", "--model", model_file, "--tile", 24, "--overlap", 6)
    assert code == 0, err
    expected = fatsr.upscale(rgb, model_file, tile=24, overlap=6)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "big_x2.png")), expected)


def test_cli_not_a_raster(capsys, tmp_path, model_file):
    bad = tmp_path / "notes.tif"
    bad.write_text("not a raster\n")
    code, _, err = cli(capsys, bad, "--model", model_file)
    assert_one_line_error(code, err, "notes.tif")
    assert set(tmp_path.iterdir()) == {bad}


def test_cli_complex_dtype(capsys, tmp_path, model_file):
    src = crop(SIX, tmp_path / "cplx.tif", 0, 0, 12, 12, dtype="complex64", nodata=None)
    code, _, err = cli(capsys, src, "--model", model_file)
    assert_one_line_error(code, err, "complex64", "not supported")
    assert set(tmp_path.iterdir()) == {src}


def test_cli_output_is_input_or_unwritable(capsys, tmp_path, model_file):
    src = crop(OSBS, tmp_path / "osbs.tif", 0, 0, 20, 20)
    code, _, err = cli(capsys, src, "-o", src, "--model", model_file, "--overwrite")
    assert_one_line_error(code, err, "would replace this input")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = cli(capsys, src, "-o", blocker / "out.tif", "--model", model_file)
    assert_one_line_error(code, err, "-o")
    code, _, err = cli(capsys, src, "-o", tmp_path / "out.png", "--model", model_file)
    assert_one_line_error(code, err, ".tif")
    assert set(tmp_path.iterdir()) == {src, blocker}


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--bands", "1,2"], "3 different band numbers"),
        (["--bands", "1,2,9"], "bands 1 to 3"),
        (["--tile", "50"], "multiple of 12"),
        (["--range", "10", "5"], "LO must be below HI"),
    ],
)
def test_cli_bad_flags(capsys, tmp_path, model_file, flags, needle):
    src = crop(OSBS, tmp_path / "osbs.tif", 0, 0, 20, 20)
    code, _, err = cli(capsys, src, "--model", model_file, *flags)
    assert_one_line_error(code, err, needle)
    assert set(tmp_path.iterdir()) == {src}


def test_failure_midway_leaves_no_file(tmp_path):
    class Failing(ChannelShift):
        calls = 0

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            Failing.calls += 1
            if Failing.calls > 2:
                raise FatsrError("model failed")
            return super().__call__(x)

    src = crop(OSBS, tmp_path / "osbs.tif", 0, 0, 60, 60)
    with pytest.raises(FatsrError, match="model failed"):
        upscale_raster(src, tmp_path / "out.tif", Failing(), tiling=TILING)
    assert set(tmp_path.iterdir()) == {src}


def test_georaster_path_without_output_gives_array_and_profile(tmp_path, model_file):
    src = crop(OSBS, tmp_path / "osbs.tif", 0, 0, 20, 20)
    array, profile = fatsr.upscale(src, model_file)
    assert array.shape == (3, 40, 40) and profile["width"] == 40 and profile["nodata"] == 255
    assert sorted(p.name for p in tmp_path.iterdir()) == ["osbs.tif"]  # nothing written beside it


def test_cli_skip_existing_upscales_only_the_rest(capsys, tmp_path, model_file):
    folder = tmp_path / "in"
    folder.mkdir()
    first = crop(OSBS, folder / "a.tif", 0, 0, 20, 20)
    crop(OSBS, folder / "b.tif", 20, 20, 20, 20)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.tif").write_bytes(b"done before")
    code, _, err = cli(capsys, folder, "-o", out, "--model", model_file)
    assert_one_line_error(code, err, "exists", "--overwrite")
    code, printed, err = cli(capsys, folder, "-o", out, "--model", model_file, "--skip-existing")
    assert code == 0, err
    assert printed.splitlines() == [str(out / "b.tif")]
    assert (out / "a.tif").read_bytes() == b"done before" and first.exists()
    assert read(out / "b.tif")[1]["width"] == 40


# --- resuming, overviews, empty rasters -----------------------------------------------------


class Counting(ChannelShift):
    """ChannelShift that counts tiles and can fail after a number of forward passes."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls, self.tiles, self.fail_after = 0, 0, fail_after

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt
        self.tiles += x.shape[0]
        return super().__call__(x)


def test_interrupted_scene_resumes_without_recomputing(tmp_path):
    src = crop(OSBS, tmp_path / "osbs.tif", 0, 0, 120, 90)
    tiling = Tiling(24, 6, batch=2, panel=48)
    whole = Counting()
    upscale_raster(src, tmp_path / "whole.tif", whole, tiling=tiling)

    out = tmp_path / "out.tif"
    with pytest.raises(KeyboardInterrupt):
        upscale_raster(src, out, Counting(fail_after=12), tiling=tiling, checkpoint_seconds=0)
    assert not out.exists()
    partial = {p.name for p in tmp_path.iterdir()} - {"osbs.tif", "whole.tif"}
    assert partial == {".out.tif.fatsr-partial.tif", ".out.tif.fatsr-partial.json"}

    rest = Counting()
    upscale_raster(src, out, rest, tiling=tiling, checkpoint_seconds=0)
    assert 0 < rest.tiles < whole.tiles - 12  # the windows written before the stop were not redone
    assert {p.name for p in tmp_path.iterdir()} == {"osbs.tif", "whole.tif", "out.tif"}
    (a, pa, ta), (b, pb, tb) = read(out), read(tmp_path / "whole.tif")
    np.testing.assert_array_equal(a, b)
    assert pa == pb and ta == tb


def test_partial_of_another_job_is_not_resumed(tmp_path):
    src = crop(OSBS, tmp_path / "osbs.tif", 0, 0, 60, 60)
    out = tmp_path / "out.tif"
    with pytest.raises(KeyboardInterrupt):
        upscale_raster(src, out, Counting(fail_after=2), tiling=TILING, checkpoint_seconds=0)
    other = Tiling(36, 6)  # different settings: start again
    fresh = Counting()
    upscale_raster(src, out, fresh, tiling=other, checkpoint_seconds=0)
    expected = Counting()
    upscale_raster(src, tmp_path / "ref.tif", expected, tiling=other)
    assert fresh.tiles == expected.tiles
    np.testing.assert_array_equal(read(out)[0], read(tmp_path / "ref.tif")[0])


def test_plain_geotiff_overviews(tmp_path):
    src = crop(OSBS, tmp_path / "osbs.tif", 0, 0, 150, 140)
    out = tmp_path / "out.tif"
    upscale_raster(src, out, ChannelShift(), tiling=TILING, options=RasterOptions(cog=False))
    with rasterio.open(out) as ds:
        assert ds.overviews(1) == [2]  # 300x280: one level brings it under 256
        assert ds.tags(ns="rio_overview")["resampling"] == "average"
        full = ds.read(1).astype(float)
        half = ds.read(1, out_shape=(140, 150)).astype(float)  # served from the overview
    expected = full.reshape(140, 2, 150, 2).mean(axis=(1, 3))
    assert np.abs(half - expected).max() <= 1


@pytest.mark.parametrize(
    "xml",
    [
        '<VRTDataset rasterXSize="10" rasterYSize="10"></VRTDataset>',  # zero bands
        '<VRTDataset rasterXSize="0" rasterYSize="10"><VRTRasterBand dataType="Byte" band="1"/></VRTDataset>',  # zero columns
    ],
)
def test_cli_raster_without_bands_or_pixels(capsys, tmp_path, model_file, xml):
    # GDAL cannot create such a GeoTIFF; it reads files by content, so this .tif is a VRT
    src = tmp_path / "empty.tif"
    src.write_text(xml)
    code, _, err = cli(capsys, src, "-o", tmp_path / "out.tif", "--model", model_file)
    assert_one_line_error(code, err, "empty.tif", "not a readable")
    assert set(tmp_path.iterdir()) == {src}


def test_cli_five_band_file(capsys, tmp_path, model_file):
    with rasterio.open(SIX) as ds:  # bands 1-5 of the real Landsat file
        window = Window(50, 40, 30, 26)
        data = ds.read([1, 2, 3, 4, 5], window=window)
        profile = ds.profile | {"count": 5, "width": 30, "height": 26, "transform": ds.window_transform(window)}
    src = tmp_path / "five.tif"
    with rasterio.open(src, "w", **profile) as out:
        out.write(data)
    code, printed, err = cli(capsys, src, "--model", model_file, "--bands", "3,2,1", "--tile", "24", "--overlap", "6")
    assert code == 0, err
    dst = Path(printed.strip())
    assert dst == tmp_path / "five_x2.tif"
    hr, out_profile, tags = read(dst)
    assert hr.shape == (5, 52, 60) and hr.dtype == np.int16
    assert out_profile["crs"] == profile["crs"] and out_profile["nodata"] == profile["nodata"]
    assert out_profile["transform"] == profile["transform"] @ Affine.scale(1 / SCALE)
    assert json.loads(tags["FATSR_BANDS"]) == {"3,2,1": "rgb", "4": "bicubic", "5": "bicubic"}
    # values: with a nearest-neighbour stand-in, each band comes back as its own enlargement
    # (band 3 is the network's first channel, which ChannelShift does not shift; 4 and 5 go alone)
    # (a range holding every value: values beyond the range would take the bicubic tail path)
    span = (float(data[data != -9999].min()), float(data.max()))
    options = RasterOptions(bands=(3, 2, 1), value_range=span, other_bands="network")
    upscale_raster(src, tmp_path / "nearest.tif", ChannelShift(), tiling=TILING, options=options)
    values = read(tmp_path / "nearest.tif")[0]
    for band in (2, 3, 4):
        np.testing.assert_array_equal(values[band], nearest(data[band]))

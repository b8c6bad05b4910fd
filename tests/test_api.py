"""fatsr.upscale on arrays and raster paths: layouts, grey, int16, N bands, (array, profile)."""

from __future__ import annotations

import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from PIL import Image
from rasterio.crs import CRS

import fatsr
from fatsr.errors import FatsrError
from fatsr.inference.resample import Bicubic

HARBOR = Path(__file__).resolve().parents[1] / "examples" / "harbor55.png"
KW = {"tile": 24, "overlap": 6}


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.asarray(Image.open(HARBOR))[40:70, 50:86].copy()  # 30x36x3 uint8, real pixels


@pytest.fixture(scope="module")
def tiny(model_file):
    return fatsr.load_model(model_file)


def bicubic(chw: np.ndarray, scale: int = 2) -> np.ndarray:
    """Independent reference: whole-image torch bicubic in float64."""
    x = torch.from_numpy(chw.astype(np.float64))[None]
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)[0].numpy()


def test_hwc_chw_numpy_and_torch_agree(rgb, tiny):
    hwc = fatsr.upscale(rgb, tiny, **KW)
    chw = fatsr.upscale(np.ascontiguousarray(rgb.transpose(2, 0, 1)), tiny, **KW)
    np.testing.assert_array_equal(chw, hwc.transpose(2, 0, 1))
    tensor = fatsr.upscale(torch.from_numpy(rgb.transpose(2, 0, 1).copy()), tiny, **KW)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.uint8
    np.testing.assert_array_equal(tensor.numpy(), chw)


def test_ambiguous_layout_is_said_and_settled(tiny):
    square = np.random.default_rng(0).integers(0, 256, (3, 24, 3), dtype=np.uint8)  # CHW 3x24x3 or HWC?
    with pytest.warns(UserWarning, match="assumed HWC"):
        assumed = fatsr.upscale(square, tiny, **KW)
    assert assumed.shape == (6, 48, 3)
    assert fatsr.upscale(square, tiny, layout="CHW", **KW).shape == (3, 48, 6)
    with pytest.raises(FatsrError, match="layout="):
        fatsr.upscale(np.zeros((30, 30, 30), np.uint8), tiny)


def test_two_d_grey(rgb, tiny):
    grey = np.ascontiguousarray(rgb[:, :, 1])
    out = fatsr.upscale(grey, tiny, **KW)
    assert out.shape == (60, 72) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, fatsr.upscale(grey[:, :, None], tiny, **KW)[:, :, 0])


def test_int16_goes_by_a_stretch_and_comes_back_int16(rgb):
    data = rgb.transpose(2, 0, 1).astype(np.int16) * 20 - 500  # like surface reflectance, some negative
    out = fatsr.upscale(data, Bicubic(2), **KW)
    assert out.dtype == np.int16 and out.shape == (3, 60, 72)
    # bicubic is linear: the stretch, the bicubic tails and the tiles cancel out
    assert np.abs(out.astype(float) - bicubic(data)).max() <= 1


def test_four_bands_need_bands_and_the_rest_goes_bicubic(rgb, tiny):
    nir = np.clip(rgb[:, :, 1].astype(int) * 2, 0, 255).astype(np.uint8)
    four = np.concatenate([rgb, nir[:, :, None]], axis=2).astype(np.uint16) * 257
    with pytest.raises(FatsrError, match="4-band array.*bands="):
        fatsr.upscale(four, tiny, **KW)
    out = fatsr.upscale(four, tiny, bands=(1, 2, 3), **KW)
    assert out.shape == (60, 72, 4) and out.dtype == np.uint16
    rgb_alone = fatsr.upscale(four[:, :, :3], tiny, **KW).astype(int)
    assert np.abs(out[:, :, :3] - rgb_alone).max() <= 1  # the same network bands (float rounding: 1)
    expected = np.clip(np.rint(bicubic(four[:, :, 3][None].astype(float) / 65535)[0] * 65535), 0, 65535)
    assert np.abs(out[:, :, 3] - expected).max() <= 1


def test_raster_path_without_output_returns_array_and_profile(tmp_path, rgb, tiny):
    place = Affine(0.5, 0, 300000, 0, -0.5, 5000000)
    src = tmp_path / "scene.tif"
    data = rgb.transpose(2, 0, 1)
    with rasterio.open(src, "w", driver="GTiff", count=3, width=36, height=30, dtype="uint8",
                       crs=CRS.from_epsg(32631), transform=place) as out:  # fmt: skip
        out.write(data)
    array, profile = fatsr.upscale(src, tiny, **KW)
    assert array.shape == (3, 60, 72) and profile["crs"] == CRS.from_epsg(32631)
    assert profile["transform"] == place @ Affine.scale(0.5)
    written = fatsr.upscale(src, tiny, output=tmp_path / "out.tif", **KW)
    with rasterio.open(written) as ds:
        np.testing.assert_array_equal(ds.read(), array)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif", "scene.tif"]


def test_device_moves_a_model_object(rgb, model_file):
    model = fatsr.load_model(model_file)
    moved = []
    original = model.to

    def recording_to(*args, **kwargs):
        moved.append(args)
        return original(*args, **kwargs)

    model.to = recording_to
    fatsr.upscale(rgb, model, device="cpu", **KW)
    assert moved == [("cpu",)]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="typing.get_overloads needs Python 3.11")
def test_upscale_overloads_match_what_it_returns(tmp_path, rgb, tiny):
    """The typed overloads of fatsr.upscale, by input and uncertainty=, against real calls."""
    signatures = [
        (f.__annotations__["image"], f.__annotations__.get("output"), f.__annotations__.get("uncertainty"),
         f.__annotations__["return"])
        for f in typing.get_overloads(fatsr.upscale)
    ]  # fmt: skip
    assert signatures == [
        ("ArrayT", None, "Literal[False]", "ArrayT"),
        ("ArrayT", None, "Literal[True]", "tuple[ArrayT, Array]"),
        ("xarray.DataArray", None, "Literal[False]", "xarray.DataArray"),
        ("Src", "Src", "Literal[False]", "Path"),
        ("Src", "Src", "Literal[True]", "tuple[Path, Path]"),
        ("Src", "None", "Literal[False]", "Read"),
        ("Src", "None", "Literal[True]", "tuple[Read, Array]"),
        ("Any", None, None, "Any"),
    ]
    assert isinstance(fatsr.upscale(rgb, tiny, **KW), np.ndarray)
    tensor = torch.from_numpy(rgb.copy())
    result, spread = fatsr.upscale(tensor, tiny, uncertainty=True, **KW)
    assert isinstance(result, torch.Tensor) and isinstance(spread, np.ndarray)
    picture = tmp_path / "in.png"
    Image.fromarray(rgb).save(picture)
    assert isinstance(fatsr.upscale(str(picture), tiny, **KW), np.ndarray)
    written = fatsr.upscale(picture, tiny, output=tmp_path / "out.png", **KW)
    assert written == tmp_path / "out.png" and written.is_file()
    pair = fatsr.upscale(picture, tiny, output=tmp_path / "both.png", uncertainty=True, **KW)
    assert pair == (tmp_path / "both.png", tmp_path / "both.uncertainty.tif")

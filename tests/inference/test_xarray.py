"""``fatsr.upscale(DataArray)``: eager and Dask-backed (two chunkings) give the pixels of
``fatsr upscale`` on the same GeoTIFF, with coordinates, CRS and nodata checked by rasterio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr
from affine import Affine
from dask.callbacks import Callback

import fatsr
from fatsr.errors import FatsrError

TILING = {"tile": 64, "overlap": 16}


@pytest.fixture(scope="module")
def geotiff(tmp_path_factory) -> tuple[Path, Path]:
    """A 3-band uint16 GeoTIFF (nodata 0, a hole of nodata, a percentile stretch) and the
    output of ``fatsr upscale`` on it."""
    folder = tmp_path_factory.mktemp("xarray")
    rng = np.random.default_rng(1)
    height, width = 150, 212
    pixels = rng.normal(1000, 200, (3, height, width)).clip(1, 60000).astype(np.uint16)
    pixels[:, 50:70, 30:90] = 0
    profile = {
        "driver": "GTiff", "dtype": "uint16", "count": 3, "width": width, "height": height, "crs": "EPSG:32617",
        "nodata": 0, "transform": Affine.translation(400000.0, 3280000.0) @ Affine.scale(0.3, -0.3),
    }  # fmt: skip
    src = folder / "scene.tif"
    with rasterio.open(src, "w", **profile) as ds:
        ds.write(pixels)
    from fatsr.cli import main

    assert main(["upscale", str(src), "-o", str(folder / "cli.tif"), "--model", "bicubic", "--tile", "64",
                 "--overlap", "16"]) == 0  # fmt: skip
    return src, folder / "cli.tif"


class Count(Callback):
    """Counts the Dask tasks run while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks = 0

    def _pretask(self, key, dask, state) -> None:
        self.tasks += 1


def test_eager_and_chunked_equal_the_cli(geotiff) -> None:
    src, cli = geotiff
    with rasterio.open(cli) as ds:
        expected, transform, crs, nodata = ds.read(), ds.transform, ds.crs, ds.nodata
        rows, cols = np.arange(ds.height), np.arange(ds.width)
        xs = np.array(rasterio.transform.xy(transform, np.zeros_like(cols), cols, offset="center")[0])
        ys = np.array(rasterio.transform.xy(transform, rows, np.zeros_like(rows), offset="center")[1])
    da = rioxarray.open_rasterio(src)
    da.attrs["note"] = "kept"
    eager = fatsr.upscale(da, "bicubic", **TILING)
    assert eager.dtype == np.uint16 and isinstance(eager.data, np.ndarray)
    assert np.array_equal(eager.values, expected)
    np.testing.assert_array_equal(eager.x.values, xs)
    np.testing.assert_array_equal(eager.y.values, ys)
    assert eager.rio.crs == crs and eager.rio.transform() == transform and eager.rio.nodata == nodata == 0
    assert eager.band.values.tolist() == [1, 2, 3] and eager.attrs["note"] == "kept"
    for chunks in ({"y": 40, "x": 64}, {"y": 97, "x": 150}):
        with Count() as counted:
            lazy = fatsr.upscale(da.chunk(chunks), "bicubic", **TILING)
        assert counted.tasks == 0  # nothing computed yet
        assert lazy.chunks[1:] == tuple(tuple(4 * c for c in axis) for axis in da.chunk(chunks).chunks[1:])
        assert np.array_equal(lazy.values, expected), chunks
        assert lazy.rio.crs == crs and lazy.rio.transform() == transform and lazy.rio.nodata == 0


def test_a_single_band_and_masked_pixels(geotiff) -> None:
    """(y, x) in, (y, x) out; a masked (NaN) DataArray keeps NaN where the input is masked,
    with the values of the unmasked run elsewhere (float, so not rounded)."""
    src, _ = geotiff
    band = rioxarray.open_rasterio(src).isel(band=0, drop=True)
    grey = fatsr.upscale(band, "bicubic", other_bands="network", **TILING)
    assert grey.dims == ("y", "x") and grey.dtype == np.uint16 and grey.shape == (600, 848)
    masked = rioxarray.open_rasterio(src, masked=True)
    out = fatsr.upscale(masked.chunk({"y": 64}), "bicubic", **TILING).values
    plain = fatsr.upscale(rioxarray.open_rasterio(src), "bicubic", **TILING).values
    assert out.dtype == np.float32
    assert np.array_equal(np.isnan(out), plain == 0)
    assert np.abs(out[plain != 0] - plain[plain != 0]).max() <= 0.5 + 1e-3


@pytest.mark.parametrize(
    ("array", "needle"),
    [
        (xr.DataArray(np.zeros((4, 5, 6), np.uint8), dims=("a", "b", "c")), "DataArray with dims a, b, c: no y and x"),
        (xr.DataArray(np.zeros((5, 6, 3), np.uint8), dims=("y", "x", "band")), "DataArray with dims y, x, band: give"),
        (xr.DataArray(np.zeros((5, 6), bool), dims=("y", "x")), "DataArray of dtype bool: give numeric pixels"),
        (xr.DataArray(np.zeros((5, 6), complex), dims=("y", "x")), "DataArray of dtype complex128: give numeric"),
    ],
)
def test_bad_dataarrays_are_one_line(array, needle) -> None:
    with pytest.raises(FatsrError) as caught:
        fatsr.upscale(array, "bicubic")
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_file_options_are_refused_for_a_dataarray() -> None:
    array = xr.DataArray(np.zeros((5, 6), np.uint8), dims=("y", "x"))
    with pytest.raises(FatsrError, match="^compress, output: not for a DataArray"):
        fatsr.upscale(array, "bicubic", compress="zstd", output="x.tif")


def test_uncertainty_is_refused_for_a_dataarray_not_dropped() -> None:
    array = xr.DataArray(np.zeros((5, 6), np.uint8), dims=("y", "x"))
    with pytest.raises(FatsrError, match=r"^uncertainty=True: not for a DataArray yet; pass the raster's path"):
        fatsr.upscale(array, "bicubic", uncertainty=True)


def test_band_names_choose_red_green_blue_as_for_the_file(tmp_path, capsys) -> None:
    """Bands named blue, green, red (in that order) go to the network as red, green, blue,
    from the file and from the DataArray alike (rioxarray keeps the names in ``long_name``)."""
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 255, (3, 40, 56)).astype(np.uint8)
    profile = {"driver": "GTiff", "dtype": "uint8", "count": 3, "width": 56, "height": 40, "crs": "EPSG:32617",
               "transform": Affine.translation(400000.0, 3280000.0) @ Affine.scale(0.3, -0.3)}  # fmt: skip
    src = tmp_path / "bgr.tif"
    with rasterio.open(src, "w", **profile) as ds:
        ds.write(pixels)
        ds.descriptions = ("blue", "green", "red")
    from fatsr.cli import main

    assert main(["upscale", str(src), "-o", str(tmp_path / "cli.tif"), "--model", "fatsr-x4"]) == 0
    capsys.readouterr()
    with rasterio.open(tmp_path / "cli.tif") as ds:
        expected = ds.read()
    out = fatsr.upscale(rioxarray.open_rasterio(src), "fatsr-x4")
    assert np.array_equal(out.values, expected)
    swapped = fatsr.upscale(rioxarray.open_rasterio(src), "fatsr-x4", bands=(1, 2, 3))
    assert not np.array_equal(swapped.values, expected)  # the order matters to the network

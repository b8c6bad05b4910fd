"""Every raster GDAL reads goes through rasterio and keeps what it had: JPEG2000, VRT, GCPs,
RPCs, a transform without CRS, dataset masks, alpha, non-finite values; palette and thematic
rasters are refused; GeoTIFF output is a valid Cloud-Optimized GeoTIFF. Inputs are made here
from the harbour picture in examples/ (real pixels, 16-bit by a scale, invented placements)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from PIL import Image
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.rpc import RPC
from rasterio.transform import RPCTransformer

import fatsr
from checks import assert_one_line_error
from checks import upscale_cli as cli
from fatsr.cli import main
from fatsr.inference.options import RasterOptions
from fatsr.inference.raster import upscale_raster
from fatsr.inference.reading import band_reader, is_raster, value_mapping
from fatsr.inference.resample import Bicubic, TailSafe, soft_clip
from fatsr.inference.tiling import Tiling, upscale_image
from fatsr.models.contract import ModelInfo

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the test's own writes
HARBOR = Path(__file__).resolve().parents[2] / "examples" / "harbor55.png"
SCALE = 2
TILING = Tiling(24, 6)
UTM = CRS.from_epsg(32633)
PLACE = Affine(0.3, 0, 500000, 0, -0.3, 4100000)


class Nearest:
    """A stand-in network: nearest x2, so every output value is an input value."""

    scale = SCALE
    channels = 3
    info = ModelInfo(name="nearest", scale=SCALE, in_channels=3, out_channels=3)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=SCALE, mode="nearest")


def harbor(height: int = 40, width: int = 52, deep: bool = True) -> np.ndarray:
    """(3, H, W) real pixels: uint16 (x 40 + 100) or uint8."""
    rgb = np.asarray(Image.open(HARBOR))[60 : 60 + height, 30 : 30 + width].transpose(2, 0, 1)
    return (rgb.astype(np.uint16) * 40 + 100) if deep else rgb.copy()


def write(path: Path, data: np.ndarray, **profile) -> Path:
    profile = {"driver": "GTiff", "count": data.shape[0], "height": data.shape[1], "width": data.shape[2],
               "dtype": data.dtype.name} | profile  # fmt: skip
    with rasterio.open(path, "w", **profile) as out:
        out.write(data)
    return path


def nearest(a: np.ndarray) -> np.ndarray:
    return a.repeat(SCALE, axis=-2).repeat(SCALE, axis=-1)


def full_range(data: np.ndarray) -> RasterOptions:
    """A value range holding every value: no tail goes bicubic, the stand-in's output is exact."""
    return RasterOptions(value_range=(float(data.min()), float(data.max()) + 1))


def assert_cog(path: Path) -> None:
    from rio_cogeo.cogeo import cog_validate

    valid, errors, warnings = cog_validate(str(path), quiet=True)
    assert valid and not errors and not warnings, (errors, warnings)


# --- georeference in every form ----------------------------------------------------------


def test_jpeg2000_16bit_georeferenced(capsys, tmp_path, model_file):
    data = harbor()
    src = write(
        tmp_path / "s2.jp2", data, driver="JP2OpenJPEG", crs=UTM, transform=PLACE, QUALITY=100, REVERSIBLE="YES"
    )
    with rasterio.open(src) as ds:
        np.testing.assert_array_equal(ds.read(), data)  # lossless
    assert is_raster(src)
    code, printed, err = cli(capsys, src, "--model", model_file, "--tile", "24", "--overlap", "6")
    assert code == 0, err
    dst = Path(printed.strip())
    assert dst == tmp_path / "s2_x2.tif"
    with rasterio.open(dst) as ds:
        assert ds.crs == UTM and ds.transform == PLACE @ Affine.scale(1 / SCALE) and ds.dtypes[0] == "uint16"
        assert ds.shape == (80, 104)
    assert_cog(dst)
    upscale_raster(src, tmp_path / "n.tif", Nearest(), tiling=TILING, options=full_range(data))
    with rasterio.open(tmp_path / "n.tif") as ds:
        np.testing.assert_array_equal(ds.read(), nearest(data))


def test_jpeg2000_8bit_rgb_is_read(capsys, tmp_path, model_file):
    data = harbor(deep=False)
    src = write(tmp_path / "rgb.jp2", data, driver="JP2OpenJPEG", QUALITY=100, REVERSIBLE="YES")
    code, printed, err = cli(capsys, src, "--model", model_file, "--tile", "24", "--overlap", "6")
    assert code == 0, err
    with rasterio.open(printed.strip()) as ds:
        assert ds.shape == (80, 104) and ds.count == 3 and ds.dtypes[0] == "uint8"


def test_vrt_band_stack(tmp_path):
    data = harbor()
    for b in range(3):
        write(tmp_path / f"b{b + 1}.tif", data[b : b + 1], crs=UTM, transform=PLACE)
    bands = "".join(
        f'<VRTRasterBand dataType="UInt16" band="{b}"><SimpleSource><SourceFilename relativeToVRT="1">b{b}.tif'
        f"</SourceFilename><SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>"
        for b in (3, 2, 1)
    )  # a band stack in reverse order
    gt = ", ".join(map(str, PLACE.to_gdal()))
    src = tmp_path / "stack.vrt"
    src.write_text(f'<VRTDataset rasterXSize="52" rasterYSize="40"><SRS>{UTM.to_wkt()}</SRS>'
                   f"<GeoTransform>{gt}</GeoTransform>{bands}</VRTDataset>")  # fmt: skip
    assert is_raster(src)
    dst = tmp_path / "out.tif"
    upscale_raster(src, dst, Nearest(), tiling=TILING, options=full_range(data))
    with rasterio.open(dst) as ds:
        assert ds.crs == UTM and ds.transform == PLACE @ Affine.scale(1 / SCALE)
        np.testing.assert_array_equal(ds.read(), nearest(data[::-1]))
    assert_cog(dst)


def test_gcps_are_rescaled_and_png_output_is_refused(capsys, tmp_path, model_file):
    gcps = [GroundControlPoint(row=r, col=c, x=500000 + 0.3 * c, y=4100000 - 0.3 * r, z=12.0, id=str(i))
            for i, (r, c) in enumerate([(0, 0), (0, 52), (40, 0), (40, 52), (17.5, 23.25)])]  # fmt: skip
    src = write(tmp_path / "gcp.tif", harbor(deep=False))
    with rasterio.open(src, "r+") as ds:
        ds.gcps = (gcps, UTM)
    assert is_raster(src)  # a plain-looking 8-bit RGB TIFF, but placed by its GCPs
    code, _, err = cli(capsys, src, "-o", tmp_path / "out.png", "--model", model_file)
    assert_one_line_error(code, err, "out.png", "georeference", ".tif")
    assert not (tmp_path / "out.png").exists()
    code, printed, err = cli(capsys, src, "--model", model_file, "--tile", "24", "--overlap", "6")
    assert code == 0, err
    with rasterio.open(printed.strip()) as ds:
        out_gcps, crs = ds.gcps
        assert ds.crs is None and crs == UTM
    assert [(g.row, g.col, g.x, g.y, g.z) for g in out_gcps] == [
        (g.row * SCALE, g.col * SCALE, g.x, g.y, g.z) for g in gcps
    ]


def test_rpcs_are_rescaled_to_the_same_ground(tmp_path):
    rpcs = RPC(height_off=100, height_scale=500, lat_off=40, lat_scale=0.01, long_off=10, long_scale=0.01,
               line_off=20, line_scale=20, samp_off=26, samp_scale=26,
               line_num_coeff=[0, 0.1, -1, 0.05] + [0.01] * 16, line_den_coeff=[1] + [0.001] * 19,
               samp_num_coeff=[0, 1, 0.1, 0.02] + [0.01] * 16, samp_den_coeff=[1] + [0.001] * 19)  # fmt: skip
    src = write(tmp_path / "rpc.tif", harbor(deep=False), rpcs=rpcs)
    dst = tmp_path / "out.tif"
    upscale_raster(src, dst, Nearest(), tiling=TILING)
    with rasterio.open(dst) as ds:
        assert ds.rpcs is not None
        out_rpcs = ds.rpcs
    lon, lat = [9.995, 10.0, 10.004], [40.004, 40.0, 39.996]
    with RPCTransformer(rpcs) as lr, RPCTransformer(out_rpcs) as hr:
        before = np.array(lr.rowcol(lon, lat, zs=[100] * 3, op=lambda v: v))
        after = np.array(hr.rowcol(lon, lat, zs=[100] * 3, op=lambda v: v))
    np.testing.assert_allclose(after, SCALE * before, atol=1e-6)  # pixel corners scale: same ground


def test_transform_without_crs(tmp_path):
    local = Affine(0.02, 0, 15.0, 0, -0.02, 30.0)  # a drone ortho on a local grid
    src = write(tmp_path / "local.tif", harbor(deep=False), transform=local)
    assert is_raster(src)
    dst = tmp_path / "out.tif"
    upscale_raster(src, dst, Nearest(), tiling=TILING)
    with rasterio.open(dst) as ds:
        assert ds.crs is None and ds.transform == local @ Affine.scale(1 / SCALE)


def test_plain_16bit_rgb_tiff_from_gdal_is_an_image(capsys, tmp_path, model_file):
    data = harbor()
    src = write(tmp_path / "deep.tif", data)
    assert not is_raster(src)  # no georeference: the picture path, as a PNG
    code, printed, err = cli(capsys, src, "--model", model_file, "--tile", "24", "--overlap", "6")
    assert code == 0, err
    dst = Path(printed.strip())
    assert dst == tmp_path / "deep_x2.png"
    expected = upscale_image(fatsr.load_model(model_file), data.transpose(1, 2, 0), TILING)
    with rasterio.open(dst) as ds:
        np.testing.assert_array_equal(ds.read().transpose(1, 2, 0), expected)


# --- masks, alpha, non-finite values, classes ----------------------------------------------


@pytest.mark.parametrize("internal", [True, False], ids=["internal", "sidecar"])
def test_dataset_mask_is_kept_as_a_mask(tmp_path, internal):
    data = harbor(deep=False)
    mask = np.full(data.shape[1:], 255, np.uint8)
    mask[:, :15] = 0
    mask[30:, 40:] = 0
    src = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=internal):
        with rasterio.open(src, "w", driver="GTiff", count=3, height=40, width=52, dtype="uint8", crs=UTM,
                           transform=PLACE) as out:  # fmt: skip
            out.write(data)
            out.write_mask(mask)
    assert (tmp_path / "masked.tif.msk").exists() != internal
    dst = tmp_path / "out.tif"
    upscale_raster(src, dst, Nearest(), tiling=TILING)
    with rasterio.open(dst) as ds:
        np.testing.assert_array_equal(ds.dataset_mask(), nearest(mask))
        values = ds.read()
    keep = nearest(mask) > 0
    np.testing.assert_array_equal(values[:, keep], nearest(data)[:, keep])
    assert_cog(dst)


def test_alpha_band_goes_by_nearest(tmp_path):
    data = harbor(deep=False)
    alpha = np.where(np.arange(52) < 20, 0, 255).astype(np.uint8)[None].repeat(40, 0)[None]
    src = write(tmp_path / "rgba.tif", np.concatenate([data, alpha]), crs=UTM, transform=PLACE, photometric="RGB",
                alpha="YES")  # fmt: skip
    with rasterio.open(src) as ds:
        assert ds.colorinterp[3] == ColorInterp.alpha
    dst = tmp_path / "out.tif"
    upscale_raster(src, dst, Nearest(), tiling=TILING)
    with rasterio.open(dst) as ds:
        np.testing.assert_array_equal(ds.read(4), nearest(alpha[0]))
        assert ds.colorinterp[3] == ColorInterp.alpha and json.loads(ds.tags()["FATSR_BANDS"])["4"] == "nearest"


def test_non_finite_values_stay_put_and_do_not_spread(tmp_path):
    data = harbor()[:1].astype(np.float32) / 10000
    data[0, 10, 10], data[0, 20, 30], data[0, 5, 40] = np.nan, np.inf, -np.inf
    src = write(tmp_path / "f.tif", data, crs=UTM, transform=PLACE)
    dst = tmp_path / "out.tif"
    upscale_raster(src, dst, Bicubic(SCALE), tiling=TILING)
    with rasterio.open(dst) as ds:
        out = ds.read(1)
    bad = nearest(~np.isfinite(data[0]))
    assert np.isfinite(out[~bad]).all()
    np.testing.assert_array_equal(np.isnan(out), nearest(np.isnan(data[0])))
    assert out[40, 60] == np.inf and out[10, 80] == -np.inf


def test_palette_and_thematic_rasters_are_refused(capsys, tmp_path, model_file):
    classes = (harbor(deep=False)[0] // 64).astype(np.uint8)[None]  # 4 classes
    palette = write(tmp_path / "classes.tif", classes, crs=UTM, transform=PLACE)
    with rasterio.open(palette, "r+") as ds:
        ds.write_colormap(1, {0: (0, 0, 255, 255), 1: (0, 255, 0, 255), 2: (255, 255, 0, 255), 3: (255, 0, 0, 255)})
    code, _, err = cli(capsys, palette, "--model", model_file)
    assert_one_line_error(code, err, "classes.tif", "palette", "nearest")
    thematic = write(tmp_path / "landcover.tif", classes, crs=UTM, transform=PLACE)
    with rasterio.open(thematic, "r+") as ds:
        ds.update_tags(1, LAYER_TYPE="thematic")
    code, _, err = cli(capsys, thematic, "--model", model_file)
    assert_one_line_error(code, err, "landcover.tif", "thematic")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.tif", "landcover.tif"]


# --- COG -------------------------------------------------------------------------------------


def test_cog_output_keeps_metadata_and_has_overviews(tmp_path):
    data = harbor(150, 140)
    src = write(tmp_path / "scene.tif", data, crs=UTM, transform=PLACE, nodata=100, photometric="RGB")
    with rasterio.open(src, "r+") as ds:
        ds.update_tags(MISSION="test", STATISTICS_MEAN="1")
        ds.update_tags(2, WAVELENGTH="560")
        ds.set_band_description(1, "red")
    dst = tmp_path / "out.tif"
    upscale_raster(src, dst, Bicubic(SCALE), tiling=TILING, options=RasterOptions(compress="zstd"))
    assert_cog(dst)
    with rasterio.open(src) as a, rasterio.open(dst) as b:
        assert b.overviews(1) == [2] and b.compression.value.lower() == "zstd"
        assert b.nodata == 100 and b.colorinterp == a.colorinterp and b.descriptions == a.descriptions
        assert b.tags()["MISSION"] == "test" and b.tags(2)["WAVELENGTH"] == "560" and "FATSR_VERSION" in b.tags()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif", "scene.tif"]  # no partial or temporary left


def test_cog_after_an_interrupted_run(tmp_path):
    data = harbor(60, 70)
    src = write(tmp_path / "scene.tif", data, crs=UTM, transform=PLACE)

    class Stop(Nearest):
        calls = 0

        def __call__(self, x):
            Stop.calls += 1
            if Stop.calls > 3:
                raise KeyboardInterrupt
            return super().__call__(x)

    dst = tmp_path / "out.tif"
    tiling = Tiling(24, 6, batch=1, panel=24)
    with pytest.raises(KeyboardInterrupt):
        upscale_raster(src, dst, Stop(), tiling=tiling, checkpoint_seconds=0, options=full_range(data))
    assert (tmp_path / ".out.tif.fatsr-partial.json").exists()
    upscale_raster(src, dst, Nearest(), tiling=tiling, checkpoint_seconds=0, options=full_range(data))
    assert_cog(dst)
    with rasterio.open(dst) as ds:
        np.testing.assert_array_equal(ds.read(), nearest(data))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif", "scene.tif"]


# --- radiometry --------------------------------------------------------------------------------


def test_soft_clip_is_identity_inside_and_bounded_outside():
    x = torch.linspace(-3, 4, 701)
    y = soft_clip(x)
    inside = (x >= 0) & (x <= 1)
    assert torch.equal(y[inside], x[inside])
    assert y.min() >= -0.05 and y.max() <= 1.05 and bool((y.diff() >= 0).all())


def test_tail_safe_sends_only_the_residual_through_bicubic():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 12, 12)
    x[0, :, 5, 6] = 5.0  # a glint, 5x the stretch
    x[0, 1, 2, 2] = -0.7

    def squaring(t):  # a non-linear stand-in that would blow up the glint
        return F.interpolate(t, scale_factor=SCALE, mode="nearest") ** 2

    squaring.scale = SCALE
    squaring.info = Nearest.info
    out = TailSafe(squaring)(x)
    inside = soft_clip(x)
    expected = squaring(inside) + F.interpolate(x - inside, scale_factor=SCALE, mode="bicubic", align_corners=False)
    torch.testing.assert_close(out, expected)
    assert float(out.max()) < 5.6  # squaring the raw glint would give 25
    clean = torch.rand(1, 3, 12, 12)
    assert torch.equal(TailSafe(squaring)(clean), squaring(clean))
    torch.testing.assert_close(TailSafe(Bicubic(SCALE))(x), Bicubic(SCALE)(x))  # linear: exactly bicubic


def test_nodata_is_inpainted_from_its_neighbours_not_the_mean(tmp_path):
    ramp = np.tile(np.linspace(1000, 5000, 60), (30, 1)).astype(np.int16)[None]
    ramp[:, :, 40:] = -9999  # the bright end is nodata
    src = write(tmp_path / "ramp.tif", ramp, crs=UTM, transform=PLACE, nodata=-9999)
    with rasterio.open(src) as ds:
        mapping, fills = value_mapping(ds, None)
        unit = band_reader(ds, (1,), mapping, fills)(0, 30, 0, 60)
    edge = mapping.to_unit(ramp[:, :, 39:40].astype(np.float64), (1,))
    np.testing.assert_allclose(unit[0, :, 40], edge[0, :, 0], atol=1e-6)  # continues where data ends
    mean = fills[0]
    assert abs(unit[0, 0, 40] - mean) > 0.3


# --- batches ---------------------------------------------------------------------------------


def test_batch_reports_and_skips_a_bad_file(capsys, tmp_path, model_file):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(harbor(24, 24, deep=False).transpose(1, 2, 0)).save(folder / "a.png")
    (folder / "b.png").write_text("not a picture")
    write(folder / "c.tif", harbor(24, 24), crs=UTM, transform=PLACE, photometric="RGB")  # RGB declared: no notice
    code, printed, err = cli(capsys, folder, "-o", tmp_path / "out", "--model", model_file)
    assert code == 2
    assert printed.split() == [str(tmp_path / "out" / "a.png"), str(tmp_path / "out" / "c.tif")]
    lines = err.splitlines()
    assert len(lines) == 2 and "b.png" in lines[0] and lines[0].endswith("(skipped)")
    assert lines[1].startswith("error: 1 of 3 inputs failed (b.png")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.tif"]


def test_progress_lines_when_stderr_is_not_a_terminal(capsys, tmp_path, monkeypatch):
    import re

    import fatsr.progress

    monkeypatch.setattr(fatsr.progress, "LOG_SECONDS", 0.0)  # a line at every tile batch
    src = write(tmp_path / "scene.tif", harbor(40, 52), crs=UTM, transform=PLACE, photometric="RGB")
    upscale_raster(src, tmp_path / "out.tif", Nearest(), tiling=Tiling(24, 6, batch=2))
    lines = capsys.readouterr().err.splitlines()
    pattern = r"scene\.tif bands 1,2,3: (\d+)/6 tiles \(\d+%\), [\d.e+]+ tiles/s, ETA \d\d:\d\d:\d\d"
    done = [int(re.fullmatch(pattern, line).group(1)) for line in lines]
    assert done == [2, 3, 5, 6]  # 3 x 2 tiles, in batches of 2 per tile row


# --- multispectral training and upscaling ------------------------------------------------------


def four_bands(top: int, left: int, size: int) -> np.ndarray:
    """(4, size, size) uint16: the harbour's RGB and an invented near-infrared band from it."""
    rgb = np.asarray(Image.open(HARBOR))[top : top + size, left : left + size].transpose(2, 0, 1).astype(np.float64)
    nir = np.clip(1.6 * rgb[1] - 0.4 * rgb[0], 0, 255)
    return (np.concatenate([rgb, nir[None]]) * 40 + 100).astype(np.uint16)


def test_train_on_four_band_geotiffs_and_upscale_one(capsys, tmp_path):
    from tests.training.conftest import TINY_NETWORK

    from fatsr.inference.tiling import upscale_tiled
    from fatsr.models.files import read_metadata

    for folder, corners in (("train", [(0, 0), (0, 100), (100, 0), (100, 100), (200, 50), (50, 200)]),
                            ("val", [(150, 150), (200, 200)])):  # fmt: skip
        (tmp_path / folder).mkdir()
        for top, left in corners:
            write(tmp_path / folder / f"t{top}_{left}.tif", four_bands(top, left, 48), crs=UTM, transform=PLACE)
    run = tmp_path / "run"
    network = [f"--network={k}={v}" for k, v in TINY_NETWORK.items()]
    code = main([
        "train", "--data-dir", str(tmp_path / "train"), "--val-dir", str(tmp_path / "val"), "--save-dir", str(run),
        "--scale", "2", "--patch-size", "16", "--perceptual-weight", "0", "--batch-size", "2", "--steps", "4",
        "--val-every", "2", "--lr", "2e-3", "--workers", "0", "--no-progress", "--bands", "3,2,1,4", *network,
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    metadata = read_metadata(run / "model.safetensors")
    config = json.loads(metadata["config"])
    assert config["in_channels"] == config["out_channels"] == 4
    assert json.loads(metadata["value_mapping"]) == {
        "bands": [3, 2, 1, 4],
        "low": [0.0] * 4,
        "high": [65535.0] * 4,
        "method": "dtype range",
    }

    data = four_bands(120, 30, 40)
    scene = write(tmp_path / "scene.tif", data, crs=UTM, transform=PLACE)
    code, printed, err = cli(capsys, scene, "--model", run / "model.safetensors", "--tile", "24", "--overlap", "6")
    assert code == 0, err
    with rasterio.open(printed.strip()) as ds:
        out, tags = ds.read(), ds.tags()
        assert ds.crs == UTM and ds.count == 4 and ds.dtypes[0] == "uint16"
    assert json.loads(tags["FATSR_BANDS"]) == {"3,2,1,4": "rgb"}
    assert "the model's training mapping" in json.loads(tags["FATSR_VALUE_MAPPING"])["method"]
    model = fatsr.load_model(run / "model.safetensors")
    order = [2, 1, 0, 3]
    expected = upscale_tiled(model, data[order].astype(np.float32) / 65535, TILING)
    expected = np.clip(np.rint(expected * 65535), 0, 65535)
    assert np.abs(out[order] - expected).max() <= 1  # the training's mapping, not a stretch (float rounding: 1)

    # evaluate reads the model's bands with its mapping, as upscale does, and scores all four
    from fatsr.data import bicubic_downscale
    from fatsr.evaluation.evaluate import evaluate, pair_files
    from fatsr.evaluation.metrics import psnr

    (result,) = evaluate(pair_files(scene), scale=2, border=2, model=model)
    hr = torch.from_numpy(data[order].astype(np.float32) / 65535)
    with torch.inference_mode():
        sr = model(bicubic_downscale(hr, 2)[None])[0].clamp(0, 1)
    alone = psnr(sr.permute(1, 2, 0).numpy(), hr.permute(1, 2, 0).numpy(), border=2, y_channel=False)
    assert result.scores["psnr_rgb"] == pytest.approx(alone, abs=1e-4)

    three = write(tmp_path / "three.tif", data[:3], crs=UTM, transform=PLACE)
    code, _, err = cli(capsys, three, "--model", run / "model.safetensors")
    assert_one_line_error(code, err, "three.tif", "has 3 bands", "trained on bands 3,2,1,4")


# --- evaluate: masked pixels are not scored ------------------------------------------------------


@pytest.mark.parametrize("how", ["nodata", "mask"])
def test_evaluate_leaves_nodata_and_masked_pixels_out(tmp_path, how):
    from fatsr.evaluation.evaluate import evaluate, pair_files, score

    hr = harbor(48, 64, deep=False)
    rng = np.random.default_rng(0)
    sr = np.clip(hr.astype(int) + rng.integers(-12, 13, hr.shape), 1, 255).astype(np.uint8)
    sr[:, :, :20] = rng.integers(0, 256, (3, 48, 20))  # garbage where the HR has no data
    if how == "nodata":
        hr[:, :, :20] = 0
        write(tmp_path / "hr.tif", hr, crs=UTM, transform=PLACE, nodata=0)
    else:
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
            with rasterio.open(tmp_path / "hr.tif", "w", driver="GTiff", count=3, height=48, width=64, dtype="uint8",
                               crs=UTM, transform=PLACE) as out:  # fmt: skip
                out.write(hr)
                out.write_mask(np.where(np.arange(64) < 20, 0, 255).astype(np.uint8)[None].repeat(48, 0))
    Image.fromarray(sr.transpose(1, 2, 0)).save(tmp_path / "sr.png")
    (result,) = evaluate(pair_files(tmp_path / "hr.tif", sr=tmp_path / "sr.png"), scale=2, border=0)
    hwc = [x.transpose(1, 2, 0)[:, 20:] for x in (sr, hr)]
    lr = np.zeros((24, 22, 3), np.uint8)  # not used by the compared scores
    alone = score(*hwc, lr, scale=2, border=0)
    for key in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "sam_deg", "ergas"):
        assert result.scores[key] == pytest.approx(alone[key], rel=1e-12), key
    assert result.scores["psnr_rgb"] > 25  # the garbage would pull it far down


# --- prepare: GeoTIFF tiles and checks ----------------------------------------------------------


def test_prepare_split_and_check_six_band_int16(capsys, tmp_path):
    rgb = harbor(40, 52).astype(np.int32)
    data = np.concatenate([rgb, rgb[::-1] // 2]).astype(np.int16) - 300  # 6 bands, some negative
    data[:, :4, :] = -9999
    src = write(tmp_path / "scene.tif", data, crs=UTM, transform=PLACE, nodata=-9999)
    with rasterio.open(src, "r+") as ds:
        ds.set_band_description(5, "nir")
    assert main(["prepare", "split", str(src), "-o", str(tmp_path / "tiles"), "--size", "32", "--step", "20",
                 "--min-size", "8"]) == 0  # fmt: skip
    tiles = sorted((tmp_path / "tiles").iterdir())
    assert [p.name for p in tiles] == ["scene_y0_x0.tif", "scene_y0_x20.tif", "scene_y8_x0.tif", "scene_y8_x20.tif"]
    with rasterio.open(tiles[3]) as ds:
        assert ds.crs == UTM and ds.transform == PLACE @ Affine.translation(20, 8)
        assert ds.nodata == -9999 and ds.descriptions[4] == "nir" and ds.dtypes[0] == "int16"
        np.testing.assert_array_equal(ds.read(), data[:, 8:40, 20:52])
    capsys.readouterr()
    assert main(["prepare", "check", str(tmp_path / "tiles")]) == 0
    out = capsys.readouterr().out
    assert "4 images; sizes 32x32 (4); int16 (4); 6 bands (4)" in out and "no problems found" in out


def test_back_projection_keeps_every_block_mean(tmp_path, model_file):
    data = harbor(40, 52).astype(np.float32) / 1000  # reflectance-like floats
    src = write(tmp_path / "f.tif", data, crs=UTM, transform=PLACE)
    model = fatsr.load_model(model_file)
    errors = {}
    for project in (False, True):
        dst = tmp_path / f"out{project}.tif"
        upscale_raster(src, dst, model, tiling=TILING, options=RasterOptions(back_project=project))
        with rasterio.open(dst) as ds:
            out = ds.read().astype(np.float64)
            assert ("FATSR_BACK_PROJECT" in ds.tags()) == project
        means = out.reshape(3, 40, SCALE, 52, SCALE).mean(axis=(2, 4))
        errors[project] = np.abs(means - data).max()
    assert errors[True] < 1e-5 < 1e-2 < errors[False]  # exact (float32) against a random network's


def test_plain_pictures_keep_the_picture_path(tmp_path):
    rgb = harbor(24, 24, deep=False).transpose(1, 2, 0)
    pictures = {
        "grey.png": Image.fromarray(rgb[:, :, 0]), "rgb.jpg": Image.fromarray(rgb),
        "grey_alpha.png": Image.fromarray(rgb[:, :, :2], "LA"), "rgba.png": Image.fromarray(np.dstack([rgb, rgb[:, :, :1]])),
    }  # fmt: skip
    for name, picture in pictures.items():
        picture.save(tmp_path / name)
        assert not is_raster(tmp_path / name), name


def test_train_says_what_int16_rasters_need(capsys, tmp_path):
    (tmp_path / "train").mkdir()
    write(tmp_path / "train" / "a.tif", harbor(48, 48).astype(np.int16), crs=UTM, transform=PLACE)
    code = main(["train", "--data-dir", str(tmp_path / "train"), "--save-dir", str(tmp_path / "run"), "--scale", "2",
                 "--patch-size", "24", "--perceptual-weight", "0", "--steps", "1", "--batch-size", "1", "--workers", "0"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and err.startswith("error: ") and "--bands" in err and "--value-range" in err
    assert not (tmp_path / "run").exists()


def test_evaluate_float_reflectance_with_nan_and_four_bands(tmp_path):
    from fatsr.evaluation.evaluate import evaluate, pair_files

    hr = four_bands(60, 60, 48).astype(np.float32) / 12000  # 4-band reflectance in [0, 1]
    hr[:, :6, :] = np.nan  # a strip without data
    write(tmp_path / "hr.tif", hr, crs=UTM, transform=PLACE)
    sr = np.nan_to_num(hr) * 0.98 + 0.01
    write(tmp_path / "sr.tif", sr, crs=UTM, transform=PLACE)
    (result,) = evaluate(pair_files(tmp_path / "hr.tif", sr=tmp_path / "sr.tif"), scale=2, border=0)
    valid = hr[:, 6:, :].transpose(1, 2, 0).astype(np.float64)
    error = sr[:, 6:, :].transpose(1, 2, 0) - valid
    expected = 10 * np.log10(255.0**2 / np.mean((error * 255) ** 2))  # every band: the 4th is not dropped as alpha
    assert result.scores["psnr_rgb"] == pytest.approx(expected, rel=1e-6)
    assert np.isnan(result.scores["psnr_y"])  # no luma for 4 bands

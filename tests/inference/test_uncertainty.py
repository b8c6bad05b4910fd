"""``--uncertainty``: the x8 ensemble's spread beside the output, on the output's grid, equal
to an independent computation, masked where the output is, and never left half-written."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from PIL import Image

import fatsr
from checks import upscale_cli as cli
from fatsr.cli import main
from fatsr.errors import FatsrError
from fatsr.evaluation.compare import compare_images, compare_scene, load_models
from fatsr.inference.options import RasterOptions
from fatsr.inference.raster import upscale_raster
from fatsr.inference.tiling import Tiling
from fatsr.inference.uncertainty import heat_map, sidecar_path
from fatsr.models.loading import load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rasters"
OSBS = FIXTURES / "OSBS_029.tif"  # uint8 RGB, nodata 255 (saturated pixels)


def eight_spread(model, unit: np.ndarray) -> np.ndarray:
    """Independent: the model on the 8 flips / quarter turns of a (C, H, W) array, each turned
    back with numpy, the population std over the 8 in float64, averaged over channels."""
    outputs = []
    for flip in (False, True):
        for k in range(4):
            turned = np.rot90(unit[:, :, ::-1] if flip else unit, k, axes=(1, 2))
            with torch.inference_mode():
                y = model(torch.from_numpy(np.ascontiguousarray(turned))[None].float())[0].double().numpy()
            y = np.rot90(y, -k, axes=(1, 2))
            outputs.append(y[:, :, ::-1] if flip else y)
    return np.std(np.stack(outputs), axis=0).mean(axis=0)


def picture(path: Path, size: int = 36) -> Path:
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (9, 9, 3), np.uint8)).resize((size, size), Image.BICUBIC).save(path)
    return path


def test_picture_sidecar_is_the_std_of_eight_runs_and_the_output_is_the_tta_output(capsys, tmp_path, model_file):
    src = picture(tmp_path / "p.png")  # one tile: no blending between tiles
    code, out, _ = cli(capsys, src, "-o", tmp_path / "u.png", "--model", model_file, "--uncertainty")
    assert code == 0 and out.split() == [str(tmp_path / "u.png"), str(tmp_path / "u.uncertainty.tif")]
    assert cli(capsys, src, "-o", tmp_path / "t.png", "--model", model_file, "--tta")[0] == 0
    assert (tmp_path / "u.png").read_bytes() == (tmp_path / "t.png").read_bytes()
    with rasterio.open(tmp_path / "u.uncertainty.tif") as ds:
        spread = ds.read(1)
        assert (ds.dtypes[0], ds.count, ds.width, ds.height, ds.crs) == ("float32", 1, 72, 72, None)
    unit = np.asarray(Image.open(src)).transpose(2, 0, 1).astype(np.float32) / 255
    expected = eight_spread(load_model(model_file), unit)
    assert expected.mean() > 1e-3  # the tiny random model is far from equivariant
    np.testing.assert_allclose(spread, expected, atol=2e-5)


def test_api_returns_the_spread_of_pictures_and_arrays(tmp_path, model_file):
    src = picture(tmp_path / "p.png")
    image, spread = fatsr.upscale(src, model_file, uncertainty=True)
    np.testing.assert_array_equal(image, fatsr.upscale(src, model_file, tta=True))
    array, same = fatsr.upscale(np.asarray(Image.open(src)), model_file, uncertainty=True)
    np.testing.assert_array_equal(array, image)
    np.testing.assert_array_equal(same, spread)
    written, sidecar = fatsr.upscale(src, model_file, uncertainty=True, output=tmp_path / "o.png")
    assert (written, sidecar) == (tmp_path / "o.png", tmp_path / "o.uncertainty.tif")
    with rasterio.open(sidecar) as ds:
        np.testing.assert_array_equal(ds.read(1), spread)


def crop(dst: Path, col: int, row: int, width: int, height: int, nodata: float | None) -> Path:
    with rasterio.open(OSBS) as ds:
        window = rasterio.windows.Window(col, row, width, height)
        data, profile = ds.read(window=window), ds.profile
        profile.update(width=width, height=height, transform=ds.window_transform(window), nodata=nodata)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
    return dst


def test_raster_sidecar_grid_georeference_values_and_mask(capsys, tmp_path, model_file):
    src = crop(tmp_path / "s.tif", 200, 40, 30, 22, nodata=255)  # holds saturated (= nodata) pixels
    flags = ["--model", model_file, "--tile", "36"]  # one tile: the values can be checked
    assert cli(capsys, src, "-o", tmp_path / "u.tif", *flags, "--uncertainty")[0] == 0
    assert cli(capsys, src, "-o", tmp_path / "t.tif", *flags, "--tta")[0] == 0
    assert (tmp_path / "u.tif").read_bytes() == (tmp_path / "t.tif").read_bytes()
    with rasterio.open(tmp_path / "u.tif") as out, rasterio.open(sidecar_path(tmp_path / "u.tif")) as side:
        assert (side.crs, side.transform, side.width, side.height) == (out.crs, out.transform, out.width, out.height)
        assert side.transform == rasterio.open(src).transform @ Affine.scale(1 / 2)
        assert side.dtypes == ("float32",) and math.isnan(side.nodata)
        invalid = out.read_masks(1) == 0
        spread = side.read(1)
        assert invalid.any() and (~invalid).any()
        np.testing.assert_array_equal(np.isnan(spread), invalid)
        np.testing.assert_array_equal(side.read_masks(1) == 0, invalid)
        assert "spread" not in side.tags() and "8 flips" in side.tags()["FATSR_UNCERTAINTY"]
    clean = crop(tmp_path / "c.tif", 200, 40, 30, 22, nodata=None)
    (_, _), values = fatsr.upscale(clean, model_file, tile=36, uncertainty=True)
    with rasterio.open(clean) as ds:
        unit = ds.read().astype(np.float32) / 255
    np.testing.assert_allclose(values[0], eight_spread(load_model(model_file), unit), atol=2e-5)


def test_interrupted_runs_leave_no_sidecar(capsys, tmp_path, model_file, monkeypatch):
    src = picture(tmp_path / "p.png")
    import fatsr.inference.pipeline as pipeline

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "write_image", broken)  # the output fails after the sidecar is complete
    with pytest.raises(KeyboardInterrupt):
        fatsr.upscale(src, model_file, uncertainty=True, output=tmp_path / "o.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]
    monkeypatch.undo()

    scene = crop(tmp_path / "s.tif", 0, 0, 120, 90, nodata=255)
    calls = 0
    model = load_model(model_file, tta=True)
    inner = model.model.forward

    def stops(x):
        nonlocal calls
        calls += 1
        if calls > 8 * 12:  # 12 tiles
            raise KeyboardInterrupt
        return inner(x)

    monkeypatch.setattr(model.model, "forward", stops)
    tiling = Tiling(24, 6, batch=1, panel=48)
    sidecar = tmp_path / "o.uncertainty.tif"
    with pytest.raises(KeyboardInterrupt):  # before any checkpoint: nothing is kept
        upscale_raster(scene, sidecar, model, uncertainty=True, tiling=tiling)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "s.tif"]
    calls = 0
    with pytest.raises(KeyboardInterrupt):  # after checkpoints: only the hidden partial file and its journal
        upscale_raster(scene, sidecar, model, uncertainty=True, tiling=tiling, checkpoint_seconds=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".o.uncertainty.tif.fatsr-partial.json", ".o.uncertainty.tif.fatsr-partial.tif", "p.png", "s.tif"
    ]  # fmt: skip
    monkeypatch.undo()
    upscale_raster(scene, sidecar, model, uncertainty=True, tiling=tiling, checkpoint_seconds=0)  # resumes
    upscale_raster(scene, tmp_path / "whole.tif", model, uncertainty=True, tiling=tiling)
    with rasterio.open(sidecar) as a, rasterio.open(tmp_path / "whole.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.uncertainty.tif", "p.png", "s.tif", "whole.tif"]


def test_a_finished_sidecar_of_the_same_job_is_kept_another_refused(capsys, tmp_path, model_file):
    scene = crop(tmp_path / "s.tif", 0, 0, 40, 30, nodata=255)
    model = load_model(model_file, tta=True)
    sidecar = tmp_path / "o.uncertainty.tif"
    upscale_raster(scene, sidecar, model, uncertainty=True, tiling=Tiling(24, 6))
    before = sidecar.stat().st_mtime_ns
    upscale_raster(scene, sidecar, model, uncertainty=True, tiling=Tiling(24, 6))
    assert sidecar.stat().st_mtime_ns == before and "kept" in capsys.readouterr().err
    with pytest.raises(FatsrError, match="exists; pass"):
        upscale_raster(scene, sidecar, model, uncertainty=True, tiling=Tiling(36, 6), options=RasterOptions(cog=False))


def decode(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_compare_page_shows_the_spread_as_a_layer(capsys, tmp_path, model_file):
    src = picture(tmp_path / "p.png")
    models = load_models([str(model_file)], scale=None, device=torch.device("cpu"), tta=True)
    (item,) = compare_images([src], None, models, scale=2, tiling=Tiling(48, 12), uncertainty=True)
    names = [layer.name for layer in item.layers]
    assert names[:3] == ["LR", "bicubic", "tiny x8 ensemble"] and len(names) == 4
    assert names[3].startswith("tiny x8 ensemble uncertainty (0-")
    top = float(names[3].split("-")[-1].rstrip(")"))
    unit = np.asarray(Image.open(src)).transpose(2, 0, 1).astype(np.float32) / 255
    expected = heat_map(eight_spread(load_model(model_file), unit), top)
    shown = decode(item.layers[3].src).astype(int)
    assert shown.shape == expected.shape == (72, 72, 3)
    assert np.abs(shown - expected).mean() < 0.5 and np.abs(shown - expected).max() <= 8
    assert main(["compare", str(src), "--model", str(model_file), "--uncertainty", "-o", str(tmp_path / "c.html")]) == 0
    assert "tiny x8 ensemble uncertainty (0-" in (tmp_path / "c.html").read_text()


def test_compare_scene_regions_show_the_spread_with_nodata_transparent(tmp_path, model_file):
    scene = crop(tmp_path / "s.tif", 200, 40, 40, 30, nodata=255)
    models = load_models([str(model_file)], scale=None, device=torch.device("cpu"), tta=True)
    _, items = compare_scene(scene, models, scale=2, region_size=20, tiling=Tiling(24, 6), uncertainty=True)
    masked = 0
    for item in items:
        assert item.layers[-1].name.startswith("tiny x8 ensemble uncertainty (0-")
        lr, heat = decode(item.layers[0].src), decode(item.layers[-1].src)
        hidden = lr.shape[2] == 4 and (lr[:, :, 3] == 0)
        if hidden is not False:
            np.testing.assert_array_equal(heat[:, :, 3] == 0, hidden.repeat(2, axis=0).repeat(2, axis=1))
            masked += int(hidden.sum())
    assert masked > 0

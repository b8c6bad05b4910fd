"""The comparison page's Python side: layers, scores, scene regions read as windows, the HTML."""

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from PIL import Image

from fatsr.cli import main
from fatsr.errors import FatsrError
from fatsr.evaluation import metrics
from fatsr.evaluation.compare import compare_images, compare_scene, load_models, page_data, render_page

SCENE = Path(__file__).parent / "fixtures" / "rasters" / "LC08_L1TP_224078_20200518_uint16_3band_crop512.tif"


def decode(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
        array = np.asarray(im)
    return array if array.ndim == 3 else array[:, :, None]


def smooth_image(seed: int, size: int = 48) -> np.ndarray:
    """A uint8 RGB image with structure at several scales (so bicubic and a model differ)."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, size // 8, size // 8), dtype=np.float32))
    fine = torch.from_numpy(rng.random((1, 3, size, size), dtype=np.float32))
    x = 0.7 * F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False) + 0.3 * fine
    return (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@pytest.fixture
def hr_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "hr"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(smooth_image(i)).save(folder / f"img{i}.png")
    return folder


def test_layers_and_scores_match_an_independent_computation(hr_folder: Path, model_file: Path) -> None:
    models = load_models(["bicubic", str(model_file)], scale=None, device=torch.device("cpu"))
    assert [n for n, _ in models] == ["bicubic", "tiny"] and models[0][1].scale == 2
    items = compare_images(None, sorted(hr_folder.iterdir()), models, scale=2)
    assert [i.name for i in items] == ["img0", "img1"]
    hr = smooth_image(0)
    layers = {layer.name: decode(layer.src) for layer in items[0].layers}
    assert list(layers) == ["LR", "bicubic", "tiny", "HR"]
    np.testing.assert_array_equal(layers["HR"], hr)
    # LR made from HR and the bicubic layer by Pillow's bicubic: as fatsr evaluate makes them
    lr = Image.fromarray(hr).resize((hr.shape[1] // 2, hr.shape[0] // 2), Image.BICUBIC)
    np.testing.assert_array_equal(layers["LR"], np.asarray(lr))
    np.testing.assert_array_equal(layers["bicubic"], np.asarray(lr.resize((hr.shape[1], hr.shape[0]), Image.BICUBIC)))
    assert layers["tiny"].shape == layers["bicubic"].shape == hr.shape
    scores = {layer.name: layer.scores for layer in items[0].layers}
    for name in ("bicubic", "tiny"):
        assert scores[name]["psnr_y"] == pytest.approx(metrics.psnr(layers[name], hr, border=2), abs=1e-9)
        assert scores[name]["ssim_y"] == pytest.approx(metrics.ssim(layers[name], hr, border=2), abs=1e-9)
        thirds = metrics.psnr_by_texture(layers[name], hr, border=2)
        assert scores[name]["psnr_high"] == pytest.approx(thirds["high"], abs=1e-9)
    assert scores["tiny"]["gain"] == pytest.approx(scores["tiny"]["psnr_y"] - scores["bicubic"]["psnr_y"])
    assert scores["bicubic"]["gain"] == 0.0 and scores["LR"] is None and scores["HR"] is None
    assert items[0].gain == pytest.approx(scores["tiny"]["gain"])


def test_lr_inputs_without_hr_have_no_scores(tmp_path: Path) -> None:
    path = tmp_path / "lr.png"
    Image.fromarray(smooth_image(3, 24)).save(path)
    models = load_models(["bicubic"], scale=3, device=torch.device("cpu"))
    (item,) = compare_images([path], None, models, scale=3)
    assert [layer.name for layer in item.layers] == ["LR", "bicubic"]
    assert decode(item.layers[1].src).shape == (72, 72, 3) and item.gain is None
    assert all(layer.scores is None for layer in item.layers)


def test_models_of_different_scales_are_refused(model_file: Path) -> None:
    with pytest.raises(FatsrError, match="x2 but scale=4; drop it"):
        load_models([str(model_file)], scale=4, device=torch.device("cpu"))
    with pytest.raises(FatsrError, match="no such file"):
        load_models(["missing.safetensors"], scale=None, device=torch.device("cpu"))


def test_page_is_offline_and_carries_its_data(hr_folder: Path) -> None:
    models = load_models(["bicubic"], scale=2, device=torch.device("cpu"))
    items = compare_images(None, sorted(hr_folder.iterdir()), models, scale=2)
    html = render_page(page_data(items, title="t <&>", scale=2, table=True))
    assert "<title>t &lt;&amp;&gt;</title>" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html) and "http://" not in html and "https://" not in html
    data = json.loads(re.search(r'<script type="application/json" id="fatsr-data">(.*?)</script>', html, re.S).group(1))
    assert [i["name"] for i in data["items"]] == ["img0", "img1"] and data["table"] is True
    lr = data["items"][0]["layers"][0]
    assert lr["lr"] is True and (lr["width"], lr["height"]) == (24, 24)
    assert data["items"][0]["width"] == 48


def test_scene_regions_are_windows_of_the_file() -> None:
    """Every region equals the same pixels of the whole scene mapped and upscaled at once,
    and its transform maps its output pixels into the raster's CRS."""
    models = load_models(["bicubic"], scale=2, device=torch.device("cpu"))
    scene, items = compare_scene(SCENE, models, scale=2, region_size=32, max_regions=3, points=[(741000.0, -2798000.0)])
    with rasterio.open(SCENE) as ds:
        data = ds.read([1, 2, 3]).astype(np.float64)
        transform, width, height = ds.transform, ds.width, ds.height
        point = ds.index(741000.0, -2798000.0)
    assert (scene.width, scene.height, scene.cell) == (width, height, 32) and scene.crs == "EPSG:32621"
    mapping = json.loads(scene.mapping)
    assert mapping["method"].startswith("percentile")
    low, high = np.array(mapping["low"])[:, None, None], np.array(mapping["high"])[:, None, None]
    np.testing.assert_allclose(low[:, 0, 0], np.percentile(data, 0.5, axis=(1, 2)))
    unit = (data - low) / (high - low)
    # the bicubic layer is fatsr.evaluation.evaluate.BicubicModel: kernel a=-0.5 (PIL, MATLAB), which torch calls antialias
    whole = torch.from_numpy(unit)[None].float()
    whole_bicubic = F.interpolate(whole, scale_factor=2, mode="bicubic", align_corners=False, antialias=True)[0]
    cells = [tuple(i.cell) for i in items]
    assert len(cells) == 4 and (point[1] // 32, point[0] // 32) in cells  # 3 most textured + the point
    overview = scene.overview
    assert overview.shape == (height, width, 3)
    np.testing.assert_array_equal(overview, np.rint(np.clip(unit, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0))
    for item in items:
        c, r = item.cell
        window = (slice(r * 32, min(r * 32 + 32, height)), slice(c * 32, min(c * 32 + 32, width)))
        lr = decode(item.layers[0].src)
        np.testing.assert_array_equal(
            lr, np.rint(np.clip(unit[:, window[0], window[1]], 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
        )
        big = whole_bicubic[:, window[0].start * 2 : window[0].stop * 2, window[1].start * 2 : window[1].stop * 2]
        expected = np.rint(big.clamp(0, 1).numpy() * 255).astype(np.int16).transpose(1, 2, 0)
        assert np.abs(decode(item.layers[1].src).astype(np.int16) - expected).max() <= 1
        a, b, x0, d, e, y0 = item.geo["transform"]
        corner = transform @ (c * 32, r * 32)
        assert (x0, y0) == pytest.approx(corner) and (a, e) == pytest.approx((transform.a / 2, transform.e / 2))


def test_scene_point_outside_is_refused() -> None:
    models = load_models(["bicubic"], scale=2, device=torch.device("cpu"))
    with pytest.raises(FatsrError, match="outside the scene"):
        compare_scene(SCENE, models, scale=2, points=[(0.0, 0.0)])


def test_bad_arguments_are_named_from_python_and_flagged_from_the_cli(tmp_path: Path, capsys) -> None:
    models = load_models(["bicubic"], scale=2, device=torch.device("cpu"))
    with pytest.raises(FatsrError, match=r"^region_size=4: give at least 8 LR pixels$"):
        compare_scene(SCENE, models, scale=2, region_size=4)
    with pytest.raises(FatsrError, match=r"^bands=\(1, 2\): give 3 \(or 1\) band numbers"):
        compare_scene(SCENE, models, scale=2, bands=(1, 2))
    page = str(tmp_path / "page.html")
    assert main(["compare", str(SCENE), "--model", "bicubic", "--region-size", "4", "-o", page]) == 2
    assert capsys.readouterr().err == "error: --region-size 4: give at least 8 LR pixels\n"
    assert main(["compare", str(SCENE), "--model", "bicubic", "--bands", "1,2", "-o", page]) == 2
    assert capsys.readouterr().err.startswith("error: --bands 1,2: give 3 (or 1) band numbers")
    assert main(["compare", str(SCENE), "--model", "bicubic", "--region", "0", "0", "-o", page]) == 2
    assert capsys.readouterr().err.startswith("error: --region 0 0 lies outside the scene")
    with pytest.raises(FatsrError, match=r"^specs='missing.pt': no such file"):
        load_models(["missing.pt"], scale=None, device=torch.device("cpu"))
    assert main(["compare", str(SCENE), "--model", "missing.pt", "-o", page]) == 2
    assert capsys.readouterr().err.startswith("error: --model missing.pt: no such file")


def test_cli_writes_the_page_and_refuses_bad_requests(hr_folder: Path, tmp_path: Path, capsys) -> None:
    page = tmp_path / "page.html"
    assert main(["compare", "--hr", str(hr_folder), "--model", "bicubic", "--scale", "2", "-o", str(page)]) == 0
    assert "fatsr-data" in page.read_text()
    before = page.read_bytes()
    assert main(["compare", "--hr", str(hr_folder), "--model", "bicubic", "--scale", "2", "-o", str(page)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and page.read_bytes() == before
    assert main(["compare", str(hr_folder), "--model", "bicubic", "-o", str(tmp_path / "page.png")]) == 2
    assert "give -o PAGE.html" in capsys.readouterr().err
    assert main(["compare", "--model", "bicubic", "-o", str(tmp_path / "x.html")]) == 2
    assert "no input given" in capsys.readouterr().err
    lr = tmp_path / "lr"
    lr.mkdir()
    Image.fromarray(smooth_image(5, 24)).save(lr / "other.png")
    assert main(["compare", str(lr), "--hr", str(hr_folder), "--model", "bicubic", "-o", str(tmp_path / "y.html")]) == 2
    assert "no HR image named like other.png" in capsys.readouterr().err


def test_evaluate_html_is_sorted_by_gain(hr_folder: Path, model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    assert main(["evaluate", str(hr_folder), "--model", str(model_file), "-o", str(out), "--html"]) == 0
    html = (out / "report.html").read_text()
    data = json.loads(re.search(r'id="fatsr-data">(.*?)</script>', html, re.S).group(1))
    assert data["table"] is True
    gains = [i["gain"] for i in data["items"]]
    assert gains == sorted(gains) and len(gains) == 2
    rows = {r.split(",")[0]: r.split(",") for r in (out / "metrics.csv").read_text().splitlines()[1:]}
    for item in data["items"]:
        sr = next(layer for layer in item["layers"] if layer["name"] == "tiny")
        assert sr["scores"]["psnr_y"] == pytest.approx(float(rows[item["name"]][1]), abs=1e-3)


def test_scene_nodata_is_transparent_in_every_layer(model_file: Path) -> None:
    path = SCENE.with_name("RGB.byte_crop512.tif")  # uint8 RGB with a nodata-0 collar
    models = load_models([str(model_file)], scale=None, device=torch.device("cpu"))
    scene, items = compare_scene(path, models, scale=2, region_size=64, max_regions=2)
    with rasterio.open(path) as ds:
        data, nodata = ds.read(), ds.nodata
    assert nodata == 0 and scene.overview.shape == (*data.shape[1:], 4)
    np.testing.assert_array_equal(scene.overview[:, :, 3] == 0, (data == nodata).any(axis=0))
    assert json.loads(scene.mapping)["method"] == "dtype range"
    for item in items:
        c, r = item.cell
        lr, sr = decode(item.layers[0].src), decode(item.layers[2].src)
        window = data[:, r * 64 : r * 64 + lr.shape[0], c * 64 : c * 64 + lr.shape[1]]
        np.testing.assert_array_equal(lr[:, :, 3] == 0, (window == nodata).any(axis=0))
        np.testing.assert_array_equal(lr[:, :, :3][lr[:, :, 3] > 0], window.transpose(1, 2, 0)[lr[:, :, 3] > 0])
        assert item.layers[2].name == "tiny" and sr.shape == (2 * lr.shape[0], 2 * lr.shape[1], 4)
        np.testing.assert_array_equal(sr[:, :, 3], lr[:, :, 3].repeat(2, 0).repeat(2, 1))


def test_regions_chosen_by_texture_skip_slivers() -> None:
    from fatsr.evaluation.compare import _choose_cells

    rng = np.random.default_rng(0)
    overview = np.full((70, 100, 3), 100, np.uint8)  # cells of 32: 4 x 3, the last column 4 px wide
    overview[32:64, 32:64] = rng.integers(0, 255, (32, 32, 3))  # cell (1, 1): texture
    overview[:, 96:] = rng.integers(0, 255, (70, 4, 3))  # the sliver: more texture still
    overview[0:32, 64:96] = rng.integers(90, 110, (32, 32, 3))  # cell (2, 0): a little
    assert _choose_cells(overview, 100, 70, 32, 2, 1) == {(1, 1), (2, 0)}
    assert len(_choose_cells(overview, 100, 70, 32, 12, 1)) == 12  # all 12 cells fit the limit


def test_page_opens_on_bicubic_against_the_best_model():
    from fatsr.evaluation.compare import opening_layers

    def layers(*named: tuple[str, float | None]) -> list[dict]:
        return [{"name": n, **({"scores": {"psnr_y": v}} if v is not None else {})} for n, v in named]

    scored = layers(("LR", None), ("bicubic", 26.9), ("a", 27.5), ("b", 28.6), ("c", 28.1), ("HR", None))
    assert opening_layers(scored) == ["bicubic", "b"]
    assert opening_layers(layers(("LR", None), ("bicubic", None), ("a", None), ("b", None))) == ["bicubic", "a"]
    assert opening_layers(layers(("LR", None), ("a", 20.0), ("HR", None))) == ["LR", "a"]  # no bicubic layer
    assert opening_layers(layers(("LR", None), ("bicubic", 26.9))) == ["LR", "bicubic"]  # no model

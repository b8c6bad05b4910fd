"""Evaluation metrics and pipeline: SAM, ERGAS, texture strata, LPIPS wiring, pairing, scoring
of 16-bit and multi-band images, against independent computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fatsr.errors import FatsrError
from fatsr.evaluation.evaluate import BicubicModel, Pair, evaluate, pair_files, score
from fatsr.evaluation.lpips import LPIPS, NETWORKS, load_lpips
from fatsr.evaluation.metrics import ergas, psnr, psnr_by_texture, sam

HARBOR = Path(__file__).resolve().parents[1] / "examples" / "harbor55.png"  # UC Merced val harbor55


def harbor(size: int = 64) -> np.ndarray:
    with Image.open(HARBOR) as im:
        return np.asarray(im.convert("RGB"))[100 : 100 + size, 60 : 60 + size].copy()


# --- metrics --------------------------------------------------------------------------


def test_sam_by_hand():
    hr = np.array([[[1.0, 0.0], [1.0, 1.0]]])  # 1x2 pixels, 2 bands
    sr = np.array([[[0.0, 1.0], [2.0, 2.0]]])  # 90 degrees, then the same direction
    assert sam(sr, hr) == pytest.approx(45.0)
    hr3 = np.array([[[0.2, 0.4, 0.4]]])
    sr3 = np.array([[[0.4, 0.2, 0.4]]])
    angle = np.degrees(np.arccos((0.08 + 0.08 + 0.16) / (0.36)))  # |hr| = |sr| = 0.6
    assert sam(sr3, hr3) == pytest.approx(angle)
    zero = np.zeros((1, 2, 2))
    assert sam(zero, hr) == pytest.approx(float("nan"), nan_ok=True)


def test_ergas_by_hand():
    rng = np.random.default_rng(0)
    hr = rng.uniform(0.2, 0.8, (8, 9, 5))  # 5 bands: a 4th channel would be alpha
    sr = np.clip(hr + rng.normal(0, 0.05, hr.shape), 0, 1)
    rmse = [np.sqrt(np.mean((sr[..., k] - hr[..., k]) ** 2)) for k in range(5)]
    means = [hr[..., k].mean() for k in range(5)]
    expected = 100 / 4 * np.sqrt(np.mean([(r / m) ** 2 for r, m in zip(rmse, means)]))
    assert ergas(sr, hr, scale=4) == pytest.approx(expected, rel=1e-9)


def test_texture_strata():
    hr = harbor(48)
    sr = np.clip(hr.astype(int) + np.random.default_rng(1).integers(-6, 7, hr.shape), 0, 255).astype(np.uint8)
    parts = psnr_by_texture(sr, hr, border=2)
    # equal thirds of 44 * 44 pixels (not divisible by 3, so nearly equal): their MSEs average to the whole
    mses = [255.0**2 / 10 ** (parts[k] / 10) for k in ("low", "mid", "high")]
    sizes = [len(a) for a in np.array_split(np.arange(44 * 44), 3)]
    whole = 255.0**2 / 10 ** (psnr(sr, hr, border=2) / 10)
    assert np.dot(mses, sizes) / sum(sizes) == pytest.approx(whole, rel=1e-9)
    # flat left half, textured right half, errors only in the texture: the low stratum is exact
    flat = np.full((30, 30, 3), 128, np.uint8)
    flat[:, 15:] = np.random.default_rng(2).integers(0, 255, (30, 15, 3))
    noisy = flat.copy()
    noisy[:, 20:] ^= 1
    split = psnr_by_texture(noisy, flat)
    assert split["low"] == float("inf") and np.isfinite(split["high"])


# --- LPIPS ----------------------------------------------------------------------------


def _save_lpips_files(folder: Path, net: str, seed: int = 0) -> LPIPS:
    """Random weights in the original files' key layouts; returns the model they describe."""
    torch.manual_seed(seed)
    reference = LPIPS(net)
    for lin in reference.lins:
        torch.nn.init.uniform_(lin.weight, 0, 1)
    backbone, head, _ = NETWORKS[net]
    features = {f"features.{k}": v for k, v in reference.features.state_dict().items()}
    features["classifier.1.weight"] = torch.zeros(2, 2)  # ignored, as in torchvision's file
    torch.save(features, folder / backbone)
    torch.save({f"lin{k.replace('.', '.model.1.', 1)}": v for k, v in reference.lins.state_dict().items()},
               folder / head)  # fmt: skip
    return reference


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_loads_files(tmp_path, net):
    reference = _save_lpips_files(tmp_path, net)
    model = load_lpips(net, tmp_path)
    for (k, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.rand(1, 3, 32, 32)
    assert float(model(x, x)) == 0.0
    assert float(model(x, x.flip(-1))) > 0


def test_lpips_first_layer_by_hand(tmp_path):
    reference = _save_lpips_files(tmp_path, "alex")
    model = load_lpips("alex", tmp_path)
    with torch.no_grad():
        for lin in model.lins[1:]:
            lin.weight.zero_()
    a, b = torch.rand(1, 3, 40, 40), torch.rand(1, 3, 40, 40)
    conv = reference.features[0]
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def unit_features(x):
        f = F.relu(F.conv2d((2 * x - 1 - shift) / scale, conv.weight, conv.bias, stride=4, padding=2))
        return f / (f.norm(dim=1, keepdim=True) + 1e-10)

    d = (unit_features(a) - unit_features(b)) ** 2
    expected = (d * reference.lins[0].weight.view(1, -1, 1, 1)).sum(1).mean()
    with torch.no_grad():
        assert float(model(a, b)) == pytest.approx(float(expected), rel=1e-5)


def test_lpips_missing_and_wrong_files(tmp_path):
    with pytest.raises(FatsrError, match="alexnet-owt-7be5be79.pth and alex.pth"):
        load_lpips("alex", tmp_path)
    _save_lpips_files(tmp_path, "alex")
    (tmp_path / "vgg.pth").write_bytes((tmp_path / "alex.pth").read_bytes())
    with pytest.raises(FatsrError, match="vgg16-397923af.pth in"):
        load_lpips("vgg", tmp_path)
    (tmp_path / "vgg16-397923af.pth").write_bytes((tmp_path / "alexnet-owt-7be5be79.pth").read_bytes())
    with pytest.raises(FatsrError, match="do not fit"):
        load_lpips("vgg", tmp_path)


# --- pairing and scoring --------------------------------------------------------------


def test_pairing_by_name(tmp_path):
    for folder, names in {"hr": ["a.png", "b.png"], "sr": ["a_x4.png", "b.png", "c.png"]}.items():
        (tmp_path / folder).mkdir()
        for name in names:
            Image.new("RGB", (8, 8)).save(tmp_path / folder / name)
    pairs = pair_files(tmp_path / "hr", sr=tmp_path / "sr")
    assert [(p.name, p.sr.name) for p in pairs] == [("a", "a_x4.png"), ("b", "b.png")]
    (tmp_path / "sr" / "b.png").unlink()
    with pytest.raises(FatsrError, match="no SR image for b"):
        pair_files(tmp_path / "hr", sr=tmp_path / "sr")


def test_bit_depths_and_bands_agree():
    hr = harbor(40)
    lr = np.asarray(Image.fromarray(hr).resize((20, 20), Image.BICUBIC))
    sr = np.asarray(Image.fromarray(lr).resize((40, 40), Image.BICUBIC))
    eight = score(sr, hr, lr, scale=2, border=2)
    sixteen = score(*(x.astype(np.uint16) * 257 for x in (sr, hr)), lr.astype(np.uint16) * 257, scale=2, border=2)
    for key, value in eight.items():
        assert sixteen[key] == pytest.approx(value, abs=1e-4), key
    # five bands: the RGB bands twice minus one; no Y, the band metrics still defined
    bands = [np.concatenate([x, x[:, :, :2]], axis=2) for x in (sr, hr, lr)]
    multi = score(*bands, scale=2, border=2)
    assert np.isnan(multi["psnr_y"]) and np.isnan(multi["ssim_y"])
    assert multi["psnr_rgb"] == pytest.approx(psnr(bands[0], bands[1], border=2, y_channel=False))
    assert multi["sam_deg"] > 0 and multi["ergas"] > 0


def test_bicubic_model_runs_any_bands(tmp_path):
    hr = np.random.default_rng(3).integers(0, 65535, (24, 24, 3), dtype=np.uint16)
    path = tmp_path / "hr.png"
    from fatsr.io import write_image

    write_image(path, hr)
    (result,) = evaluate([Pair("hr", path)], scale=2, border=2, model=BicubicModel(2), crop_size=8)
    assert np.isfinite(result.scores["psnr_y"]) and result.crops[0].dtype == np.uint16
    assert [c.shape for c in result.crops] == [(8, 8, 3)] * 3
    assert BicubicModel(3)(torch.rand(1, 5, 4, 6)).shape == (1, 5, 12, 18)

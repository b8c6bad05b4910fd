"""Local Attribution Maps: the default equals an independent computation from LAM's
definitions (finite differences of a NumPy model), attribution lands in the known receptive
field, DI grows with it, Gini by hand, fixed hashing, and ``fatsr lam`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from fatsr.cli import main
from fatsr.errors import FatsrError
from fatsr.evaluation.lam import Window, blur, gini, lam_gini, local_attribution_map
from fatsr.models.fat import FAT
from fatsr.models.files import save_model
from fatsr.models.wrapper import SRModel


class BoxModel(nn.Module):
    """x2 model whose output pixel (r, c) is the mean of the k x k input neighbourhood of
    (r // 2, c // 2) (zero outside the image): its receptive field is known exactly."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k, self.scale, self.name = k, 2, f"box{k}"

    def forward(self, x: Tensor) -> Tensor:
        weight = torch.full((x.shape[1], 1, self.k, self.k), 1 / self.k**2)
        y = F.conv2d(x, weight, padding=self.k // 2, groups=x.shape[1])
        return F.interpolate(y, scale_factor=2, mode="nearest")


def textured(size: int = 24, seed: int = 0) -> Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("k", [3, 5])
def test_attribution_in_the_receptive_field(k):
    # SR rows 16..21 x columns 20..25, plus row 22 below and column 26 beside the window (not
    # the corner): LR rows 8..11 x columns 10..12 and rows 8..10 x columns 10..13
    window = Window(x=20, y=16, size=6)
    result = local_attribution_map(BoxModel(k), textured(), window, steps=20)
    r = k // 2
    inside = np.zeros_like(result.attribution, dtype=bool)
    inside[8 - r : 11 + r + 1, 10 - r : 12 + r + 1] = True
    inside[8 - r : 10 + r + 1, 10 - r : 13 + r + 1] = True
    assert np.all(result.attribution[~inside] == 0)
    assert result.attribution[inside].min() > 0
    assert result.diffusion_index == pytest.approx((1 - result.gini) * 100)
    # fatsr 0.1's objective stays inside the window: LR rows 8..10, columns 10..12
    old = local_attribution_map(BoxModel(k), textured(), window, steps=20, definition="fatsr-0.1")
    inside[:] = False
    inside[8 - r : 10 + r + 1, 10 - r : 12 + r + 1] = True
    assert np.all(old.attribution[~inside] == 0) and old.attribution[inside].min() > 0


# --- an independent LAM, written from the definitions in NumPy, float64 -------------------


def _np_model(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(3, H, W) -> (3, 2H, 2W): tanh of a 3x3 convolution mixing the channels (zero padding),
    each pixel repeated 2x2."""
    c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros((weight.shape[0], h, w))
    for o in range(weight.shape[0]):
        for i in range(c):
            for dy in range(3):
                for dx in range(3):
                    out[o] += weight[o, i, dy, dx] * padded[i, dy : dy + h, dx : dx + w]
    return np.tanh(out).repeat(2, axis=1).repeat(2, axis=2)


def _np_objective(sr: np.ndarray, x: int, y: int, size: int) -> float:
    """Sum over channels and window pixels (r, c) of sqrt((I[r,c]-I[r+1,c])^2 + (I[r,c]-I[r,c+1])^2)."""
    here = sr[:, y : y + size, x : x + size]
    below, right = sr[:, y + 1 : y + size + 1, x : x + size], sr[:, y : y + size, x + 1 : x + size + 1]
    return float(np.sqrt((here - below) ** 2 + (here - right) ** 2).sum())


def _np_blur(x: np.ndarray, sigma: float, size: int) -> np.ndarray:
    """Gaussian of sigma + 1e-5, mirrored borders without repeating the edge pixel."""
    offsets = np.arange(size) - size // 2
    k = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * (sigma + 1e-5) ** 2))
    k /= k.sum()
    r = size // 2
    padded = np.pad(x, ((0, 0), (r, r), (r, r)), mode="reflect")
    out = np.zeros_like(x)
    for dy in range(size):
        for dx in range(size):
            out += k[dy, dx] * padded[:, dy : dy + x.shape[1], dx : dx + x.shape[2]]
    return out


def _np_lam(lr: np.ndarray, weight: np.ndarray, window: tuple[int, int, int], steps: int, sigma: float,
            size: int) -> tuple[np.ndarray, float]:  # fmt: skip
    """(map, DI): central-difference gradients at the right end of each blur-path step."""

    def objective(v: np.ndarray) -> float:
        return _np_objective(_np_model(v, weight), *window)

    path = [_np_blur(lr, sigma * (1 - i / steps), size) for i in range(steps + 1)]
    total = np.zeros_like(lr)
    for i in range(steps):
        point, grad = path[i + 1], np.zeros_like(lr)
        for index in np.ndindex(lr.shape):
            up, down = point.copy(), point.copy()
            up[index] += 1e-6
            down[index] -= 1e-6
            grad[index] = (objective(up) - objective(down)) / 2e-6
        total += grad * (path[i + 1] - path[i])
    attribution = np.abs(total.sum(axis=0))
    v = np.sort((attribution / attribution.max()).ravel() + 1e-7)
    n = v.size
    g = np.sum((2 * np.arange(1, n + 1) - n - 1) * v) / (n * v.sum())
    return attribution, (1 - g) * 100


def test_default_is_lam_as_defined():
    rng = np.random.default_rng(3)
    weight = rng.normal(0, 0.5, (3, 3, 3, 3))
    lr = rng.uniform(0, 1, (3, 8, 8))
    window = (5, 6, 4)  # x, y, size in SR pixels

    class Model(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            y = torch.tanh(F.conv2d(x, torch.from_numpy(weight), padding=1))
            return F.interpolate(y, scale_factor=2, mode="nearest")

    steps, sigma, size = 4, 1.2, 5
    result = local_attribution_map(Model(), torch.from_numpy(lr)[None], Window(*window), steps=steps,
                                   sigma=sigma, kernel=size)  # fmt: skip
    expected, di = _np_lam(lr, weight, window, steps, sigma, size)
    assert np.abs(result.attribution - expected).max() < 1e-6 * expected.max()
    assert result.diffusion_index == pytest.approx(di, abs=1e-6)
    # the earlier variant is a different quantity on the same case
    old = local_attribution_map(Model(), torch.from_numpy(lr)[None], Window(*window), steps=steps, sigma=sigma,
                                kernel=size, definition="fatsr-0.1")  # fmt: skip
    assert abs(old.diffusion_index - di) > 0.1


def test_lam_gini():
    assert lam_gini(np.array([0.0, 0.0, 2.0])) == pytest.approx(gini(np.array([1e-7, 1e-7, 1 + 1e-7])))
    assert lam_gini(np.full(5, 3.0)) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(lam_gini(np.zeros(4)))


def test_wider_field_diffuses_more():
    window = Window(x=20, y=20, size=4)
    di = [local_attribution_map(BoxModel(k), textured(), window, steps=10).diffusion_index for k in (1, 3, 7)]
    assert di[0] < di[1] < di[2]


def test_gini_by_hand():
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.eye(1, 8).ravel()) == pytest.approx(7 / 8)
    # mean absolute difference over all pairs / (2 * mean)
    v = np.array([1.0, 2.0, 3.0, 10.0])
    pairs = np.abs(v[:, None] - v[None, :]).mean()
    assert gini(v) == pytest.approx(pairs / (2 * v.mean()))
    assert np.isnan(gini(np.zeros(5)))


def test_blur():
    x = textured(12)
    assert torch.equal(blur(x, 0.0, 9), x)
    flat = torch.full((1, 2, 12, 12), 0.3)
    assert torch.allclose(blur(flat, 1.2, 9), flat)
    assert blur(x, 1.2, 9).std() < x.std()


def test_fixed_hashing_and_window_check():
    torch.manual_seed(0)
    model = SRModel(FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=2), name="tiny").eval()
    lr, window = textured(12), Window(8, 8, 6)
    a = local_attribution_map(model, lr, window, steps=2)
    b = local_attribution_map(model, lr, window, steps=2)
    assert np.array_equal(a.attribution, b.attribution) and a.attribution.sum() > 0
    with pytest.raises(FatsrError, match="not inside"):
        local_attribution_map(model, lr, Window(20, 0, 6), steps=1)


def test_cli_compare(tmp_path, capsys):
    torch.manual_seed(0)
    save_model(
        tmp_path / "tiny.safetensors", FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=2), name="tiny"
    )
    Image.fromarray((textured(12)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(tmp_path / "lr.png")
    args = ["lam", str(tmp_path / "lr.png"), "--model", str(tmp_path / "tiny.safetensors"), "--compare", "bicubic",
            "--window", "8", "8", "6", "--steps", "2", "-o", str(tmp_path / "out"), "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    report = json.loads((tmp_path / "out" / "lr_lam.json").read_text())
    assert [m["model"] for m in report["models"]] == ["tiny", "bicubic"]
    for m in report["models"]:
        assert m["diffusion_index"] == pytest.approx((1 - m["gini"]) * 100)
    assert report["settings"]["window"] == {"x": 8, "y": 8, "size": 6}
    assert report["settings"]["definition"] == "lam"
    with Image.open(tmp_path / "out" / "lr_lam.png") as im:
        assert im.format == "PNG" and im.height > im.width / 2  # two rows of panels
    assert main(args) == 2  # outputs exist now
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--window", "30", "0", "6"]) == 2
    assert "not inside" in capsys.readouterr().err


def test_cli_from_hr_is_lam_demo_set_up(tmp_path):
    """--from-hr crops the HR to a multiple of the scale and downscales it by Pillow's bicubic."""
    rng = np.random.default_rng(1)
    hr = Image.fromarray(rng.integers(0, 256, (26, 27, 3), dtype=np.uint8))
    hr.save(tmp_path / "hr.png")
    hr.crop((0, 0, 26, 26)).resize((13, 13), Image.BICUBIC).save(tmp_path / "lr.png")
    common = ["--model", "bicubic", "--scale", "2", "--window", "6", "6", "8", "--steps", "3", "--device", "cpu"]
    assert main(["lam", str(tmp_path / "hr.png"), "--from-hr", *common, "-o", str(tmp_path / "a")]) == 0
    assert main(["lam", str(tmp_path / "lr.png"), *common, "-o", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "hr_lam.json").read_text())
    b = json.loads((tmp_path / "b" / "lr_lam.json").read_text())
    assert a["settings"]["from_hr"] is True
    assert (
        a["models"][0]["gini"] == b["models"][0]["gini"]
        and a["models"][0]["peak_lr_xy"] == b["models"][0]["peak_lr_xy"]
    )

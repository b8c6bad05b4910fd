"""Local Attribution Maps: attribution lands in the known receptive field, DI grows with it,
Gini by hand, fixed hashing, and ``fatsr lam`` end to end."""

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
from fatsr.lam import Window, blur, gini, local_attribution_map
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
    window = Window(x=20, y=16, size=6)  # LR rows 8..10, columns 10..12
    result = local_attribution_map(BoxModel(k), textured(), window, steps=20)
    r = k // 2
    inside = np.zeros_like(result.attribution, dtype=bool)
    inside[8 - r : 10 + r + 1, 10 - r : 12 + r + 1] = True
    assert np.all(result.attribution[~inside] == 0)
    assert result.attribution[inside].min() > 0
    assert result.diffusion_index == pytest.approx((1 - result.gini) * 100)


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
    save_model(tmp_path / "tiny.safetensors", FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=2), name="tiny")
    Image.fromarray((textured(12)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(tmp_path / "lr.png")
    args = ["lam", str(tmp_path / "lr.png"), "--model", str(tmp_path / "tiny.safetensors"), "--compare", "bicubic",
            "--window", "8", "8", "6", "--steps", "2", "-o", str(tmp_path / "out"), "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    report = json.loads((tmp_path / "out" / "lr_lam.json").read_text())
    assert [m["model"] for m in report["models"]] == ["tiny", "bicubic"]
    for m in report["models"]:
        assert m["diffusion_index"] == pytest.approx((1 - m["gini"]) * 100)
    assert report["settings"]["window"] == {"x": 8, "y": 8, "size": 6}
    with Image.open(tmp_path / "out" / "lr_lam.png") as im:
        assert im.format == "PNG" and im.height > im.width / 2  # two rows of panels
    assert main(args) == 2  # outputs exist now
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--window", "30", "0", "6"]) == 2
    assert "not inside" in capsys.readouterr().err

from __future__ import annotations

import numpy as np
import pytest
import torch

from fatsr.errors import FatsrError
from fatsr.losses import (
    VGG19_FILE,
    FATLoss,
    LEVLoss,
    PerceptualLoss,
    VGG19Features,
    lev_maps,
    load_vgg19_state_dict,
)

# torchvision's VGG19 "features" conv layers: index -> (in, out)
VGG19_CONVS = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256), 12: (256, 256),
               14: (256, 256), 16: (256, 256), 19: (256, 512)}  # fmt: skip


def slow_lev(sr: np.ndarray, hr: np.ndarray) -> float:
    """LEV by explicit loops over windows, in float64."""

    def maps(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, c, h, w = x.shape
        var = np.zeros((n, c, (h - 4) // 4 + 1, (w - 4) // 4 + 1))
        top = np.zeros((n, c, h - 3, w - 3))
        bot = np.zeros_like(top)
        for b in range(n):
            for ch in range(c):
                for i in range(var.shape[2]):
                    for j in range(var.shape[3]):
                        win = x[b, ch, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].ravel()
                        var[b, ch, i, j] = np.mean((win - win.mean()) ** 2)
                for i in range(h - 3):
                    for j in range(w - 3):
                        win = np.sort(x[b, ch, i : i + 4, j : j + 4].ravel())
                        top[b, ch, i, j] = win[-4:].mean()
                        bot[b, ch, i, j] = win[:4].mean()
        return var, top, bot

    return float(sum(np.mean(np.abs(a - b)) for a, b in zip(maps(sr), maps(hr))))


def random_vgg_state(seed: int = 0, last: int = 19) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for idx, (cin, cout) in VGG19_CONVS.items():
        if idx <= last:
            state[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
            state[f"features.{idx}.bias"] = torch.randn(cout, generator=g) * 0.05
    state["classifier.0.weight"] = torch.zeros(2, 2)  # present in the real file; must be ignored
    return state


@pytest.fixture
def vgg_file(tmp_path):
    path = tmp_path / VGG19_FILE
    torch.save(random_vgg_state(), path)
    return path


def test_lev_matches_slow_loop():
    rng = np.random.default_rng(0)
    sr = rng.uniform(-1, 1, (2, 3, 11, 14))
    hr = rng.uniform(-1, 1, (2, 3, 11, 14))
    got = LEVLoss()(torch.tensor(sr, dtype=torch.float64), torch.tensor(hr, dtype=torch.float64))
    assert got.item() == pytest.approx(slow_lev(sr, hr), abs=1e-6)
    got32 = LEVLoss()(torch.tensor(sr, dtype=torch.float32), torch.tensor(hr, dtype=torch.float32))
    assert got32.item() == pytest.approx(slow_lev(sr, hr), abs=1e-6)


def test_lev_zero_for_identical_inputs_and_has_gradient():
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert LEVLoss()(x, x.clone()).item() == 0.0
    sr = x.clone().requires_grad_(True)
    LEVLoss()(sr, torch.zeros_like(x)).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0


def test_lev_extreme_means_and_gradients_equal_sorting_every_window():
    x = torch.rand(2, 3, 13, 17, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    windows = x.unfold(2, 4, 1).unfold(3, 4, 1).reshape(2, 3, 10, 14, 16).sort(dim=-1).values
    weights = torch.rand(2, 2, 3, 10, 14, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    sr = x.clone().requires_grad_()
    reference = sr.unfold(2, 4, 1).unfold(3, 4, 1).reshape(2, 3, 10, 14, 16).sort(dim=-1).values
    expected = torch.autograd.grad(
        (reference[..., 12:].mean(-1) * weights[0] + reference[..., :4].mean(-1) * weights[1]).sum(), sr
    )[0]
    _, top, bottom = lev_maps(sr)
    torch.testing.assert_close(top, windows[..., 12:].mean(-1), rtol=0, atol=1e-12)
    torch.testing.assert_close(bottom, windows[..., :4].mean(-1), rtol=0, atol=1e-12)
    got = torch.autograd.grad((top * weights[0] + bottom * weights[1]).sum(), sr)[0]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    # ties with the 4th value share its place: on a constant image each of 16 values has 1/16
    flat = torch.ones(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    _, top, _ = lev_maps(flat)
    assert top.item() == 1.0
    torch.testing.assert_close(
        torch.autograd.grad(top.sum(), flat)[0], torch.full((1, 1, 4, 4), 1 / 16, dtype=torch.float64)
    )


def test_lev_map_shapes():
    var, top, bot = lev_maps(torch.zeros(2, 3, 10, 13))
    assert var.shape == (2, 3, 2, 3) and top.shape == bot.shape == (2, 3, 7, 10)


def test_vgg_layers_and_keys():
    vgg = VGG19Features()
    assert len(vgg.features) == 15
    assert isinstance(vgg.features[14], torch.nn.Conv2d)  # conv3_3, before its ReLU
    expected = {f"features.{i}.{p}" for i in VGG19_CONVS if i <= 14 for p in ("weight", "bias")}
    assert set(vgg.state_dict()) == expected


def test_perceptual_loads_file_and_is_frozen(vgg_file):
    state = random_vgg_state()
    loss = PerceptualLoss(vgg_file)
    for idx in (0, 7, 14):
        assert torch.equal(loss.vgg.features[idx].weight, state[f"features.{idx}.weight"])
    assert all(not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.vgg.training

    sr = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_(True)
    hr = torch.rand(1, 3, 16, 16) * 2 - 1
    value = loss(sr, hr)
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())

    # independent computation of the default normalisation
    vgg = VGG19Features()
    vgg.load_pretrained(state)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    norm = lambda x: ((x + 1) / 2 - mean) / std  # noqa: E731
    with torch.no_grad():
        expected = torch.mean((vgg(norm(sr)) - vgg(norm(hr))) ** 2)
        raw = torch.mean((vgg(sr) - vgg(hr)) ** 2)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    published = PerceptualLoss(state, published_normalization=True)
    assert published(sr, hr).item() == pytest.approx(raw.item(), rel=1e-5)


def test_vgg_wrong_file_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save(random_vgg_state(last=10), bad)
    with pytest.raises(FatsrError, match="features.12.weight"):
        PerceptualLoss(bad)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(FatsrError, match="garbage.pth"):
        load_vgg19_state_dict(garbage)
    with pytest.raises(FatsrError, match="no such file"):
        load_vgg19_state_dict(tmp_path / "absent.pth")


def test_missing_vgg_weights_message(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(FatsrError) as info:
        load_vgg19_state_dict()
    message = str(info.value)
    assert str(tmp_path / "hub" / "checkpoints" / VGG19_FILE) in message
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert "losses='perceptual=0'" in message and "vgg_weights='FILE'" in message


def test_vgg_found_in_torch_hub_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.save(random_vgg_state(seed=3), tmp_path / "checkpoints" / VGG19_FILE)
    state = load_vgg19_state_dict()
    assert torch.equal(state["features.14.bias"], random_vgg_state(seed=3)["features.14.bias"])


def test_fat_loss_combines_terms(vgg_file):
    torch.manual_seed(0)
    sr = torch.rand(2, 3, 16, 16) * 2 - 1
    hr = torch.rand(2, 3, 16, 16) * 2 - 1
    loss = FATLoss({"l1": 0.5, "perceptual": 0.01, "lev": 0.2}, vgg_weights=vgg_file)
    total, terms = loss(sr, hr)
    assert set(terms) == {"l1", "lev", "perceptual"}
    assert terms["l1"].item() == pytest.approx((sr - hr).abs().mean().item())
    assert terms["lev"].item() == pytest.approx(LEVLoss()(sr, hr).item())
    assert terms["perceptual"].item() == pytest.approx(PerceptualLoss(vgg_file)(sr, hr).item())
    expected = 0.5 * terms["l1"] + 0.01 * terms["perceptual"] + 0.2 * terms["lev"]
    assert total.item() == pytest.approx(expected.item())


def test_fat_loss_zero_weight_terms_are_skipped(monkeypatch):
    def no_vgg(*args, **kwargs):
        raise AssertionError("VGG must not be loaded")

    monkeypatch.setattr("fatsr.losses.load_vgg19_state_dict", no_vgg)
    loss = FATLoss({"perceptual": 0})
    assert "perceptual" not in loss.terms
    sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    total, terms = loss(sr, hr)
    assert set(terms) == {"l1", "lev"}
    assert total.item() == pytest.approx(terms["l1"].item() + 0.1 * terms["lev"].item())
    total, terms = FATLoss({"lev": 0, "perceptual": 0})(sr, hr)
    assert set(terms) == {"l1"} and total.item() == pytest.approx(terms["l1"].item())
    with pytest.raises(FatsrError, match="all loss weights are 0"):
        FATLoss({"l1": 0, "lev": 0, "perceptual": 0})
    with pytest.raises(FatsrError, match=">= 0"):
        FATLoss({"lev": -1})
    with pytest.raises(FatsrError, match="unknown loss term ssim; the terms are l1, lev, perceptual"):
        FATLoss({"ssim": 1})

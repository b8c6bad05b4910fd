"""The batched degradation and the torch JPEG, checked against the per-file path, Pillow and statistics."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fatsr.data import TrainDataset, bicubic_downscale, quantize
from fatsr.data.degrade import degrade, filter2d
from fatsr.data.degrade_batch import BatchDegrader, degradation_rngs
from fatsr.data.degrade_presets import PRESET_NAMES, load_preset
from fatsr.data.jpeg import jpeg, quality_tables
from fatsr.data.kernels import random_blur_kernel
from fatsr.errors import FatsrError
from fatsr.io import read_image

VAL = Path(__file__).resolve().parents[1] / "fixtures" / "ucmerced" / "val"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real 256x256 RGB aerial photo (uint8 HWC)."""
    return read_image(min(VAL.glob("*.png")))[:256, :256, :3]


def _batch(image: np.ndarray) -> torch.Tensor:
    """(1, C, H, W) float in [0, 1] of an HWC uint8 image."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()[None] / 255


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(255**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """HWC uint8 of a (1, C, H, W) or (C, H, W) batch in [0, 1]."""
    return (x.reshape(-1, *x.shape[-2:]) * 255).round().byte().permute(1, 2, 0).numpy()


@pytest.mark.parametrize("name", PRESET_NAMES)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lr_is_exactly_hr_over_scale_on_the_8_bit_grid(photo: np.ndarray, name: str, scale: int) -> None:
    hr = torch.cat([_batch(photo[:48, :36]), _batch(photo[48:96, :36])])
    lr = BatchDegrader(load_preset(name), scale)(hr, np.random.default_rng(0))
    assert lr.shape == (2, 3, 48 // scale, 36 // scale) and lr.dtype == torch.float32
    assert 0 <= lr.min() and lr.max() <= 1
    torch.testing.assert_close(lr, quantize(lr, 255), rtol=0, atol=1e-7)


def test_same_seed_same_bytes_other_seed_differs(photo: np.ndarray) -> None:
    hr = torch.cat([_batch(photo[:64, :64]), _batch(photo[64:128, :64])])
    degrader = BatchDegrader(load_preset("fat"), 4)
    original = hr.clone()
    a = degrader(hr, *degradation_rngs(0, 5, 0, 2))
    assert torch.equal(hr, original)  # the HR (the training target) is left as it was
    torch.manual_seed(123)  # the global generators play no part
    np.random.seed(123)
    b = degrader(hr, *degradation_rngs(0, 5, 0, 2))
    assert a.numpy().tobytes() == b.numpy().tobytes()
    for other in (degradation_rngs(1, 5, 0, 2), degradation_rngs(0, 6, 0, 2), degradation_rngs(0, 5, 2, 2)):
        assert (degrader(hr, *other) - a).abs().mean() > 1e-3


def test_slices_of_a_global_batch_degrade_as_the_whole_batch(photo: np.ndarray) -> None:
    # what K processes under torchrun do: each degrades its slice with its images' generators
    hr = torch.cat([_batch(photo[r : r + 64, c : c + 64]) for r in (0, 64) for c in (0, 64)])
    for name in ("fat", "realesrgan"):
        degrader = BatchDegrader(load_preset(name), 4)
        whole = degrader(hr, *degradation_rngs(0, 7, 0, 4))
        halves = torch.cat([degrader(hr[k : k + 2], *degradation_rngs(0, 7, k, 2)) for k in (0, 2)])
        torch.testing.assert_close(halves, whole, rtol=0, atol=1e-6)


def test_degradation_rngs_are_functions_of_seed_step_and_index_only() -> None:
    def first(rng: np.random.Generator) -> int:
        return int(rng.integers(2**63))

    shared, images = degradation_rngs(3, 10, 4, 2)
    again, images_again = degradation_rngs(3, 10, 0, 6)
    assert first(shared) == first(again)  # the shared stream does not depend on the slice
    assert [first(r) for r in images] == [first(r) for r in images_again[4:]]
    draws = {first(degradation_rngs(s, t, 0, 1)[k][0] if k else degradation_rngs(s, t, 0, 1)[0])
             for s in (0, 1) for t in (0, 1, 2) for k in (0, 1)}  # fmt: skip
    assert len(draws) == 12
    # apart from the dataset's crop stream default_rng([seed, epoch, index])
    assert first(degradation_rngs(0, 0, 0, 1)[0]) != first(np.random.default_rng([0, 0, 0]))


def test_bicubic_preset_equals_bicubic_downscale(photo: np.ndarray) -> None:
    hr = torch.cat([_batch(photo[:36, :24]), _batch(photo[36:72, :24])])
    lr = BatchDegrader(load_preset("bicubic"), 3)(hr, np.random.default_rng(0))
    assert torch.equal(lr, quantize(bicubic_downscale(hr, 3), 255))


def test_without_noise_and_jpeg_one_image_equals_fatsr_degrade(photo: np.ndarray) -> None:
    # kernels, resizes, unsharp mask and sinc are the same code and draws as `fatsr degrade`
    preset = load_preset("realesrgan")
    for stage in ("first", "second"):
        preset[stage].update(noise=None, jpeg=None)
    preset["final"]["jpeg"] = None
    for seed in range(4):
        file_rng, batch_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        expected = degrade(photo[:64, :64], 4, preset, file_rng)
        lr = BatchDegrader(preset, 4)(_batch(photo[:64, :64]), batch_rng)
        np.testing.assert_array_equal(_to_uint8(lr), expected)


def test_each_image_gets_its_own_kernel(first_stage_only) -> None:
    # one grouped conv equals filtering each image alone with its kernel
    rng = np.random.default_rng(0)
    spec = load_preset("realesrgan")["first"]["kernel"]
    kernels = np.stack([random_blur_kernel(rng, [7, 13, 21], spec) for _ in range(3)])
    x = torch.rand(3, 3, 30, 40)
    together = filter2d(x, kernels)
    for i in range(3):
        torch.testing.assert_close(together[i : i + 1], filter2d(x[i : i + 1], kernels[i]), rtol=0, atol=1e-6)
    # through the degrader: a batch of identical impulses gives a different blur kernel per image
    impulse = torch.zeros(4, 1, 41, 41)
    impulse[:, :, 20, 20] = 1.0
    out = BatchDegrader(first_stage_only(blur_prob=1.0), 1)(impulse, np.random.default_rng(1))[:, 0]
    assert torch.equal(out, out.flip(1, 2))  # each is a point-symmetric blur kernel (rounded to 8 bits)
    assert (out[:, 20, 20] < 1).all() and (out[:, 20, 20] == out.amax(dim=(1, 2))).all()
    assert all(not torch.equal(out[i], out[j]) for i in range(4) for j in range(i))


@pytest.mark.parametrize("grey", [False, True])
def test_gaussian_noise_has_the_requested_sigma(grey: bool, first_stage_only) -> None:
    noise = {"gaussian_prob": 1.0, "gaussian_sigma": [8.0, 8.0], "poisson_scale": [1.0, 1.0], "gray_prob": float(grey)}
    flat = torch.full((4, 3, 64, 64), 128 / 255)
    out = (BatchDegrader(first_stage_only(noise=noise), 1)(flat, np.random.default_rng(0)) * 255 - 128).double()
    assert out.mean().item() == pytest.approx(0.0, abs=0.15)
    for image in out:  # every image of the batch, not just the batch as a whole
        assert image.std().item() == pytest.approx(math.sqrt(8.0**2 + 1 / 12), rel=0.05)  # + rounding to 8 bits
    same = np.corrcoef(out[:, 0].ravel(), out[:, 1].ravel())[0, 1]
    assert same == pytest.approx(1.0) if grey else abs(same) < 0.05
    assert abs(np.corrcoef(out[0].ravel(), out[1].ravel())[0, 1]) < 0.05  # images get their own noise


def test_poisson_noise_variance_follows_the_signal(first_stage_only) -> None:
    # 256 grey levels -> 256 counts per unit: variance of level v is v / 256 (scale 1)
    ramp = (torch.arange(256) / 255).expand(2, 1, 64, 256).contiguous()
    noise = {"gaussian_prob": 0.0, "gaussian_sigma": [1.0, 1.0], "poisson_scale": [1.0, 1.0], "gray_prob": 0.0}
    out = BatchDegrader(first_stage_only(noise=noise), 1)(ramp, np.random.default_rng(0))[..., 64:192].double()
    level = torch.arange(64, 192).double() / 255
    assert (out - level).mean().item() == pytest.approx(0.0, abs=2e-3)
    assert ((out - level) ** 2).mean().item() == pytest.approx((level / 256).mean().item(), rel=0.05)


@pytest.mark.parametrize("quality", [30, 80, 95])
def test_torch_jpeg_matches_pillow(photo: np.ndarray, quality: int) -> None:
    image = photo[:250, :246]  # not whole 16x16 MCUs
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    encoded = Image.open(buffer)
    luma, chroma = quality_tables(torch.tensor([quality]))
    np.testing.assert_array_equal(luma[0].flatten().numpy(), encoded.quantization[0])
    np.testing.assert_array_equal(chroma[0].flatten().numpy(), encoded.quantization[1])
    pillow = np.asarray(encoded)
    ours = _to_uint8(jpeg(_batch(image), [quality]))
    assert _psnr(ours, pillow) > 40
    assert _psnr(ours, image) == pytest.approx(_psnr(pillow, image), abs=0.2)  # as lossy as the real codec


def test_torch_jpeg_grey_and_per_image_quality(photo: np.ndarray) -> None:
    grey = photo[:64, :80, :1]
    buffer = io.BytesIO()
    Image.fromarray(grey[:, :, 0]).save(buffer, format="JPEG", quality=50)
    assert _psnr(_to_uint8(jpeg(_batch(grey), [50])), np.asarray(Image.open(buffer))[:, :, None]) > 40
    pair = torch.cat([_batch(photo[:64, :80])] * 2)
    both = jpeg(pair, [30, 95])
    assert torch.equal(both[:1], jpeg(pair[:1], [30])) and torch.equal(both[1:], jpeg(pair[:1], [95]))
    assert not torch.equal(both[0], both[1])


def test_hr_only_dataset_gives_the_same_hr_crops(tmp_path: Path, photo: np.ndarray) -> None:
    for i in range(2):
        Image.fromarray(photo[i * 64 : i * 64 + 96, :96]).save(tmp_path / f"{i}.png")
    full = TrainDataset(tmp_path, 2, patch_size=16, seed=3)
    hr_only = TrainDataset(tmp_path, 2, patch_size=16, seed=3, hr_only=True)
    for index in range(2):
        a, b = full[index], hr_only[index]
        assert "lr" not in b and torch.equal(a["hr"], b["hr"])


def test_bad_input_is_refused() -> None:
    with pytest.raises(FatsrError, match="multiples of 4"):
        BatchDegrader(load_preset("fat"), 4)(torch.rand(1, 3, 30, 32), np.random.default_rng(0))
    with pytest.raises(FatsrError, match="unknown preset 'nope'; use one of bicubic, fat, mild, realesrgan"):
        load_preset("nope")

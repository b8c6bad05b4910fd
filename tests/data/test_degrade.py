"""Kernels, noise, JPEG and the whole degradation, checked against independent computations."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import scipy.special
import torch
from PIL import Image

from fatsr.data import bicubic_downscale, quantize
from fatsr.data.degrade import degrade, encode_jpeg, image_rng, usm_sharpen
from fatsr.data.degrade_presets import PRESET_NAMES, load_preset
from fatsr.data.kernels import (
    KERNEL_TYPES,
    gaussian_kernel,
    generalized_gaussian_kernel,
    plateau_kernel,
    random_mixed_kernel,
    sinc_kernel,
)
from fatsr.errors import FatsrError

# JPEG luminance quantisation table (ITU-T T.81 Annex K.1), in natural (row-major) order.
_LUMA = np.array(
    [
        16,
        11,
        10,
        16,
        24,
        40,
        51,
        61,
        12,
        12,
        14,
        19,
        26,
        58,
        60,
        55,
        14,
        13,
        16,
        24,
        40,
        57,
        69,
        56,
        14,
        17,
        22,
        29,
        51,
        87,
        80,
        62,
        18,
        22,
        37,
        56,
        68,
        109,
        103,
        77,
        24,
        35,
        55,
        64,
        81,
        104,
        113,
        92,
        49,
        64,
        78,
        87,
        103,
        121,
        120,
        101,
        72,
        92,
        95,
        98,
        112,
        100,
        103,
        99,
    ]
)


def _moments(kernel: np.ndarray) -> np.ndarray:
    r = np.arange(kernel.shape[0]) - kernel.shape[0] // 2
    x, y = np.meshgrid(r, r, indexing="xy")
    return np.array(
        [[(kernel * x * x).sum(), (kernel * x * y).sum()], [(kernel * x * y).sum(), (kernel * y * y).sum()]]
    )


def _image(h: int = 36, w: int = 24, channels: int = 3, dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    top = 65535 if dtype == np.uint16 else 255
    return np.random.default_rng(seed).integers(0, top, size=(h, w, channels), endpoint=True).astype(dtype)


@pytest.mark.parametrize("kind", KERNEL_TYPES)
def test_random_kernels_sum_to_one_and_have_the_requested_size(kind: str) -> None:
    spec = load_preset("realesrgan")["first"]["kernel"] | {"types": {kind: 1.0}}
    for i in range(5):
        kernel = random_mixed_kernel(np.random.default_rng(i), 13, spec)
        assert kernel.shape == (13, 13)
        assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
        assert (kernel >= 0).all()
        np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-15)  # point-symmetric


def test_gaussian_covariance_matches_sigmas_and_angle() -> None:
    iso = gaussian_kernel(41, 2.0, 2.0)
    np.testing.assert_allclose(_moments(iso), np.diag([4.0, 4.0]), rtol=1e-6, atol=1e-12)
    for theta in (0.3, 1.2, -0.7, 2.5):
        cov = _moments(gaussian_kernel(41, 4.0, 1.5, theta))
        values, vectors = np.linalg.eigh(cov)
        assert values == pytest.approx([1.5**2, 4.0**2], rel=1e-3)
        major = vectors[:, 1]  # (x, y) with y pointing down the rows
        angle = math.atan2(major[1], major[0])
        assert math.remainder(angle - theta, math.pi) == pytest.approx(0.0, abs=1e-6)


def test_generalized_and_plateau_shapes_follow_their_formulas() -> None:
    # at offset (2, 0) with sigma 2 the quadratic form is 1
    gen = generalized_gaussian_kernel(9, 2.0, 2.0, 0.0, 3.0)
    assert gen[4, 6] / gen[4, 4] == pytest.approx(math.exp(-0.5))
    assert gen[4, 8] / gen[4, 4] == pytest.approx(math.exp(-0.5 * 4.0**3))  # q = 4 at (4, 0)
    plateau = plateau_kernel(9, 2.0, 2.0, 0.0, 2.0)
    assert plateau[6, 4] / plateau[4, 4] == pytest.approx(0.5)
    assert plateau[8, 4] / plateau[4, 4] == pytest.approx(1 / (1 + 4.0**2))
    np.testing.assert_allclose(generalized_gaussian_kernel(9, 1.5, 0.8, 0.4, 1.0), gaussian_kernel(9, 1.5, 0.8, 0.4))


def test_sinc_kernel_is_the_bessel_low_pass() -> None:
    cutoff = math.pi / 3
    kernel = sinc_kernel(21, cutoff)
    assert kernel.sum() == pytest.approx(1.0)
    centre = cutoff**2 / (4 * math.pi)
    for r in (1, 3, 7):
        expected = cutoff * scipy.special.j1(cutoff * r) / (2 * math.pi * r) / centre
        assert kernel[10, 10 + r] / kernel[10, 10] == pytest.approx(expected, rel=1e-6)
    response = np.abs(np.fft.fft2(kernel, s=(64, 64)))
    assert response[0, 0] == pytest.approx(1.0)
    assert response[0, 32] < 0.1  # Nyquist, far above the cut-off: suppressed


@pytest.mark.parametrize("name", PRESET_NAMES)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_is_exactly_hr_over_scale(name: str, scale: int) -> None:
    lr = degrade(_image(), scale, load_preset(name), image_rng(0, "a"))
    assert lr.shape == (36 // scale, 24 // scale, 3) and lr.dtype == np.uint8


@pytest.mark.parametrize(("channels", "dtype"), [(1, np.uint8), (4, np.uint8), (3, np.uint16), (1, np.uint16)])
def test_bit_depth_and_channels_are_kept(channels: int, dtype: type) -> None:
    hr = _image(24, 24, channels, dtype)
    lr = degrade(hr, 4, load_preset("fat"), image_rng(3, "x"))
    assert lr.shape == (6, 6, channels) and lr.dtype == dtype
    if dtype == np.uint16:
        assert (lr % 257 != 0).any()  # not just 8-bit values stretched


def test_alpha_is_area_downscaled() -> None:
    hr = _image(24, 24, 4)
    lr = degrade(hr, 4, load_preset("realesrgan"), image_rng(0, "x"))
    expected = hr[:, :, 3].reshape(6, 4, 6, 4).astype(np.float64).mean(axis=(1, 3))
    np.testing.assert_array_equal(lr[:, :, 3], np.round(expected))


def test_same_seed_same_output_other_seed_differs() -> None:
    hr = _image(32, 32)
    preset = load_preset("fat")
    a = degrade(hr, 4, preset, image_rng(7, "img.png"))
    b = degrade(hr, 4, preset, image_rng(7, "img.png"))
    torch.manual_seed(123)  # the global torch and numpy generators play no part
    np.random.seed(123)
    c = degrade(hr, 4, preset, image_rng(7, "img.png"))
    assert a.tobytes() == b.tobytes() == c.tobytes()
    assert not np.array_equal(a, degrade(hr, 4, preset, image_rng(8, "img.png")))
    assert not np.array_equal(a, degrade(hr, 4, preset, image_rng(7, "other.png")))


def test_bicubic_preset_equals_bicubic_downscale() -> None:
    hr = _image(36, 24)
    lr = degrade(hr, 3, load_preset("bicubic"), image_rng(0, "a"))
    x = torch.from_numpy(hr.transpose(2, 0, 1).astype(np.float32) / 255)
    expected = (quantize(bicubic_downscale(x, 3), 255) * 255).round().byte().permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(lr, expected)


@pytest.mark.parametrize("grey", [False, True])
def test_gaussian_noise_has_the_requested_sigma(grey: bool, first_stage_only) -> None:
    noise = {"gaussian_prob": 1.0, "gaussian_sigma": [8.0, 8.0], "poisson_scale": [1.0, 1.0], "gray_prob": float(grey)}
    flat = np.full((96, 96, 3), 128, np.uint8)
    out = degrade(flat, 1, first_stage_only(noise=noise), image_rng(0, "flat")).astype(np.float64) - 128
    assert out.mean() == pytest.approx(0.0, abs=0.15)
    assert out.std() == pytest.approx(math.sqrt(8.0**2 + 1 / 12), rel=0.03)  # + rounding to 8 bits
    same = np.corrcoef(out[:, :, 0].ravel(), out[:, :, 1].ravel())[0, 1]
    assert same == pytest.approx(1.0) if grey else abs(same) < 0.05


def test_poisson_noise_variance_follows_the_signal(first_stage_only) -> None:
    # 256 grey levels -> 256 counts per unit: variance of level v is v / 256 (scale 1)
    ramp = np.tile(np.arange(256, dtype=np.uint8), (64, 1))[:, :, None]
    noise = {"gaussian_prob": 0.0, "gaussian_sigma": [1.0, 1.0], "poisson_scale": [1.0, 1.0], "gray_prob": 0.0}
    out = degrade(ramp, 1, first_stage_only(noise=noise), image_rng(0, "ramp"))[:, 64:192, 0] / 255
    level = np.arange(64, 192) / 255
    assert (out - level).mean() == pytest.approx(0.0, abs=2e-3)
    assert ((out - level) ** 2).mean() == pytest.approx((level / 256).mean(), rel=0.05)


def _ijg_table(quality: int) -> np.ndarray:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality  # libjpeg integer arithmetic
    return np.clip((_LUMA * scale + 50) // 100, 1, 255)


@pytest.mark.parametrize("quality", [30, 80, 95])
def test_jpeg_uses_the_drawn_quality(quality: int, first_stage_only) -> None:
    hr = _image(32, 32)
    encoded = Image.open(io.BytesIO(encode_jpeg(hr, quality)))
    assert encoded.format == "JPEG"
    np.testing.assert_array_equal(np.array(encoded.quantization[0]), _ijg_table(quality))
    # the pipeline's JPEG step equals Pillow's own encode/decode at that quality
    buffer = io.BytesIO()
    Image.fromarray(hr).save(buffer, format="JPEG", quality=quality)
    expected = np.asarray(Image.open(buffer))
    out = degrade(hr, 1, first_stage_only(jpeg={"quality": [quality, quality]}), image_rng(0, "j"))
    np.testing.assert_array_equal(out, expected)


def test_scale_not_dividing_is_refused() -> None:
    with pytest.raises(FatsrError, match="not divisible by scale 4"):
        degrade(_image(30, 24), 4, load_preset("fat"), image_rng(0, "a"))


def test_preset_files_are_checked(tmp_path) -> None:
    import yaml

    preset = load_preset("fat")
    preset["first"]["noise"]["sigma"] = preset["first"]["noise"].pop("gaussian_sigma")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(preset))
    with pytest.raises(FatsrError, match=r"first\.noise: missing keys \['gaussian_sigma'\], unknown keys \['sigma'\]"):
        load_preset(path)
    preset = load_preset("fat")
    preset["final"]["order_a"] = ["sinc", "jpeg"]
    path.write_text(yaml.safe_dump(preset))
    with pytest.raises(FatsrError, match=r"final\.order_a"):
        load_preset(path)
    with pytest.raises(FatsrError, match="unknown preset 'nope'"):
        load_preset("nope")


def test_unsharp_mask_keeps_flat_areas_and_steepens_edges() -> None:
    flat = torch.full((1, 3, 40, 40), 0.4)
    torch.testing.assert_close(usm_sharpen(flat, 50, 0.5, 10), flat)
    edge = torch.zeros(1, 1, 40, 40)
    edge[..., 20:] = 0.8
    sharp = usm_sharpen(edge, 50, 0.5, 10)
    assert sharp[0, 0, 5, 19] < 0.0 + 1e-6 and sharp[0, 0, 5, 18] < edge[0, 0, 5, 18] + 1e-6
    assert sharp[0, 0, 5, 20] > 0.8  # overshoot on the bright side of the edge
    torch.testing.assert_close(sharp[0, 0, :, 0], edge[0, 0, :, 0])  # far from the edge: unchanged

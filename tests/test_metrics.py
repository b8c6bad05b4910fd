from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from fatsr.errors import FatsrError
from fatsr.evaluation.metrics import psnr, rgb_to_y, ssim

VAL = Path(__file__).resolve().parent / "fixtures" / "ucmerced" / "val"
NAMES = ["harbor55.png", "forest05.png", "denseresidential05.png"]


def load_pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(bicubic x4 down-and-up of the image, original), both uint8 HWC."""
    with Image.open(VAL / name) as im:
        hr = im.convert("RGB")
    lr = hr.resize((hr.width // 4, hr.height // 4), Image.BICUBIC)
    return np.asarray(lr.resize(hr.size, Image.BICUBIC)), np.asarray(hr)


def reference_y(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[:, :, i].astype(np.float64) / 255 for i in range(3))
    return 16 + 65.481 * r + 128.553 * g + 24.966 * b


def crop(img: np.ndarray, border: int) -> np.ndarray:
    return img[border:-border, border:-border] if border else img


def sk_ssim(a: np.ndarray, b: np.ndarray, channel_axis: int | None = None) -> float:
    # skimage filters with 'reflect' padding, then averages the map without (win-1)/2 = 5 pixels
    # per side: exactly the pixels whose window lies inside the image, i.e. 'valid' filtering.
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=channel_axis)  # fmt: skip


def test_rgb_to_y_known_values():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], dtype=np.uint8)
    assert rgb_to_y(img) == pytest.approx(np.array([[16.0, 235.0, 16 + 65.481]]))
    assert rgb_to_y(img.astype(np.float32) / 255) == pytest.approx(rgb_to_y(img))
    assert rgb_to_y(img.astype(np.uint16) * 257) == pytest.approx(rgb_to_y(img))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("border", [0, 4])
def test_against_scikit_image(name, border):
    sr, hr = load_pair(name)
    y_sr, y_hr = crop(reference_y(sr), border), crop(reference_y(hr), border)
    assert psnr(sr, hr, border=border) == pytest.approx(peak_signal_noise_ratio(y_hr, y_sr, data_range=255), abs=1e-3)
    assert ssim(sr, hr, border=border) == pytest.approx(sk_ssim(y_sr, y_hr), abs=1e-4)

    rgb_sr, rgb_hr = crop(sr.astype(np.float64), border), crop(hr.astype(np.float64), border)
    expected_psnr = peak_signal_noise_ratio(rgb_hr, rgb_sr, data_range=255)
    assert psnr(sr, hr, border=border, y_channel=False) == pytest.approx(expected_psnr, abs=1e-3)
    expected_ssim = sk_ssim(rgb_sr, rgb_hr, channel_axis=-1)
    assert ssim(sr, hr, border=border, y_channel=False) == pytest.approx(expected_ssim, abs=1e-4)


def test_input_types_agree():
    sr, hr = load_pair(NAMES[0])
    ref_p, ref_s = psnr(sr, hr, border=4), ssim(sr, hr, border=4)
    for conv in (lambda x: x.astype(np.float32) / 255, lambda x: x.astype(np.uint16) * 257):
        assert psnr(conv(sr), conv(hr), border=4) == pytest.approx(ref_p, abs=1e-4)
        assert ssim(conv(sr), conv(hr), border=4) == pytest.approx(ref_s, abs=1e-6)
    # mixed inputs: float SR against a uint8 HR
    assert psnr(sr.astype(np.float64) / 255, hr, border=4) == pytest.approx(ref_p, abs=1e-9)


def test_grey_and_identical_images():
    sr, hr = load_pair(NAMES[1])
    g_sr, g_hr = sr[:, :, :1], hr[:, :, 1]
    expected = peak_signal_noise_ratio(g_hr.astype(float), g_sr[:, :, 0].astype(float), data_range=255)
    assert psnr(g_sr, g_hr) == pytest.approx(expected, abs=1e-3)
    assert psnr(hr, hr) == float("inf")
    assert ssim(hr, hr, border=4) == pytest.approx(1.0)


def test_errors():
    a = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(FatsrError, match="differ"):
        psnr(a, np.zeros((20, 21, 3), np.uint8))
    with pytest.raises(FatsrError, match="border"):
        psnr(a, a, border=10)
    with pytest.raises(FatsrError, match="11x11"):
        ssim(a, a, border=5)

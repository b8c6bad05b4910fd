"""Each built-in model beats bicubic by its measured margin on real images kept in the
repository (tests/fixtures/ucmerced/val: 8 UC Merced validation images none of the models
trained on), so a broken, retrained or swapped weight file fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import fatsr
from fatsr.data import bicubic_downscale
from fatsr.evaluate import BicubicModel
from fatsr.io import read_image
from fatsr.metrics import psnr
from fatsr.models import zoo

IMAGES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "ucmerced" / "val").glob("*.png"))
# Mean PSNR-Y gain (dB, border = scale) over Pillow-style bicubic on the eight images, measured
# with this test's computation; a shipped model must have its figure here.
MEASURED_GAIN = {
    "fatsr-compact-x4": 1.776,  # per image 0.02 (agricultural05) to 3.08 (denseresidential05)
}


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def gains_over_bicubic(name: str) -> list[float]:
    model = fatsr.load_model(name)
    s = model.scale
    gains = []
    for path in IMAGES:
        hr = torch.from_numpy(read_image(path)).permute(2, 0, 1)[None].float() / 255
        lr = (bicubic_downscale(hr, s) * 255).round() / 255  # an 8-bit LR image
        with torch.inference_mode():
            sr, bicubic = model(lr), BicubicModel(s)(lr)
        reference = to_uint8(hr)
        gains.append(psnr(to_uint8(sr), reference, border=s) - psnr(to_uint8(bicubic), reference, border=s))
    return gains


def test_the_images_are_there():
    assert len(IMAGES) == 8 and all(read_image(p).shape == (256, 256, 3) for p in IMAGES)


@pytest.mark.parametrize("name", sorted(zoo.builtin_models()))
def test_builtin_model_beats_bicubic_by_its_measured_margin(name):
    assert name in MEASURED_GAIN, f"measure {name} with this test's computation and add it to MEASURED_GAIN"
    gains = gains_over_bicubic(name)
    assert min(gains) > 0.0, gains  # no image worse than bicubic
    assert np.mean(gains) == pytest.approx(MEASURED_GAIN[name], abs=0.05), gains

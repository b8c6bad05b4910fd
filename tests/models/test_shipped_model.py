"""The model shipped in the package beats bicubic on real validation images by a clear margin,
so a broken or replaced weight file cannot pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import fatsr
from fatsr.data import bicubic_downscale
from fatsr.io import read_image
from fatsr.metrics import psnr
from fatsr.models.files import read_metadata

VAL_IMAGES = ["harbor55.png", "denseresidential05.png", "airplane56.png", "storagetanks55.png", "freeway05.png", "parkinglot05.png"]

VAL = Path(__file__).resolve().parents[1] / "fixtures" / "ucmerced" / "val"


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def test_shipped_model_is_installed_with_its_metadata():
    path = fatsr.default_model_path()
    assert path is not None and path.stat().st_size < 8 * 2**20
    meta = read_metadata(path)
    assert meta["architecture"] == "FAT" and meta["scale"] == "4"


def test_shipped_model_beats_bicubic():
    model = fatsr.load_model()
    gains = []
    for name in VAL_IMAGES:
        hr = torch.from_numpy(read_image(VAL / name)).permute(2, 0, 1)[None].float() / 255
        lr = (bicubic_downscale(hr, 4) * 255).round() / 255  # an 8-bit LR image
        with torch.inference_mode():
            sr = model(lr)
        bicubic = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False)
        reference = to_uint8(hr)
        gains.append(psnr(to_uint8(sr), reference, border=4) - psnr(to_uint8(bicubic), reference, border=4))
    assert min(gains) > 0.3, gains  # measured: 0.45 (harbor) to 2.70 dB
    assert np.mean(gains) > 1.0, gains  # measured: 1.90 dB

"""`fatsr denoise --method bm3d` (optional bm3d package) and its error when the package is missing."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from fatsr.cli import main
from fatsr.data.denoise import denoise
from fatsr.errors import FatsrError
from fatsr.io import read_image, write_image

VAL = Path(__file__).resolve().parents[1] / "fixtures" / "ucmerced" / "val"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(255**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_bm3d_removes_gaussian_noise_from_a_real_image(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("bm3d")
    clean = read_image(min(VAL.glob("*.png")))[:48, :48, :3]
    noise = np.random.default_rng(0).normal(0, 10, clean.shape)
    noisy = np.clip(np.round(clean + noise), 0, 255).astype(np.uint8)
    write_image(tmp_path / "in" / "a.png", noisy)
    assert (
        main(["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--method", "bm3d", "--strength", "10"])
        == 0
    )
    out = read_image(tmp_path / "out" / "a.png")
    assert out.shape == noisy.shape and out.dtype == np.uint8
    assert _psnr(out, clean) > _psnr(noisy, clean) + 3
    assert "(bm3d, strength 10)" in capsys.readouterr().out


def test_missing_bm3d_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bm3d", None)  # import bm3d raises ImportError
    from fatsr.cli import message

    with pytest.raises(
        FatsrError, match=r"method='bm3d' needs the bm3d package; install it with pip install bm3d,"
    ) as err:
        denoise(np.zeros((8, 8, 3), np.uint8), "bm3d", 5.0)
    assert message(err.value).startswith("--method bm3d needs the bm3d package") and "use --method nlm" in message(
        err.value
    )

"""Tiling, mod-crop, dataset checks and the noise estimate / denoiser."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from fatsr.data.check import check_dataset
from fatsr.data.denoise import estimate_noise, nlm_denoise
from fatsr.data.prepare import mod_crop, tile_boxes, tile_starts
from fatsr.errors import FatsrError
from fatsr.io import write_image


@pytest.mark.parametrize(
    ("length", "size", "step"),
    [(1000, 480, 240), (480, 480, 240), (481, 480, 240), (100, 480, 240), (97, 10, 7), (50, 10, 10)],
)
def test_tiles_cover_the_line_and_end_at_the_border(length: int, size: int, step: int) -> None:
    starts = tile_starts(length, size, step)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + size] = True
    assert covered.all() and starts[0] == 0
    assert min(starts[-1] + size, length) == length and starts[-1] + min(size, length) == length
    assert all(0 < b - a <= step for a, b in itertools.pairwise(starts))


def test_tile_boxes_cover_every_pixel_once_or_more() -> None:
    count = np.zeros((70, 45), int)
    for top, left, h, w in tile_boxes(70, 45, 32, 16):
        assert h == 32 and w == 32
        count[top : top + h, left : left + w] += 1
    assert count.min() >= 1


def test_mod_crop() -> None:
    image = np.zeros((50, 47, 3), np.uint8)
    assert mod_crop(image, 4).shape == (48, 44, 3)
    assert mod_crop(image, 1).shape == image.shape
    with pytest.raises(FatsrError, match="smaller than the scale"):
        mod_crop(image[:2], 3)


def _img(seed: int, h: int, w: int, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels)).astype(np.uint8)


def _published(root: Path) -> Path:
    for i in range(3):
        write_image(root / "train" / "HR" / f"{i}.png", _img(i, 16, 16))
        write_image(root / "train" / "LR" / f"{i}.png", _img(10 + i, 4, 4))
    write_image(root / "test" / "t.png", _img(20, 8, 8, 1))
    return root


def test_check_clean_published_layout(tmp_path: Path) -> None:
    report = check_dataset(_published(tmp_path), scale=4)
    assert report.problem_count == 0
    assert report.layout.startswith("FAT release")
    assert "train/{HR,LR}: 3 pairs, scale x4 (3)" in report.lines
    assert "test: 1 images; sizes 8x8 (1); 8-bit (1); 1 band (1)" in report.lines


def test_check_finds_every_kind_of_problem(tmp_path: Path) -> None:
    root = _published(tmp_path)
    (root / "train" / "HR" / "broken.png").write_bytes(b"not an image")
    write_image(root / "test" / "copy.png", _img(0, 16, 16))  # same pixels as train/HR/0.png
    write_image(root / "train" / "HR" / "lonely.png", _img(30, 16, 16))
    write_image(root / "train" / "LR" / "2.png", _img(31, 5, 4), overwrite=True)
    report = check_dataset(root, scale=4)
    assert report.problems["unreadable"][0].startswith(str(root / "train" / "HR" / "broken.png"))
    assert report.problems["duplicate"] == ["test/copy.png = train/HR/0.png"]
    assert report.problems["unpaired"] == ["train/{HR,LR}: HR without LR: lonely"]
    assert report.problems["mismatched pair"] == ["train/{HR,LR}: 2 HR 16x16, LR 4x5 (not x4)"]
    assert report.problem_count == 4


def test_check_rssr25_layout_and_empty_folder(tmp_path: Path) -> None:
    for name in ("train", "alter", "test", "testorigin"):
        write_image(tmp_path / name / "a.png", _img(hash(name) % 1000, 8, 8))
    report = check_dataset(tmp_path)
    assert report.layout.startswith("RSSR25")
    assert any("testorigin/ is RSSR25's real test set" in n for n in report.notes)
    (tmp_path / "empty").mkdir()
    assert check_dataset(tmp_path / "empty").problems["empty"]


def test_noise_estimate_matches_added_gaussian_noise() -> None:
    rng = np.random.default_rng(0)
    smooth = np.add.outer(np.linspace(60, 180, 128), np.linspace(0, 30, 128))[:, :, None]
    for sigma in (3.0, 10.0):
        noisy = np.clip(np.round(smooth + rng.normal(0, sigma, smooth.shape)), 0, 255).astype(np.uint8)
        assert estimate_noise(noisy) == pytest.approx(sigma, rel=0.06)
    as16 = noisy.astype(np.uint16) * 257
    assert estimate_noise(as16) == pytest.approx(estimate_noise(noisy))


@pytest.mark.parametrize(("channels", "dtype"), [(3, np.uint8), (1, np.uint8), (4, np.uint8), (3, np.uint16)])
def test_nlm_reduces_noise_and_keeps_format(channels: int, dtype: type) -> None:
    rng = np.random.default_rng(1)
    noisy = np.clip(128 + rng.normal(0, 10, (48, 48, channels)), 0, 255).astype(np.uint8)
    if channels == 4:
        noisy[:, :, 3] = 200
    image = noisy.astype(dtype) * (257 if dtype == np.uint16 else 1)
    clean = nlm_denoise(image, 10.0)
    assert clean.shape == image.shape and clean.dtype == dtype
    assert estimate_noise(clean) < 0.5 * estimate_noise(image)
    if channels == 4:
        assert (clean[:, :, 3] == 200).all()

"""read_image / write_image / atomic_write: round trips checked against independent decoders."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fatsr.errors import FatsrError
from fatsr.io import atomic_write, read_image, write_image

HARBOR = Path(__file__).resolve().parents[1] / "examples" / "harbor55.png"  # UC Merced val harbor55


def random_image(dtype: type, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max + 1, size=(9, 13, channels), dtype=dtype)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_round_trip_keeps_dtype_channels_and_values(tmp_path, suffix, channels, dtype):
    image = random_image(dtype, channels)
    path = tmp_path / f"img{suffix}"
    write_image(path, image)
    back = read_image(path)
    assert back.dtype == dtype and back.shape == image.shape
    np.testing.assert_array_equal(back, image)
    assert leftovers(tmp_path) == []


def decode_independently(path: Path) -> np.ndarray:
    """Decode with OpenCV, not with fatsr or Pillow. OpenCV premultiplies the alpha of 8-bit
    RGBA TIFFs, so those (uncompressed, from Pillow) are decoded by tifffile instead."""
    decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if decoded.ndim == 2:
        return decoded[:, :, None]
    if path.suffix == ".tif" and decoded.dtype == np.uint8 and decoded.shape[2] == 4:
        return pytest.importorskip("tifffile").imread(path)
    return decoded[:, :, [2, 1, 0, 3][: decoded.shape[2]]]  # BGR(A) -> RGB(A)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_written_file_decodes_identically_elsewhere(tmp_path, suffix, channels, dtype):
    image = random_image(dtype, channels, seed=1)
    path = tmp_path / f"img{suffix}"
    write_image(path, image)
    decoded = decode_independently(path)
    assert decoded.dtype == dtype
    np.testing.assert_array_equal(decoded, image)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_reads_16bit_png_written_by_opencv(tmp_path, channels):
    image = random_image(np.uint16, channels, seed=2)
    path = tmp_path / "cv.png"
    bgr = image[:, :, 0] if channels == 1 else image[:, :, [2, 1, 0, 3][:channels]]
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr))
    back = read_image(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, image)


def test_reads_real_png_like_pillow():
    image = read_image(HARBOR)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    with Image.open(HARBOR) as im:
        np.testing.assert_array_equal(image, np.asarray(im.convert("RGB")))


def test_grey_alpha_and_palette_become_rgba_and_rgb(tmp_path):
    la = np.stack([np.arange(20, dtype=np.uint8).reshape(4, 5), np.full((4, 5), 128, np.uint8)], axis=-1)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    rgba = read_image(tmp_path / "la.png")
    assert rgba.shape == (4, 5, 4)
    np.testing.assert_array_equal(rgba[:, :, 0], la[:, :, 0])
    np.testing.assert_array_equal(rgba[:, :, 3], la[:, :, 1])
    rgb = np.random.default_rng(3).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb).quantize(8).save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as im:
        expected = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected)


def test_truncated_png_is_a_user_error(tmp_path):
    data = HARBOR.read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FatsrError, match="cut.png"):
        read_image(path)


def test_text_file_named_png_is_a_user_error(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image\n")
    with pytest.raises(FatsrError, match="notes.png"):
        read_image(path)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(FatsrError, match="no such file"):
        read_image(tmp_path / "absent.png")


def test_write_refuses_existing_file_unless_overwrite(tmp_path):
    path = tmp_path / "out.png"
    first, second = random_image(np.uint8, 3, seed=4), random_image(np.uint8, 3, seed=5)
    write_image(path, first)
    with pytest.raises(FatsrError, match="exists; pass overwrite=True"):  # the command line says --overwrite
        write_image(path, second)
    np.testing.assert_array_equal(read_image(path), first)
    write_image(path, second, overwrite=True)
    np.testing.assert_array_equal(read_image(path), second)
    assert leftovers(tmp_path) == []


def test_write_unknown_suffix_is_a_user_error(tmp_path):
    with pytest.raises(FatsrError, match="suffix"):
        write_image(tmp_path / "out.xyz", random_image(np.uint8, 3))
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_failure_leaves_target_untouched(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("original")
    with pytest.raises(RuntimeError):
        with atomic_write(path, overwrite=True) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert path.read_text() == "original"
    assert leftovers(tmp_path) == []


def test_atomic_write_into_unwritable_place_is_a_user_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(FatsrError, match="cannot write"):
        with atomic_write(blocker / "sub" / "out.png"):
            pass


def test_written_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_image(tmp_path / "out.png", random_image(np.uint8, 3))
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "out.png").stat().st_mode) == 0o644

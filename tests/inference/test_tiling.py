"""Tiled inference: the grid, the blend weights, streaming, and seams on a real image."""

from __future__ import annotations

import itertools
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F

import fatsr
from fatsr.errors import FatsrError
from fatsr.inference.tiling import (
    Tiling,
    axis_weights,
    tile_borders,
    tile_starts,
    upscale_blocks,
    upscale_image,
    upscale_tiled,
)
from fatsr.models.contract import ModelInfo

NEON = Path(__file__).resolve().parents[1] / "fixtures" / "rasters"  # top-left crops of the real files
SCALE = 2


def osbs(top: int, left: int, size: int = 96) -> np.ndarray:
    """A (3, size, size) float32 [0, 1] window of the real NEON orthophoto."""
    with rasterio.open(NEON / "OSBS_029.tif") as ds:
        return ds.read(window=((top, top + size), (left, left + size))).astype(np.float32) / 255


class Nearest:
    scale = SCALE
    info = ModelInfo(name="stand-in", scale=SCALE, in_channels=0, out_channels=0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=SCALE, mode="nearest")


class TileContext:
    """A stand-in whose output depends on the whole tile (like Fourier attention): bicubic
    plus a shift by the tile's mean, so hard-pasted tiles show steps."""

    scale = SCALE
    info = ModelInfo(name="stand-in", scale=SCALE, in_channels=0, out_channels=0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=SCALE, mode="bicubic", align_corners=False)
        return up + 0.5 * (x.mean(dim=(2, 3), keepdim=True) - 0.5)


def to_8bit(y: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(y, 0, 1) * 255)


# --- grid and weights -------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 50, 96, 97, 170, 400, 1000])
@pytest.mark.parametrize(("tile", "overlap"), [(96, 24), (36, 12), (24, 0), (48, 24)])
def test_tile_starts_cover_with_enough_overlap(length, tile, overlap):
    size = min(tile, length)
    starts = tile_starts(length, size, overlap)
    assert starts[0] == 0 and starts[-1] + size == length
    if len(starts) > 1:
        overlaps = [a + size - b for a, b in itertools.pairwise(starts)]
        assert min(overlaps) >= overlap
        # one tile fewer could not keep the overlap
        assert (len(starts) - 2) * (size - overlap) + size < length


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(170, 96, 24), (400, 96, 24), (97, 96, 48), (130, 36, 12), (50, 24, 0)]
)
@pytest.mark.parametrize("scale", [1, 2, 4])
def test_axis_weights_sum_to_one_without_ramps_at_the_borders(length, tile, overlap, scale):
    starts = tile_starts(length, tile, overlap)
    weights = axis_weights(starts, tile, overlap, scale)
    total = np.zeros(length * scale)
    for start, w in zip(starts, weights):
        assert w.shape == (tile * scale,) and (w >= 0).all() and (w <= 1 + 1e-6).all()
        total[start * scale : (start + tile) * scale] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert weights[0][0] == 1 and weights[-1][-1] == 1
    if overlap:  # smooth: no jump bigger than a raised cosine of width `overlap` allows
        steps = max(np.abs(np.diff(w)).max() for w in weights)
        assert steps <= np.pi / (2 * overlap * scale) + 1e-6


@pytest.mark.parametrize(("tile", "overlap"), [(0, 0), (96, 60), (96, -1)])
def test_bad_tiling_is_a_user_error(tile, overlap):
    with pytest.raises(FatsrError, match="tile|overlap"):
        Tiling(tile, overlap)


# --- tiled forward ----------------------------------------------------------------------


def test_local_model_tiled_equals_whole():
    image = osbs(10, 20, 96)[:, :90, :77]
    whole = Nearest()(torch.from_numpy(image)[None])[0].numpy()
    np.testing.assert_allclose(upscale_tiled(Nearest(), image, Tiling(24, 6, batch=3)), whole, atol=1e-6)


def test_streaming_reads_windows_and_blocks_tile_the_output():
    image = osbs(0, 0, 96)
    reads: list[tuple[int, int, int, int]] = []

    def read(top: int, bottom: int, left: int, right: int) -> np.ndarray:
        reads.append((top, bottom, left, right))
        return image[:, top:bottom, left:right]

    tiling = Tiling(24, 6, panel=36)
    covered = np.zeros((96 * SCALE, 96 * SCALE), int)
    out = np.zeros((3, 96 * SCALE, 96 * SCALE), np.float32)
    for block in upscale_blocks(Nearest(), read, 96, 96, tiling):
        rows, cols = block.data.shape[1:]
        assert rows <= 24 * SCALE and cols <= 36 * SCALE
        covered[block.top : block.top + rows, block.left : block.left + cols] += 1
        out[:, block.top : block.top + rows, block.left : block.left + cols] = block.data
    assert (covered == 1).all()  # the blocks tile the output exactly once
    assert all(b - t == 24 for t, b, _, _ in reads) and max(r - l for _, _, l, r in reads) < 96  # never a whole row
    np.testing.assert_allclose(out, image.repeat(SCALE, 1).repeat(SCALE, 2), atol=1e-6)


def test_panels_give_the_same_pixels_as_one_panel(model_file):
    model = fatsr.load_model(model_file)
    image = osbs(100, 50, 120)[:, :84]
    # batch 1: the same tiles then run in the same batches (batching alone moves the last bit)
    wide = upscale_tiled(model, image, Tiling(24, 6, batch=1, panel=240))
    narrow = upscale_tiled(model, image, Tiling(24, 6, batch=1, panel=36))
    np.testing.assert_array_equal(narrow, wide)


def test_resume_yields_exactly_the_rest(model_file):
    model = fatsr.load_model(model_file)
    image = osbs(30, 40, 100)
    tiling = Tiling(24, 6, panel=48)
    read = lambda t, b, l, r: image[:, t:b, l:r]  # noqa: E731
    full = [(k.panel, k.top, k.left, k.data.copy()) for k in upscale_blocks(model, read, 100, 100, tiling)]
    panel, row = 1, 70  # mid-panel, not on a block boundary
    rest = [
        (k.panel, k.top, k.left, k.data.copy())
        for k in upscale_blocks(model, read, 100, 100, tiling, resume=(panel, row))
    ]
    expected = []
    for p, top, left, data in full:
        if (p, top + data.shape[1]) > (panel, row):
            skip = max(0, row - top) if p == panel else 0
            expected.append((p, top + skip, left, data[:, skip:]))
    assert [k[:3] for k in rest] == [k[:3] for k in expected]
    for got, want in zip(rest, expected):
        np.testing.assert_array_equal(got[3], want[3])


class NaNUnderAutocast:
    """Bicubic, but NaN wherever it runs under CPU autocast."""

    scale = SCALE
    info = ModelInfo(name="stand-in", scale=SCALE, in_channels=0, out_channels=0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=SCALE, mode="bicubic", align_corners=False)
        return up * float("nan") if torch.is_autocast_enabled("cpu") else up


def test_nan_under_autocast_is_redone_in_float32():
    image = osbs(0, 0, 48)
    plain = upscale_tiled(NaNUnderAutocast(), image, Tiling(24, 6))
    with pytest.warns(UserWarning, match="redoing"):
        guarded = upscale_tiled(NaNUnderAutocast(), image, Tiling(24, 6), autocast=torch.bfloat16)
    assert np.isfinite(plain).all()
    np.testing.assert_array_equal(guarded, plain)


def test_batch_size_does_not_change_the_output(model_file):
    model = fatsr.load_model(model_file)
    image = osbs(200, 150, 60)
    one = upscale_tiled(model, image, Tiling(24, 6, batch=1))
    many = upscale_tiled(model, image, Tiling(24, 6, batch=5))
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_tiled_close_to_whole_image(model_file):
    model = fatsr.load_model(model_file)
    image = osbs(100, 100)
    whole = to_8bit(upscale_tiled(model, image, Tiling(96, 24)))  # one tile: a plain forward
    tiled = to_8bit(upscale_tiled(model, image, Tiling(36, 12)))
    psnr = 10 * np.log10(255**2 / np.mean((whole - tiled) ** 2))
    print(f"tiled (36/12) vs whole-image, tiny FAT x2, OSBS 96x96: PSNR {psnr:.2f} dB")
    assert psnr > 40


def gradients(y: np.ndarray, tiling: Tiling) -> tuple[np.ndarray, np.ndarray]:
    """Mean absolute gradient (over channels and the other axis) across tile borders, and elsewhere."""
    gx = np.abs(np.diff(y, axis=2)).mean(axis=(0, 1))
    gy = np.abs(np.diff(y, axis=1)).mean(axis=(0, 2))
    at_x = np.zeros(gx.size, bool)
    at_y = np.zeros(gy.size, bool)
    at_x[[p - 1 for p in tile_borders(y.shape[2] // SCALE, tiling, SCALE)]] = True
    at_y[[p - 1 for p in tile_borders(y.shape[1] // SCALE, tiling, SCALE)]] = True
    return np.concatenate([gx[at_x], gy[at_y]]), np.concatenate([gx[~at_x], gy[~at_y]])


@pytest.mark.parametrize(("top", "left"), [(0, 0), (100, 100), (250, 200)])
def test_no_measurable_seam_on_a_real_image(model_file, top, left):
    tiling = Tiling(36, 12)
    y = to_8bit(upscale_tiled(fatsr.load_model(model_file), osbs(top, left), tiling))
    across, elsewhere = gradients(y, tiling)
    assert abs(across.mean() / elsewhere.mean() - 1) < 0.05


def test_blending_hides_steps_that_hard_pasting_shows():
    image = osbs(100, 100)
    reference = np.abs(np.diff(to_8bit(TileContext()(torch.from_numpy(image)[None])[0].numpy()), axis=2))
    excess = {}
    for name, overlap in (("blended", 12), ("pasted", 0)):
        tiling = Tiling(36, overlap)
        y = to_8bit(upscale_tiled(TileContext(), image, tiling))
        cols = [p - 1 for p in tile_borders(96, tiling, SCALE)]
        excess[name] = np.abs(np.abs(np.diff(y, axis=2))[..., cols] - reference[..., cols]).mean()
    print(f"excess gradient at tile borders (8-bit levels): {excess}")
    assert excess["blended"] < 0.25 * excess["pasted"], excess


# --- worker threads ---------------------------------------------------------------------


def test_default_batch_holds_about_four_96_pixel_tiles():
    assert [Tiling(t, 6).batch for t in (24, 48, 96, 120, 192, 240)] == [8, 8, 4, 2, 1, 1]
    assert Tiling(96, 24, batch=3).batch == 3


def test_two_workers_give_the_bytes_of_one_thread(model_file):
    model = fatsr.load_model(model_file)
    image = osbs(20, 30, 100)
    one = upscale_tiled(model, image, Tiling(24, 6, batch=2))  # the tests' one torch thread: one worker
    torch.set_num_threads(2)  # by default one worker per torch thread
    threads = threading.active_count()
    two = upscale_tiled(model, image, Tiling(24, 6, batch=2))
    assert torch.get_num_threads() == 2 and threading.active_count() == threads  # workers gone, setting kept
    np.testing.assert_array_equal(two, one)
    np.testing.assert_array_equal(upscale_tiled(model, image, Tiling(24, 6, batch=2, workers=3)), one)


def test_workers_read_at_most_one_tile_row_ahead():
    image = osbs(0, 0, 100)
    reads, blocks = [], []
    ahead = []

    def read(top: int, bottom: int, left: int, right: int) -> np.ndarray:
        reads.append(top)
        ahead.append(len(reads) - len(blocks))
        return image[:, top:bottom, left:right]

    tiling = Tiling(24, 6, batch=1, workers=2)  # 6 tiles a row, 6 rows
    for block in upscale_blocks(NearestModule(), read, 100, 100, tiling):
        blocks.append(block.top)
    assert len(reads) == len(blocks) == 6 and max(ahead) <= 2


class NearestModule(torch.nn.Module):  # an nn.Module: worker threads copy it
    scale = SCALE
    info = ModelInfo(name="stand-in", scale=SCALE, in_channels=0, out_channels=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=SCALE, mode="nearest")


class NaNModule(torch.nn.Module):
    scale = SCALE
    info = ModelInfo(name="stand-in", scale=SCALE, in_channels=0, out_channels=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=SCALE) * float("nan")


class Uncopyable(NearestModule):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()


def test_a_model_that_cannot_be_copied_runs_on_one_thread():
    image = osbs(0, 0, 60)
    y = upscale_tiled(Uncopyable(), image, Tiling(24, 6, batch=1, workers=2))
    np.testing.assert_allclose(y, image.repeat(SCALE, 1).repeat(SCALE, 2), atol=1e-6)


def test_a_worker_failure_is_the_one_line_error():
    threads = threading.active_count()
    with pytest.raises(FatsrError, match="^the model gave NaN/Inf values for finite input"):
        upscale_tiled(NaNModule(), osbs(0, 0, 60), Tiling(24, 6, batch=1, workers=2))
    assert threading.active_count() == threads


# --- arrays and the public API ----------------------------------------------------------


def test_upscale_image_keeps_dtype_and_rounds():
    rgb = (osbs(0, 0, 40).transpose(1, 2, 0) * 255).round().astype(np.uint8)
    out = upscale_image(Nearest(), rgb, Tiling(24, 6))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb.repeat(2, axis=0).repeat(2, axis=1))
    deep = rgb.astype(np.uint16) * 257
    np.testing.assert_array_equal(upscale_image(Nearest(), deep, Tiling(24, 6)), deep.repeat(2, 0).repeat(2, 1))
    floats = upscale_image(Nearest(), rgb / 255.0, Tiling(24, 6))
    assert floats.dtype == np.float32 and np.allclose(floats, rgb.repeat(2, 0).repeat(2, 1) / 255, atol=1e-6)


@pytest.mark.parametrize(
    ("array", "needle"),
    [
        (np.zeros((0, 5, 3), np.uint8), "nothing to upscale"),
        (np.zeros((4, 4, 3), np.complex64), "complex64"),
        (np.zeros((4, 4), np.uint8), "HWC"),
    ],
)
def test_bad_arrays_are_user_errors(array, needle):
    with pytest.raises(FatsrError, match=needle):
        upscale_image(Nearest(), array)


def test_public_upscale_array_and_path(model_file, tmp_path):
    from PIL import Image

    rgb = (osbs(50, 50, 40).transpose(1, 2, 0) * 255).round().astype(np.uint8)
    out = fatsr.upscale(rgb, model_file, tile=24, overlap=6)
    assert out.shape == (80, 80, 3) and out.dtype == np.uint8
    model = fatsr.load_model(model_file)
    np.testing.assert_array_equal(out, upscale_image(model, rgb, Tiling(24, 6)))
    Image.fromarray(rgb).save(tmp_path / "in.png")
    np.testing.assert_array_equal(fatsr.upscale(tmp_path / "in.png", model, tile=24, overlap=6), out)
    written = fatsr.upscale(tmp_path / "in.png", model, tile=24, overlap=6, output=tmp_path / "out.png")
    assert written == tmp_path / "out.png"
    np.testing.assert_array_equal(np.asarray(Image.open(written)), out)
    with pytest.raises(FatsrError, match="replace this input"):
        fatsr.upscale(tmp_path / "in.png", model, output=tmp_path / "in.png", overwrite=True)
    bf16 = fatsr.upscale(rgb, model, tile=24, overlap=6, precision="bfloat16").astype(int)
    assert 0 < np.abs(bf16 - out).max() <= 16 and np.abs(bf16 - out).mean() < 2
    with pytest.raises(FatsrError, match="float32, bfloat16 or float16"):
        fatsr.upscale(rgb, model, precision="half")


def test_progress_bar_counts_every_tile_run(monkeypatch):
    import fatsr.progress

    bars = []

    class Recording:
        def __init__(self, total, desc, disable, **_):
            self.total, self.desc, self.disable, self.n = total, desc, disable, 0
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, k):
            self.n += k

        def close(self):
            pass

    calls = []

    def counting(x):
        calls.append(x.shape[0])
        return Nearest()(x)

    counting.scale = SCALE
    counting.info = Nearest.info
    monkeypatch.setattr(fatsr.progress, "tqdm", Recording)
    image = osbs(0, 0, 100)
    read = lambda t, b, l, r: image[:, t:b, l:r]  # noqa: E731
    tiling = Tiling(24, 6, batch=3, panel=48)
    for resume in ((0, 0), (1, 70)):
        calls.clear()
        list(upscale_blocks(counting, read, 100, 100, tiling, resume=resume, progress="scene"))
        bar = bars[-1]
        assert bar.desc == "scene" and bar.disable is not sys.stderr.isatty()  # a bar on a terminal only
        assert bar.total == bar.n == sum(calls) > 0
    list(upscale_blocks(counting, read, 100, 100, tiling))
    assert bars[-1].disable is True  # no label, no bar

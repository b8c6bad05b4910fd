"""``fatsr degrade``, ``fatsr denoise`` and ``fatsr prepare`` end to end on tiny images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fatsr.cli import main
from fatsr.io import read_image, write_image


def _folder(root: Path, n: int = 3, h: int = 24, w: int = 16, channels: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(root / f"img{i}.png", rng.integers(0, 256, (h, w, channels)).astype(np.uint8))
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def _one_line_error(capsys: pytest.CaptureFixture, text: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and text in err[-1]


def test_degrade_is_repeatable_and_independent_of_workers(tmp_path: Path) -> None:
    src = _folder(tmp_path / "hr")
    args = ["degrade", str(src), "--scale", "4", "--preset", "fat", "--seed", "5"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    assert main([*args, "-o", str(tmp_path / "b"), "--workers", "2"]) == 0
    a = _files(tmp_path / "a")
    assert list(a) == ["img0.png", "img1.png", "img2.png"]
    assert a == _files(tmp_path / "b")
    assert read_image(tmp_path / "a" / "img0.png").shape == (6, 4, 3)
    assert main(["degrade", str(src), "-o", str(tmp_path / "c"), "--seed", "6"]) == 0
    assert _files(tmp_path / "c") != a
    assert main([*args, "-o", str(tmp_path / "a")]) == 2  # exists, no --overwrite
    assert main([*args, "-o", str(tmp_path / "a"), "--overwrite"]) == 0


def test_degrade_bad_input_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["degrade", str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "no images found")
    src = _folder(tmp_path / "hr")
    assert main(["degrade", str(src), "-o", str(tmp_path / "out"), "--scale", "5"]) == 2
    _one_line_error(capsys, "not divisible by scale 5")
    (src / "zz_broken.png").write_bytes(b"\x89PNG garbage")
    assert main(["degrade", str(src), "-o", str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "zz_broken.png: not a readable image")
    assert main(["degrade", str(src), "-o", str(tmp_path / "out"), "--preset", "nope"]) == 2
    _one_line_error(capsys, "unknown preset 'nope'")
    assert not (tmp_path / "out").exists()


def test_denoise_prints_noise_levels(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(0)
    noisy = np.clip(120 + rng.normal(0, 8, (32, 32, 3)), 0, 255).astype(np.uint8)
    write_image(tmp_path / "in" / "n.png", noisy)
    assert main(["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--strength", "10"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    before, after = (float(v) for v in line.removeprefix("n.png: noise sigma ").split(" -> "))
    assert before == pytest.approx(8, rel=0.1) and after < before / 2
    assert read_image(tmp_path / "out" / "n.png").shape == noisy.shape
    assert main(["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 2


def test_prepare_split_tiles_rebuild_the_image(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    image = np.random.default_rng(1).integers(0, 256, (50, 37, 3)).astype(np.uint8)
    write_image(tmp_path / "in" / "scene.png", image)
    write_image(tmp_path / "in" / "tiny.png", image[:8, :8])
    assert (
        main(
            [
                "prepare",
                "split",
                str(tmp_path / "in"),
                "-o",
                str(tmp_path / "t"),
                "--size",
                "20",
                "--step",
                "15",
                "--min-size",
                "10",
            ]
        )
        == 0
    )
    assert "skipped 1 image(s) smaller than 10 pixels: tiny.png (8x8)" in capsys.readouterr().out
    rebuilt = np.zeros_like(image)
    seen = np.zeros(image.shape[:2], bool)
    for tile_path in (tmp_path / "t").iterdir():
        _, y, x = tile_path.stem.rsplit("_", 2)
        top, left = int(y[1:]), int(x[1:])
        tile = read_image(tile_path)
        assert tile.shape == (20, 20, 3)
        rebuilt[top : top + 20, left : left + 20] = tile
        seen[top : top + 20, left : left + 20] = True
    assert seen.all()
    np.testing.assert_array_equal(rebuilt, image)


def test_prepare_pairs_then_check(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _folder(tmp_path / "hr", n=2, h=26, w=19)
    out = tmp_path / "ds" / "train"
    assert main(["prepare", "pairs", str(src), "-o", str(out), "--scale", "4"]) == 0
    assert read_image(out / "HR" / "img0.png").shape == (24, 16, 3)
    assert read_image(out / "LR" / "img0.png").shape == (6, 4, 3)
    np.testing.assert_array_equal(read_image(out / "HR" / "img1.png"), read_image(src / "img1.png")[:24, :16])
    _folder(tmp_path / "ds" / "test", n=1, h=8, w=8)
    capsys.readouterr()
    assert main(["prepare", "check", str(tmp_path / "ds"), "--scale", "4"]) == 0
    out_text = capsys.readouterr().out
    assert "layout: FAT release" in out_text and "no problems found" in out_text
    (out / "LR" / "img1.png").unlink()
    assert main(["prepare", "check", str(tmp_path / "ds")]) == 2
    _one_line_error(capsys, "1 problem(s) in")


def test_prepare_pairs_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _folder(tmp_path / "hr", n=1, h=3, w=3)
    assert main(["prepare", "pairs", str(src), "-o", str(tmp_path / "o"), "--scale", "4"]) == 2
    _one_line_error(capsys, "smaller than the scale 4")
    assert not (tmp_path / "o").exists()

"""Nothing let in: a link (or another user's file, a hard link, a FIFO) planted at any name
fatsr writes through never makes it write anywhere else. Each command either refuses with one
line (exit 2) or runs correctly; the planted link's target is never touched and the final output
is never a link."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from checks import assert_one_line_error
from test_nothing_lost import TILING, Nearest, float_scene, geotiff, images, run, train_flags  # noqa: F401

PRECIOUS = b"a file of the user's that an attacker wants destroyed\n"


def plant_link(link: Path, tmp_path: Path) -> Path:
    """A symbolic link at ``link`` to a precious file elsewhere; returns that file."""
    victim = tmp_path / "elsewhere" / "precious.txt"
    victim.parent.mkdir(exist_ok=True)
    victim.write_bytes(PRECIOUS)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(victim)
    return victim


def png(path: Path, size: int = 40, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def assert_untouched(victim: Path, output: Path) -> None:
    assert victim.read_bytes() == PRECIOUS
    assert not output.is_symlink()


def assert_refused_or_correct(code: int, err: str, output: Path, planted: Path) -> None:
    """A refusal names the planted file on one line and writes nothing; a run writes a regular file."""
    if code == 0:
        assert output.is_file() and not output.is_symlink()
    else:
        assert_one_line_error(code, err, planted.name)
        assert not output.exists()


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr("fatsr.inference.pipeline.load_model", lambda *a, **k: Nearest())


@pytest.mark.parametrize("temp", [".o.png.part.png"])
def test_picture_upscale_never_writes_through_a_planted_link(capsys, tmp_path, stand_in, temp):
    src = png(tmp_path / "in.png")
    victim = plant_link(tmp_path / "out" / temp, tmp_path)
    code, _, err = run(capsys, "upscale", src, "-o", tmp_path / "out" / "o.png", "--tile", 24, "--overlap", 6)
    assert_untouched(victim, tmp_path / "out" / "o.png")
    assert_one_line_error(code, err, temp, "symbolic link")
    assert not (tmp_path / "out" / "o.png").exists()


@pytest.mark.parametrize(
    "temp, refused",
    [(".o.tif.fatsr-partial.tif", True), (".o.tif.fatsr-partial.json", True), (".o.tif.fatsr-cog.tif", False)],
)
def test_geotiff_upscale_never_writes_through_a_planted_link(capsys, tmp_path, stand_in, temp, refused):
    src = geotiff(tmp_path / "f.tif", float_scene())
    out = tmp_path / "out" / "o.tif"
    victim = plant_link(out.parent / temp, tmp_path)
    code, _, err = run(capsys, "upscale", src, "-o", out, "--tile", 24, "--overlap", 6)
    assert_untouched(victim, out)
    if refused:  # the resumable partial file and its journal keep their names: a link there is refused
        assert_one_line_error(code, err, temp, "symbolic link")
        assert not out.exists()
    else:  # the COG copy's name is unpredictable now: the old name is simply not used
        assert code == 0, err
        assert out.is_file()


def test_an_output_that_is_a_link_is_replaced_not_its_target(capsys, tmp_path, stand_in):
    out = tmp_path / "out" / "o.png"
    victim = plant_link(out, tmp_path)
    code, _, err = run(
        capsys, "upscale", png(tmp_path / "in.png"), "-o", out, "--tile", 24, "--overlap", 6, "--overwrite"
    )
    assert code == 0, err
    assert_untouched(victim, out)
    assert np.asarray(Image.open(out)).shape == (80, 80, 3)


@pytest.mark.parametrize("kind", ["hard link", "fifo"])
def test_a_hard_link_or_fifo_at_the_temporary_name_is_refused(capsys, tmp_path, stand_in, kind):
    out = tmp_path / "out" / "o.png"
    out.parent.mkdir()
    planted = out.parent / ".o.png.part.png"
    victim = tmp_path / "out" / "precious.txt"  # same folder: a hard link needs one file system
    victim.write_bytes(PRECIOUS)
    if kind == "hard link":
        os.link(victim, planted)
    else:
        os.mkfifo(planted)
    code, _, err = run(capsys, "upscale", png(tmp_path / "in.png"), "-o", out, "--tile", 24, "--overlap", 6)
    assert_one_line_error(
        code, err, ".o.png.part.png", "a file with another name" if kind == "hard link" else "not a regular file"
    )
    assert victim.read_bytes() == PRECIOUS and not out.exists()


def test_export_never_writes_through_a_planted_link(capsys, tmp_path, model_file):
    out = tmp_path / "m.onnx"
    victim = plant_link(tmp_path / ".m.onnx.part.onnx", tmp_path)
    code, _, err = run(capsys, "export", model_file, "-o", out, "--tile", 24)
    assert_untouched(victim, out)
    assert_one_line_error(code, err, ".m.onnx.part.onnx", "symbolic link")
    assert not out.exists()


def test_degrade_never_writes_through_a_planted_link(capsys, tmp_path):
    hr = tmp_path / "hr"
    png(hr / "a.png", 32, 1)
    victim = plant_link(tmp_path / "lr" / ".a.png.part.png", tmp_path)
    code, _, err = run(capsys, "degrade", hr, "-o", tmp_path / "lr", "--scale", 2, "--preset", "bicubic")
    assert_untouched(victim, tmp_path / "lr" / "a.png")
    assert_refused_or_correct(code, err, tmp_path / "lr" / "a.png", tmp_path / "lr" / ".a.png.part.png")


@pytest.mark.parametrize("name", ["last.pt", "metrics.jsonl", "model.safetensors"])
def test_train_never_writes_through_a_planted_link(capsys, tmp_path, images, name):  # noqa: F811
    run_dir = tmp_path / "run"
    suffix = Path(name).suffix
    planted = run_dir / f".{name}.part{suffix}"
    victim = plant_link(planted, tmp_path)
    code, _, err = run(capsys, *train_flags(images, run_dir, "--steps", 2))
    assert_untouched(victim, run_dir / name)
    assert_refused_or_correct(code, err, run_dir / name, planted)

"""Issue 30: the command line's manners: start-up without PyTorch, -q/-v, --version, --threads,
--co for GeoTIFF outputs, --quality for JPEG/WebP, exit code 2 (usage, bad input) vs 1 (the
machine failed)."""

from __future__ import annotations

import errno
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from rasterio.enums import Compression
from rasterio.transform import from_origin

import fatsr
from checks import assert_one_line_error
from fatsr.cli import COMMANDS, build_parser, main
from fatsr.inference.pipeline import Upscaler

SRC = str(Path(__file__).resolve().parents[2] / "src")
PROBE = """\
import runpy, sys
sys.argv = ["fatsr", *sys.argv[1:]]
try:
    runpy.run_module("fatsr", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print("torch imported:", "torch" in sys.modules, "exit", code, file=sys.stderr)
"""


def run(capsys, *argv: object) -> tuple[int, str, str]:
    try:
        code = main([*map(str, argv)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["models"], ["info", "fatsr-x4"]])
def test_listing_commands_start_without_torch(argv):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.stderr.splitlines()[-1] == "torch imported: False exit 0", done.stderr
    if argv == ["--version"]:
        assert done.stdout == f"fatsr {fatsr.__version__}\n"
    if argv == ["models"]:
        assert "fatsr-x4  (default)" in done.stdout and "0.31 M parameters" in done.stdout


def test_every_command_is_listed_with_its_own_help_and_common_options():
    parser = build_parser()
    listed = {a.dest: a.help for a in parser._subparsers._group_actions[0]._choices_actions}  # type: ignore[union-attr]
    assert listed == COMMANDS
    for name, sub in parser._subparsers._group_actions[0].choices.items():  # type: ignore[union-attr]
        assert {"-q", "--quiet", "-v", "--verbose"} <= set(sub._option_string_actions), name
        if name in ("upscale", "evaluate", "compare", "lam", "export", "train"):
            assert "--threads" in sub._option_string_actions, name
        assert "2 bad usage or bad input" in " ".join(sub.format_help().split()), name
    assert "1 a failure that is not the input's fault" in " ".join(parser.format_help().split())


def picture(tmp_path: Path, name: str = "in.png") -> Path:
    rgb = np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / name)
    return tmp_path / name


def test_quiet_prints_nothing_and_verbose_gives_tile_lines(tmp_path, capsys, model_file):
    src = picture(tmp_path)
    code, out, err = run(capsys, "upscale", src, "-o", tmp_path / "q.png", "--model", model_file, "--tile", 12, "-q")
    assert (code, out, err) == (0, "", "")
    code, out, err = run(capsys, "upscale", src, "-o", tmp_path / "n.png", "--model", model_file, "--tile", 12)
    assert code == 0 and out == f"{tmp_path / 'n.png'}\n"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "q.png")), np.asarray(Image.open(tmp_path / "n.png")))
    code, out, err = run(capsys, "-v", "upscale", src, "-o", tmp_path / "v.png", "--model", model_file, "--tile", 12)
    tiles = [line for line in err.splitlines() if line.startswith("in.png: ")]
    # 20x28 in tiles of 12 overlapping by 3 (steps of 9): rows at 0 and 8, columns at 0, 9 and 16;
    # a line per tile batch
    counts = [int(line.split()[1].split("/")[0]) for line in tiles]
    assert code == 0 and len(tiles) >= 2 and counts == sorted(counts), err
    assert tiles[-1].startswith("in.png: 6/6 tiles (100%)")


def test_threads_sets_the_torch_threads(tmp_path, capsys, model_file, monkeypatch):
    seen = []
    original = Upscaler.picture

    def recording(self, image, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, image, **kwargs)

    monkeypatch.setattr(Upscaler, "picture", recording)
    try:
        code, _, err = run(capsys, "upscale", picture(tmp_path), "--model", model_file, "--threads", 2)
    finally:
        torch.set_num_threads(1)
    assert code == 0 and seen == [2], err
    code, _, err = run(capsys, "upscale", picture(tmp_path), "--model", model_file, "--threads", 0)
    assert_one_line_error(code, err, "--threads", "at least 1")


def test_quality_is_the_jpeg_encoders(tmp_path, capsys, model_file):
    src = picture(tmp_path)
    assert run(capsys, "upscale", src, "-o", tmp_path / "ref.png", "--model", model_file)[0] == 0
    reference = np.asarray(Image.open(tmp_path / "ref.png"))
    for quality in (30, 95):
        out = tmp_path / f"q{quality}.jpg"
        code, _, err = run(capsys, "upscale", src, "-o", out, "--model", model_file, "--quality", quality)
        assert code == 0, err
        encoded = io.BytesIO()
        Image.fromarray(reference).save(encoded, format="JPEG", quality=quality)
        assert out.read_bytes() == encoded.getvalue()
    assert (tmp_path / "q30.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size
    code, _, err = run(capsys, "upscale", src, "-o", tmp_path / "x.jpg", "--quality", 101)
    assert_one_line_error(code, err, "--quality", "1 to 100")


def geotiff(path: Path) -> Path:
    data = np.random.default_rng(1).integers(0, 256, (3, 30, 36), dtype=np.uint8)
    profile = {"driver": "GTiff", "dtype": "uint8", "count": 3, "height": 30, "width": 36, "crs": "EPSG:32617",
               "transform": from_origin(500000, 4000000, 10, 10)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return path


@pytest.mark.parametrize("cog", [True, False])
def test_creation_options_reach_the_geotiff(tmp_path, capsys, model_file, cog):
    src = geotiff(tmp_path / "scene.tif")
    argv = ["upscale", src, "--model", model_file, "--tile", 24, "--overlap", 6, *([] if cog else ["--no-cog"])]
    assert run(capsys, *argv, "-o", tmp_path / "plain.tif")[0] == 0
    code, _, err = run(capsys, *argv, "-o", tmp_path / "lzw.tif", "--co", "COMPRESS=LZW", "--co", "predictor=1")
    assert code == 0, err
    with rasterio.open(tmp_path / "plain.tif") as plain, rasterio.open(tmp_path / "lzw.tif") as lzw:
        assert plain.compression == Compression.deflate and lzw.compression == Compression.lzw
        assert lzw.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR", "1") == "1"
        assert plain.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"
        assert np.array_equal(plain.read(), lzw.read()) and plain.transform == lzw.transform
    code, _, err = run(capsys, *argv, "-o", tmp_path / "bad.tif", "--co", "COMPRESS")
    assert_one_line_error(code, err, "--co", "KEY=VALUE")
    code, _, err = run(capsys, *argv, "-o", tmp_path / "bad.tif", "--co", "COMPRESS=NOPE")  # GDAL would ignore it
    assert_one_line_error(code, err, "--co COMPRESS=NOPE", "does not write that compression")
    assert not (tmp_path / "bad.tif").exists()


def test_exit_codes_usage_and_input_2_machine_1(tmp_path, capsys, model_file, monkeypatch):
    code, _, err = run(capsys, "upscale", "--no-such-flag")
    assert_one_line_error(code, err, "--no-such-flag")
    code, _, err = run(capsys, "upscale", tmp_path / "missing.png")
    assert_one_line_error(code, err, "missing.png")
    src = picture(tmp_path)

    def failing_disk(path, *args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("fatsr.inference.pipeline.write_image", failing_disk)
    code, _, err = run(capsys, "upscale", src, "-o", tmp_path / "o.png", "--model", model_file)
    assert_one_line_error(code, err, "o.png", "Input/output error", exit_code=1)
    monkeypatch.undo()

    def no_memory(self, image, **kwargs):
        raise MemoryError

    monkeypatch.setattr(Upscaler, "picture", no_memory)
    code, _, err = run(capsys, "upscale", src, "-o", tmp_path / "m.png", "--model", model_file)
    assert_one_line_error(code, err, "out of memory", exit_code=1)
    assert not (tmp_path / "m.png").exists() and not (tmp_path / "o.png").exists()


def test_quiet_keeps_error_lines_only(tmp_path, capsys, model_file):
    hr = tmp_path / "hr"
    hr.mkdir()
    for k in range(2):
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(hr / f"{k}.png")
    code, out, err = run(capsys, "evaluate", hr, "--model", "bicubic", "--scale", 2, "-o", tmp_path / "ev")
    assert code == 0 and "wrote" in err and out  # normally: the scores and what was written
    code, out, err = run(capsys, "-q", "evaluate", hr, "--model", "bicubic", "--scale", 2, "-o", tmp_path / "ev2")
    assert (code, out, err) == (0, "", "") and (tmp_path / "ev2").is_dir()
    # a batch with a damaged file: its error line and the summary pass, nothing else
    (hr / "2.png").write_bytes(b"not a png")
    code, out, err = run(capsys, "upscale", hr, "-o", tmp_path / "up", "--model", model_file, "-q")
    lines = err.splitlines()
    assert code == 2 and out == "" and len(lines) == 2 and all(line.startswith("error: ") for line in lines), err
    assert "2.png" in lines[0] and "(skipped)" in lines[0] and "1 of 3 inputs failed" in lines[1]

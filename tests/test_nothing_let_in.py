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


# --- hostile headers: a picture's claimed size, a model file's settings and weights ---------


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` RGB pixels (a few bytes of data)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
    return path


def sparse_tiff(path: Path, side: int) -> Path:
    """A plain (not georeferenced) tiled TIFF of side x side pixels, almost all of it empty."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    profile = {"driver": "GTiff", "width": side, "height": side, "count": 3, "dtype": "uint8", "tiled": True,
               "compress": "deflate", "SPARSE_OK": True}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(np.full((3, 256, 256), 7, np.uint8), window=((0, 256), (0, 256)))
    return path


def test_a_png_claiming_100000_squared_pixels_is_refused_before_allocating(capsys, tmp_path, stand_in):
    bomb = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    code, _, err = run(capsys, "upscale", bomb, "-o", tmp_path / "out.png")
    assert_one_line_error(code, err, "bomb.png", "10000 Mpx", "89 Mpx", "FATSR_MAX_PICTURE_PIXELS")
    code, _, err = run(capsys, "evaluate", bomb, "--sr", bomb, "--scale", 4)
    assert_one_line_error(code, err, "bomb.png", "10000 Mpx")
    assert not (tmp_path / "out.png").exists()


def test_a_plain_tiff_over_the_budget_is_streamed_by_upscale_and_refused_by_evaluate(capsys, tmp_path):
    from fatsr.inference.reading import is_raster

    bomb = sparse_tiff(tmp_path / "bomb.tif", 100_000)
    assert bomb.stat().st_size < 4 << 20
    assert is_raster(bomb)  # upscale reads it window by window, as a raster
    assert not is_raster(sparse_tiff(tmp_path / "small.tif", 300))  # a small one stays a picture
    code, _, err = run(capsys, "evaluate", bomb, "--sr", bomb, "--scale", 4)
    assert_one_line_error(code, err, "bomb.tif", "100000x100000 pixels", "cut")


def tiny_model(tmp_path: Path, config: dict | None = None, dtype=None, drop_config: bool = False) -> Path:
    """The tests' tiny FAT x2 saved as a model file, its metadata's config and its tensors changed."""
    import json

    import torch
    from safetensors.torch import save_file

    from fatsr.models.fat import FAT

    torch.manual_seed(0)
    network = FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=2)
    metadata = {"format": "fatsr-model", "architecture": "FAT", "name": "hostile",
                "config": json.dumps({**network.config.to_dict(), **(config or {})}), "scale": "2"}  # fmt: skip
    tensors = {
        k: v.contiguous() if dtype is None else v.to(dtype).contiguous() for k, v in network.state_dict().items()
    }
    path = tmp_path / "hostile.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize(
    "config, needles",
    [
        ({"dim": 10**9}, ["dim=1000000000", "2..1024"]),
        ({"num_blocks": 10**6, "window_size": 6}, ["num_blocks=1000000", "1..64"]),
        ({"num_heads": -2}, ["num_heads=-2", "1..64"]),
        ({"mlp_ratio": "lots"}, ["mlp_ratio='lots'"]),
        ({"scale": True}, ["scale=True"]),
        ({"window_size": [6, 0]}, ["window_size=[6, 0]"]),
        ({"depth": 3}, ["unknown fields depth"]),
        ({"dim": 18, "num_heads": 4}, ["dim 18 must be even and divisible by num_heads 4"]),
        ({"dim": 32}, ["has shape [32]", "configuration needs"]),
    ],
)
def test_hostile_model_settings_are_refused_before_anything_is_built(capsys, tmp_path, config, needles):
    model = tiny_model(tmp_path, config)
    code, _, err = run(capsys, "upscale", png(tmp_path / "in.png"), "-o", tmp_path / "o.png", "--model", model)
    assert_one_line_error(code, err, "hostile.safetensors", *needles)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("dtype, name", [("bool", "BOOL"), ("int8", "I8")])
def test_weights_that_are_not_floating_point_are_refused(capsys, tmp_path, dtype, name):
    import torch

    model = tiny_model(tmp_path, dtype=getattr(torch, dtype))
    code, _, err = run(capsys, "upscale", png(tmp_path / "in.png"), "-o", tmp_path / "o.png", "--model", model)
    assert_one_line_error(code, err, f"stored as {name}", "floating point")
    # the published checkpoint layout (.pth) goes through the same check
    from fatsr.models.fat import FAT

    state = {
        k: v.to(getattr(torch, dtype))
        for k, v in FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=2).state_dict().items()
    }
    torch.save({"params": state}, tmp_path / "official.pth")
    code, _, err = run(
        capsys, "upscale", png(tmp_path / "in.png"), "-o", tmp_path / "o.png", "--model", tmp_path / "official.pth"
    )
    assert_one_line_error(code, err, "official.pth", f"stored as torch.{dtype}")
    assert not (tmp_path / "o.png").exists()


def test_an_onnx_graph_that_lies_about_its_scale_is_refused(capsys, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["lr"], ["sr"])], "liar",
        [helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["n", 3, 24, 24])],
        [helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["n", 3, 24, 24])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in {
        "format": "fatsr-onnx",
        "name": "liar",
        "scale": "2",
        "channels": "3",
        "tile": "24",
        "seed": "0",
    }.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, tmp_path / "liar.onnx")
    code, _, err = run(
        capsys, "upscale", png(tmp_path / "in.png", 20), "-o", tmp_path / "o.png", "--model", tmp_path / "liar.onnx"
    )
    assert_one_line_error(code, err, "(1, 3, 24, 24)", "promises (1, 3, 48, 48)")
    assert not (tmp_path / "o.png").exists()
    model.metadata_props[2].value = "two"  # scale
    onnx.save(model, tmp_path / "liar.onnx")
    code, _, err = run(
        capsys,
        "upscale",
        png(tmp_path / "in.png", 20),
        "-o",
        tmp_path / "o.png",
        "--model",
        tmp_path / "liar.onnx",
        "--overwrite",
    )
    assert_one_line_error(code, err, "scale='two'", "1..16")


@pytest.mark.parametrize("value", ["[1,", "a: b: c", "{"])
def test_a_network_setting_that_is_not_yaml_is_one_line(capsys, tmp_path, images, value):  # noqa: F811
    code, _, err = run(capsys, *train_flags(images, tmp_path / "run", "--network", f"dim={value}"))
    assert_one_line_error(code, err, "--network", "not valid YAML")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("title", ["{{DATA}}", "{{SCRIPT}} <b>&", "{{TITLE}}{{STYLE}}"])
def test_a_title_holding_the_templates_placeholders_is_filled_escaped_once(title):
    import html
    import json

    from fatsr.evaluation.compare import render_page

    data = {"title": title, "items": [{"name": "</script><img src=x onerror=alert(1)>.png"}]}
    page = render_page(data)
    escaped = html.escape(title, quote=False)
    assert page.count(f'<h1 id="title">{escaped}</h1>') == 1
    assert page.count(f"<title>{escaped}</title>") == 1
    assert "</script><img" not in page  # the file name stays inside the JSON block
    block = page.split('id="fatsr-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(block) == data


def test_a_picture_budget_that_is_not_a_number_is_one_line(tmp_path):
    import subprocess
    import sys

    from test_nothing_lost import src_path

    png(tmp_path / "in.png")
    env = {**os.environ, "PYTHONPATH": src_path(), "FATSR_MAX_PICTURE_PIXELS": "90M"}
    done = subprocess.run(
        [sys.executable, "-m", "fatsr", "evaluate", str(tmp_path / "in.png"), "--sr", str(tmp_path / "in.png"), "--scale", "1"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert_one_line_error(done.returncode, done.stderr, "FATSR_MAX_PICTURE_PIXELS='90M'", "whole number")


def test_model_settings_are_checked_before_any_tensor_is_read(capsys, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tensors were read before the settings were checked")

    monkeypatch.setattr("fatsr.models.files.load_file", refuse)
    model = tiny_model(tmp_path, {"dim": 10**9})
    code, _, err = run(capsys, "upscale", png(tmp_path / "in.png"), "-o", tmp_path / "o.png", "--model", model)
    assert_one_line_error(code, err, "dim=1000000000")

"""``fatsr upscale`` and the ``inference.py`` shim: inputs, outputs, user errors, end to end.

User errors must give exactly one ``error: ...`` line on stderr, exit code 2, no traceback
and leave no output (or ``.part``) file behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fatsr.cli import main
from fatsr.cli.upscale import collect_inputs, plan_outputs
from fatsr.errors import FatsrError
from fatsr.inference.tiling import upscale_image
from fatsr.models.contract import ModelInfo

ROOT = Path(__file__).resolve().parents[2]
HARBOR = ROOT / "examples" / "harbor55.png"  # UC Merced val harbor55
SCALE = 2


# --- helpers --------------------------------------------------------------------------


def harbor(height: int, width: int, top: int = 100, left: int = 60) -> np.ndarray:
    """A crop of a real image (HWC uint8 RGB), decoded by Pillow."""
    with Image.open(HARBOR) as im:
        return np.asarray(im.convert("RGB"))[top : top + height, left : left + width].copy()


def save(path: Path, array: np.ndarray) -> Path:
    """Write HWC uint8/uint16 with Pillow (8-bit, 16-bit grey) or OpenCV (16-bit colour)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == np.uint16 and array.shape[2] > 1:
        assert cv2.imwrite(str(path), np.ascontiguousarray(array[:, :, [2, 1, 0, 3][: array.shape[2]]]))
    else:
        Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path)
    return path


def load(path: Path) -> np.ndarray:
    """Decode HWC with OpenCV (independent of fatsr.io), channels in RGB(A) order."""
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert array is not None, path
    if array.ndim == 2:
        return array[:, :, None]
    return array[:, :, [2, 1, 0, 3][: array.shape[2]]]


def upscale(capsys, *argv: object) -> tuple[int, str, str]:
    code = main(["upscale", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def all_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def expected_output(model_path: Path, image: np.ndarray, seed: int = 0) -> np.ndarray:
    """What the CLI must write, computed here from a direct call of the model."""
    import fatsr

    model = fatsr.load_model(model_path, seed=seed)
    peak = np.float32(np.iinfo(image.dtype).max)
    x = torch.from_numpy(image.astype(np.float32) / peak).permute(2, 0, 1)[None]
    with torch.inference_mode():
        y = model(x)[0].permute(1, 2, 0).numpy()
    return np.rint(np.clip(y, 0, 1) * peak).astype(image.dtype)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    from fatsr.models.fat import FAT
    from fatsr.models.files import save_model

    torch.manual_seed(0)
    net = FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, window_size=6, scale=SCALE)
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    save_model(path, net, name="test")
    return path


@pytest.fixture
def rgb_png(tmp_path) -> Path:
    return save(tmp_path / "in" / "rgb.png", harbor(12, 18))


# --- pure functions: input collection, output planning, conversion ----------------------


def test_collect_inputs_expands_folders_and_globs(tmp_path):
    for name in ("b.png", "a.PNG", "c.tif", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.png").write_bytes(b"")
    folder = collect_inputs([str(tmp_path)])
    assert [p.name for p in folder] == ["a.PNG", "b.png", "c.tif"]
    globbed = collect_inputs([str(tmp_path / "*.png"), str(tmp_path / "**" / "d.png")])
    assert [p.name for p in globbed] == ["b.png", "d.png"]
    # the same file named twice is upscaled once
    twice = collect_inputs([str(tmp_path / "b.png"), str(tmp_path / "*.png"), str(tmp_path)])
    assert [p.name for p in twice] == ["b.png", "a.PNG", "c.tif"]


def test_plan_outputs_default_folder_and_file(tmp_path):
    a, b = tmp_path / "x" / "a.jpg", tmp_path / "y" / "b.png"
    assert plan_outputs([a, b], None, 4) == [(a, tmp_path / "x" / "a_x4.png"), (b, tmp_path / "y" / "b_x4.png")]
    out = tmp_path / "out"
    assert plan_outputs([a, b], (out, True), 2) == [(a, out / "a.png"), (b, out / "b.png")]
    assert plan_outputs([a], (out / "z.tif", False), 2) == [(a, out / "z.tif")]


def test_plan_outputs_refuses_clashes(tmp_path):
    a = tmp_path / "a.png"
    with pytest.raises(FatsrError, match="would replace this input"):
        plan_outputs([a], (tmp_path, True), 2)
    with pytest.raises(FatsrError, match=r"a_x2.png would replace the input .*a_x2.png"):
        plan_outputs([a, tmp_path / "a_x2.png"], None, 2, overwrite=True)
    with pytest.raises(FatsrError, match="would both be written"):
        plan_outputs([tmp_path / "p" / "a.png", tmp_path / "q" / "a.jpg"], (tmp_path / "o", True), 2)
    with pytest.raises(FatsrError, match="give a folder"):
        plan_outputs([a, tmp_path / "b.png"], (tmp_path / "o.png", False), 2)
    (tmp_path / "a_x2.png").write_bytes(b"old")
    with pytest.raises(FatsrError, match=r"a_x2.png exists; pass --overwrite"):
        plan_outputs([a], None, 2)
    assert plan_outputs([a], None, 2, overwrite=True) == [(a, tmp_path / "a_x2.png")]


class nearest_plus:  # noqa: N801 - called like the function it stands in for
    """A stand-in model: nearest-neighbour x2 plus a constant, in [0, 1] units."""

    scale = 2
    info = ModelInfo(name="nearest plus", scale=2, in_channels=0, out_channels=0)

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") + self.offset


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_upscale_array_rounds_and_clamps(dtype, channels):
    peak = np.iinfo(dtype).max
    image = np.random.default_rng(0).integers(0, peak + 1, (5, 6, channels), dtype=dtype)
    nearest = image.repeat(2, axis=0).repeat(2, axis=1).astype(np.int64)
    cpu = torch.device("cpu")
    for offset, shift in ((0.0, 0), (0.4, 0), (0.6, 1), (-0.6, -1)):  # in units of one level
        out = upscale_image(nearest_plus(offset / peak), image, device=cpu)
        assert out.dtype == dtype and out.shape == (10, 12, channels)
        np.testing.assert_array_equal(out, np.clip(nearest + shift, 0, peak))
    assert (upscale_image(nearest_plus(2.0), image, device=cpu) == peak).all()
    assert (upscale_image(nearest_plus(-2.0), image, device=cpu) == 0).all()


# --- user errors that need no model ------------------------------------------------------


def test_missing_input_file(capsys, tmp_path):
    code, _, err = upscale(capsys, tmp_path / "absent.png", "-o", tmp_path / "out")
    assert_user_error(code, err, "absent.png", "no such file")
    assert all_files(tmp_path) == set()


def test_no_input(capsys):
    code, _, err = upscale(capsys)
    assert_user_error(code, err, "no input")


def test_empty_folder_and_unmatched_glob(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    code, _, err = upscale(capsys, tmp_path)
    assert_user_error(code, err, "no images")
    code, _, err = upscale(capsys, tmp_path / "*.png")
    assert_user_error(code, err, "*.png", "no image files match")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda_and_fp16_on_cpu(capsys, rgb_png):
    code, _, err = upscale(capsys, rgb_png, "--device", "cuda")
    assert_user_error(code, err, "CUDA is not available", "--device cpu")
    code, _, err = upscale(capsys, rgb_png, "--fp16", "--device", "cpu")
    assert_user_error(code, err, "--fp16", "--bf16", "drop --fp16")


def test_missing_default_model_says_to_pass_model(capsys, rgb_png, monkeypatch):
    import fatsr.models.loading

    monkeypatch.setattr(fatsr.models.zoo, "default_model_path", lambda: None)  # a build without weights
    code, _, err = upscale(capsys, rgb_png)
    assert_user_error(code, err, "--model PATH")
    assert not (rgb_png.parent / "rgb_x2.png").exists()


def test_help_documents_output_naming(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "<stem>_x<scale>.png" in text and "--overwrite" in text and "--seed" in text


def test_subprocess_exit_code_and_stderr(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "fatsr", "upscale", str(tmp_path / "absent.png")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {tmp_path / 'absent.png'}: no such file or folder"]
    assert result.stdout == ""


# --- user errors with a model ------------------------------------------------------------


def test_text_file_named_png(capsys, tmp_path, model_file):
    bad = tmp_path / "notes.png"
    bad.write_text("hello\n")
    code, _, err = upscale(capsys, bad, "--model", model_file)
    assert_user_error(code, err, "notes.png", "not a readable image")
    assert all_files(tmp_path) == {bad}


def test_truncated_png(capsys, tmp_path, model_file):
    whole = save(tmp_path / "whole.png", harbor(24, 24)).read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    code, _, err = upscale(capsys, cut, "-o", tmp_path / "out", "--model", model_file)
    assert_user_error(code, err, "cut.png")
    assert not any(p.name.startswith("cut") and p != cut for p in all_files(tmp_path))


def test_corrupt_checkpoint(capsys, tmp_path, rgb_png):
    for name in ("junk.safetensors", "junk.pth"):
        bad = tmp_path / name
        bad.write_bytes(os.urandom(300))
        code, _, err = upscale(capsys, rgb_png, "--model", bad)
        assert_user_error(code, err, name)
    assert not (rgb_png.parent / "rgb_x2.png").exists()


def test_checkpoint_of_other_architecture(capsys, tmp_path, rgb_png, model_file):
    from safetensors import safe_open
    from safetensors.torch import save_file

    garbage = {"body.0.weight": torch.randn(4, 3, 3, 3), "body.0.bias": torch.randn(4)}
    torch.save(garbage, tmp_path / "edsr.pth")
    save_file(garbage, str(tmp_path / "edsr.safetensors"))
    with safe_open(str(model_file), "pt") as f:  # FAT weights whose metadata describes a wider FAT
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = dict(f.metadata() or {})
    meta["config"] = json.dumps({**json.loads(meta["config"]), "dim": 24})
    save_file(tensors, str(tmp_path / "other.safetensors"), metadata=meta)
    for name in ("edsr.pth", "edsr.safetensors", "other.safetensors"):
        code, _, err = upscale(capsys, rgb_png, "--model", tmp_path / name)
        assert_user_error(code, err)
    assert all_files(rgb_png.parent) == {rgb_png}


def test_existing_output_needs_overwrite(capsys, rgb_png, model_file):
    target = rgb_png.parent / "rgb_x2.png"
    target.write_bytes(b"keep me")
    code, _, err = upscale(capsys, rgb_png, "--model", model_file)
    assert_user_error(code, err, str(target), "--overwrite")
    assert target.read_bytes() == b"keep me"
    assert all_files(rgb_png.parent) == {rgb_png, target}
    code, out, _ = upscale(capsys, rgb_png, "--model", model_file, "--overwrite")
    assert code == 0 and out.splitlines() == [str(target)]
    assert load(target).shape == (24, 36, 3)


def test_unwritable_output_folder(capsys, tmp_path, rgb_png, model_file):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, _, err = upscale(capsys, rgb_png, "-o", blocker / "out", "--model", model_file)
    assert_user_error(code, err, "cannot create output folder", "-o")
    assert all_files(tmp_path) == {blocker, rgb_png}


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_output_folder(capsys, tmp_path, rgb_png, model_file):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = upscale(capsys, rgb_png, "-o", locked, "--model", model_file)
    finally:
        locked.chmod(0o700)
    assert_user_error(code, err, "not writable")
    assert list(locked.iterdir()) == []


def test_output_equal_to_input(capsys, rgb_png, model_file):
    code, _, err = upscale(capsys, rgb_png, "-o", rgb_png, "--model", model_file, "--overwrite")
    assert_user_error(code, err, "would replace this input")
    code, _, err = upscale(capsys, rgb_png, "-o", rgb_png.parent, "--model", model_file, "--overwrite")
    assert_user_error(code, err, "would replace this input")
    assert load(rgb_png).shape == (12, 18, 3)


def test_format_that_cannot_hold_the_image(capsys, tmp_path, model_file):
    rgba = save(tmp_path / "rgba.png", np.dstack([harbor(12, 12), np.full((12, 12), 200, np.uint8)]))
    code, _, err = upscale(capsys, rgba, "-o", tmp_path / "out.jpg", "--model", model_file)
    assert_user_error(code, err, "out.jpg", ".png")
    assert all_files(tmp_path) == {rgba}


# --- end to end -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(12, 18), (7, 13), (1, 5)])
def test_rgb_output_is_the_rounded_model_output(capsys, tmp_path, model_file, size):
    image = harbor(*size)
    src = save(tmp_path / "img.png", image)
    code, out, err = upscale(capsys, src, "--model", model_file)
    assert code == 0 and err == ""
    dst = tmp_path / "img_x2.png"
    assert out.splitlines() == [str(dst)]
    result = load(dst)
    assert result.dtype == np.uint8 and result.shape == (SCALE * size[0], SCALE * size[1], 3)
    np.testing.assert_array_equal(result, expected_output(model_file, image))


def test_16bit_png_stays_16bit(capsys, tmp_path, model_file):
    rng = np.random.default_rng(0)
    image = (harbor(12, 16).astype(np.uint16) * 257 + rng.integers(0, 257, (12, 16, 3))).astype(np.uint16)
    src = save(tmp_path / "deep.png", image)
    code, _, _ = upscale(capsys, src, "-o", tmp_path / "deep_sr.png", "--model", model_file)
    assert code == 0
    result = load(tmp_path / "deep_sr.png")
    assert result.dtype == np.uint16 and result.shape == (24, 32, 3)
    assert len(np.unique(result)) > 256
    np.testing.assert_array_equal(result, expected_output(model_file, image))


def test_grey_png_stays_grey(capsys, tmp_path, model_file):
    grey = np.asarray(Image.fromarray(harbor(10, 14)).convert("L"))[:, :, None]
    src = save(tmp_path / "grey.png", grey)
    code, _, _ = upscale(capsys, src, "--model", model_file)
    assert code == 0
    with Image.open(tmp_path / "grey_x2.png") as im:
        assert im.mode == "L" and im.size == (28, 20)
    np.testing.assert_array_equal(load(tmp_path / "grey_x2.png"), expected_output(model_file, grey))


def test_rgba_png_keeps_an_upscaled_alpha(capsys, tmp_path, model_file):
    alpha = np.zeros((12, 16, 1), np.uint8)
    alpha[:, :8] = 255  # left half opaque, right half transparent
    image = np.concatenate([harbor(12, 16), alpha], axis=2)
    src = save(tmp_path / "rgba.png", image)
    code, _, _ = upscale(capsys, src, "--model", model_file)
    assert code == 0
    with Image.open(tmp_path / "rgba_x2.png") as im:
        assert im.mode == "RGBA" and im.size == (32, 24)
    result = load(tmp_path / "rgba_x2.png")
    np.testing.assert_array_equal(result, expected_output(model_file, image))
    assert (result[:, :12, 3] >= 250).all() and (result[:, 20:, 3] <= 5).all()


def test_folder_to_output_folder(capsys, tmp_path, model_file):
    sizes = {"a": (12, 12), "b": (7, 13), "c": (9, 20)}
    for i, (stem, size) in enumerate(sizes.items()):
        save(tmp_path / "in" / f"{stem}.png", harbor(*size, top=10 * i))
    (tmp_path / "in" / "readme.txt").write_text("not an image")
    code, out, _ = upscale(capsys, tmp_path / "in", "-o", tmp_path / "out", "--model", model_file)
    assert code == 0
    assert out.splitlines() == [str(tmp_path / "out" / f"{stem}.png") for stem in sizes]
    assert {p.name for p in all_files(tmp_path / "out")} == {"a.png", "b.png", "c.png"}
    for stem, (h, w) in sizes.items():
        assert load(tmp_path / "out" / f"{stem}.png").shape == (SCALE * h, SCALE * w, 3)


def test_quoted_glob_with_default_outputs(capsys, tmp_path, model_file):
    save(tmp_path / "one.png", harbor(8, 10))
    save(tmp_path / "two.png", harbor(10, 8))
    Image.fromarray(harbor(8, 8)).save(tmp_path / "three.jpg")
    code, _, _ = upscale(capsys, str(tmp_path / "*.png"), "--model", model_file)
    assert code == 0
    assert load(tmp_path / "one_x2.png").shape == (16, 20, 3)
    assert load(tmp_path / "two_x2.png").shape == (20, 16, 3)
    assert not (tmp_path / "three_x2.png").exists()


def test_same_seed_same_bytes(capsys, tmp_path, rgb_png, model_file):
    for name in ("first.png", "second.png"):
        code, _, _ = upscale(capsys, rgb_png, "-o", tmp_path / name, "--model", model_file, "--seed", 7)
        assert code == 0
    assert (tmp_path / "first.png").read_bytes() == (tmp_path / "second.png").read_bytes()
    np.testing.assert_array_equal(load(tmp_path / "first.png"), expected_output(model_file, harbor(12, 18), seed=7))


def test_output_file_format_from_suffix(capsys, tmp_path, rgb_png, model_file):
    code, _, _ = upscale(capsys, rgb_png, "-o", tmp_path / "sr.tif", "--model", model_file)
    assert code == 0
    with Image.open(tmp_path / "sr.tif") as im:
        assert im.format == "TIFF" and im.size == (36, 24)
    np.testing.assert_array_equal(load(tmp_path / "sr.tif"), expected_output(model_file, harbor(12, 18)))


def test_published_flags(capsys, tmp_path, rgb_png, model_file):
    save_dir = tmp_path / "result"
    code, _, _ = upscale(
        capsys, "--test_img", rgb_png.parent, "--model_path", model_file, "--save_dir", save_dir, "--no-cuda"
    )
    assert code == 0
    assert all_files(save_dir) == {save_dir / "rgb.png"}
    assert load(save_dir / "rgb.png").shape == (24, 36, 3)


def test_inference_shim(tmp_path, model_file):
    save(tmp_path / "test" / "a.png", harbor(12, 12))
    command = [
        sys.executable,
        str(ROOT / "inference.py"),
        "--test_img",
        "test",
        "--model_path",
        str(model_file),
        "--save_dir",
        "res",
        "--no-cuda",
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr
    assert load(tmp_path / "res" / "a.png").shape == (24, 24, 3)
    again = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=180)
    assert again.returncode == 2 and again.stderr.splitlines()[-1].endswith("pass --overwrite to replace it")


def test_inference_shim_defaults(tmp_path, model_file):
    """Published defaults: ./datasets/test/ -> ./result/version1/<stem>.png with ./checkpoints/best.pth."""
    from fatsr.models.fat import FAT

    torch.manual_seed(1)
    net = FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, window_size=6, scale=SCALE)
    (tmp_path / "checkpoints").mkdir()
    torch.save(net.state_dict(), tmp_path / "checkpoints" / "best.pth")
    save(tmp_path / "datasets" / "test" / "boats.png", harbor(12, 12))
    result = subprocess.run(
        [sys.executable, str(ROOT / "inference.py"), "--no-cuda"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert load(tmp_path / "result" / "version1" / "boats.png").shape == (24, 24, 3)


# --- precision, memory format, torchrun sharding ---------------------------------------------


def test_bf16_and_channels_last_stay_close_to_float32(capsys, tmp_path, model_file):
    image = harbor(30, 40)
    src = save(tmp_path / "in.png", image)
    expected = expected_output(model_file, image).astype(int)
    for flag in ("--bf16", "--channels-last"):
        out = tmp_path / f"out{flag}.png"
        code, _, err = upscale(capsys, src, "-o", out, "--model", model_file, flag)
        assert code == 0, err
        diff = np.abs(load(out).astype(int) - expected)
        if flag == "--channels-last":  # same arithmetic in another memory order
            assert diff.max() <= 1
        else:  # bfloat16 keeps 8 bits of mantissa: a few grey levels
            assert diff.mean() < 2 and diff.max() <= 16


def test_torchrun_ranks_share_the_files(capsys, tmp_path, model_file, monkeypatch):
    folder = tmp_path / "in"
    for k in range(5):
        save(folder / f"im{k}.png", harbor(12, 12, top=20 * k))
    written = {}
    for name, value in (("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500"), ("WORLD_SIZE", "2")):
        monkeypatch.setenv(name, value)
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        code, out, err = upscale(capsys, folder, "-o", tmp_path / "out", "--model", model_file)
        assert code == 0, err
        written[rank] = [Path(line).name for line in out.splitlines()]
    assert written == {0: ["im0.png", "im2.png", "im4.png"], 1: ["im1.png", "im3.png"]}


@pytest.mark.parametrize(
    "stray, why",
    [
        ({"RANK": "1", "WORLD_SIZE": "2"}, "LOCAL_RANK, MASTER_ADDR, MASTER_PORT not set"),
        ({"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, "do not fit"),
        (
            {"RANK": "x", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "1"},
            "not all integers",
        ),
    ],
)
def test_stray_torchrun_variables_warn_and_run_as_one_process(capsys, tmp_path, model_file, monkeypatch, stray, why):
    folder = tmp_path / "in"
    for k in range(3):
        save(folder / f"im{k}.png", harbor(12, 12, top=20 * k))
    for name, value in stray.items():
        monkeypatch.setenv(name, value)
    code, out, err = upscale(capsys, folder, "-o", tmp_path / "out", "--model", model_file)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["im0.png", "im1.png", "im2.png"]
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and why in warnings[0] and "single process" in warnings[0], err

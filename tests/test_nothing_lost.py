"""Issue 19: nothing lost, nothing silently wrong. Each test builds its own tiny files and
checks the exit code, the single ``error:`` line and that no corrupt or partial file is left."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from rasterio.transform import from_origin

from checks import assert_one_line_error
from fatsr.cli import main
from fatsr.inference.options import RasterOptions
from fatsr.inference.raster import upscale_raster
from fatsr.inference.tiling import Tiling
from fatsr.models.contract import ModelInfo

TILING = Tiling(24, 6)


def geotiff(path: Path, data: np.ndarray, nodata: float | None = None) -> Path:
    profile = {
        "driver": "GTiff", "dtype": str(data.dtype), "count": data.shape[0], "height": data.shape[1],
        "width": data.shape[2], "crs": "EPSG:32617", "transform": from_origin(500000, 4000000, 10, 10),
        "nodata": nodata,
    }  # fmt: skip
    if data.shape[0] == 3:  # red, green, blue declared: no notice beside the one error line
        profile["photometric"] = "RGB"
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return path


def float_scene(seed: int = 0, shape: tuple[int, int, int] = (3, 50, 60)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(100, 200, shape).astype(np.float32)


def run(capsys, *argv: object) -> tuple[int, str, str]:
    try:
        code = main([*map(str, argv)])
    except SystemExit as exc:  # argparse's refusals
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def nearest(a: np.ndarray, scale: int = 2) -> np.ndarray:
    return a.repeat(scale, axis=-2).repeat(scale, axis=-1)


class Nearest:
    """A stand-in model: nearest x2 (values kept exactly)."""

    scale = 2
    channels = 3
    info = ModelInfo(name="nearest", scale=2, in_channels=3, out_channels=3)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")


# --- 1. non-finite pixels are nodata, never spread -----------------------------------------


@pytest.mark.parametrize("nodata", [None, -9999.0])
def test_nan_and_inf_pixels_stay_where_they_are(capsys, tmp_path, model_file, nodata):
    data = float_scene()
    data[:, 20, 30] = np.nan
    data[1, 5:8, 5:8] = np.nan
    data[0, 40, 10] = np.inf
    data[2, 44, 50] = -np.inf
    if nodata is not None:
        data[:, 30:35, 40:45] = nodata
    src = geotiff(tmp_path / "f.tif", data, nodata)
    code, _, err = run(
        capsys, "upscale", src, "-o", tmp_path / "o.tif", "--model", model_file, "--tile", 24, "--overlap", 6
    )
    assert code == 0, err
    with rasterio.open(tmp_path / "o.tif") as ds:
        out = ds.read()
    invalid = ~np.isfinite(data) | (data == nodata)
    # exactly the invalid input pixels (4 output pixels each) hold what they held; all else is finite
    if nodata is None:  # they come back as they were
        np.testing.assert_array_equal(np.isfinite(out), ~nearest(~np.isfinite(data)))
        np.testing.assert_array_equal(out[nearest(invalid)], nearest(data)[nearest(invalid)])
    else:  # they come back as nodata
        np.testing.assert_array_equal(out == nodata, nearest(invalid))
    assert np.isfinite(out[~nearest(invalid)]).all()
    assert int((~np.isfinite(out)).sum()) == (4 * int((~np.isfinite(data)).sum()) if nodata is None else 0)


def test_nan_pixels_do_not_change_their_neighbours(tmp_path):
    """With a value-keeping model, every valid pixel comes out exactly as without the NaNs."""
    clean = float_scene(1)
    holes = clean.copy()
    holes[:, 10:13, 10:13] = np.nan
    holes[0, 30, 30] = np.inf
    ref, options = tmp_path / "ref.tif", RasterOptions(value_range=(0, 400))  # the same mapping for both
    upscale_raster(geotiff(tmp_path / "clean.tif", clean), ref, Nearest(), tiling=TILING, options=options)
    upscale_raster(
        geotiff(tmp_path / "holes.tif", holes), tmp_path / "o.tif", Nearest(), tiling=TILING, options=options
    )
    with rasterio.open(ref) as a, rasterio.open(tmp_path / "o.tif") as b:
        expected, got = a.read(), b.read()
    valid = nearest(np.isfinite(holes))
    np.testing.assert_array_equal(got[valid], expected[valid])


def test_a_model_giving_nan_fails_with_one_line_and_no_file(capsys, tmp_path, monkeypatch):
    class Broken(Nearest):
        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            return super().__call__(x) * torch.nan

    monkeypatch.setattr("fatsr.inference.pipeline.load_model", lambda *a, **k: Broken())
    src = geotiff(tmp_path / "f.tif", float_scene())
    code, _, err = run(capsys, "upscale", src, "-o", tmp_path / "o.tif", "--tile", 24, "--overlap", 6)
    assert_one_line_error(code, err, "NaN/Inf")
    assert files(tmp_path) == {"f.tif"}


# --- 2. a full disk: one line, exit 2, no final file, nothing partial left -----------------

# Runs fatsr's CLI with a fast stand-in model (nearest x2, optionally slowed down per batch).
RUNNER = """
import sys, time
import torch.nn.functional as F
import fatsr.inference.pipeline as pipeline

from fatsr.models.contract import ModelInfo
class Nearest:
    scale, channels = 2, 3
    info = ModelInfo(name="nearest", scale=2, in_channels=3, out_channels=3)
    def __call__(self, x):
        time.sleep(DELAY)
        return F.interpolate(x, scale_factor=2, mode="nearest")

DELAY = float(sys.argv[1])
pipeline.load_model = lambda *a, **k: Nearest()  # the upscale pipeline's loader
from fatsr.cli import main
code = main(sys.argv[2:])
sys.stdout.flush()
sys.exit(code)
"""
SMALL_DISK = """
set -e
mount -t tmpfs -o size=$SIZE tmpfs "$DISK"
if [ -n "$FILL" ]; then dd if=/dev/zero of="$DISK/.filler" bs=4k 2>/dev/null || true; fi
set +e
"$PY" "$RUNNER" 0 "$@" 2>"$LOG.err"
echo "code=$?" >"$LOG"
find "$DISK" -mindepth 1 -type f ! -name .filler -printf '%P\\n' >>"$LOG"
"$PY" -c "import rasterio, sys; rasterio.open(sys.argv[1]).read()" "$DISK/out.tif" 2>/dev/null && echo readable >>"$LOG"
exit 0
"""


def src_path() -> str:
    import fatsr

    return str(Path(fatsr.__file__).resolve().parents[1])


def can_mount_tmpfs() -> str | None:
    """Why a tmpfs cannot be mounted under ``unshare -m`` here (None if it can)."""
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return None if probe.returncode == 0 else f"cannot mount a tmpfs under unshare -m: {probe.stderr.decode().strip()}"


def on_small_disk(tmp_path: Path, size: str, *argv: object, fill: bool = False) -> tuple[int, str, list[str]]:
    """Run ``fatsr ARGV`` with its output folder on a ``size`` tmpfs of its own mount
    namespace (``fill``: filled up first); returns exit code, stderr and the files left on
    that disk (plus 'readable' when out.tif can be read whole)."""
    import os
    import subprocess
    import sys

    reason = can_mount_tmpfs()
    if reason:
        pytest.skip(reason)
    disk, log = tmp_path / "disk", tmp_path / "log"
    disk.mkdir()
    (tmp_path / "runner.py").write_text(RUNNER)
    env = {**os.environ, "PYTHONPATH": src_path(), "SIZE": size, "DISK": str(disk), "LOG": str(log),
           "PY": sys.executable, "RUNNER": str(tmp_path / "runner.py"), "FILL": "1" if fill else ""}  # fmt: skip
    argv = [str(a).replace("DISK", str(disk)) for a in argv]
    subprocess.run(["unshare", "-m", "sh", "-c", SMALL_DISK, "sh", *argv], env=env, check=True, timeout=600)
    lines = log.read_text().splitlines()
    return int(lines[0].split("=")[1]), (tmp_path / "log.err").read_text(), lines[1:]


@pytest.mark.parametrize("size", ["600k", "1200k"])  # full while writing blocks / at the end
def test_full_disk_during_a_geotiff_upscale(tmp_path, size):
    src = geotiff(tmp_path / "big.tif", float_scene(2, (3, 300, 300)))
    code, err, left = on_small_disk(tmp_path, size, "upscale", src, "-o", "DISK/out.tif", "--tile", 48, "--overlap", 12)
    assert_one_line_error(code, err, "out.tif", "no space left", exit_code=1)
    assert left == []


def test_full_disk_during_a_png_upscale(tmp_path):
    from fatsr.io import write_image

    image = np.random.default_rng(3).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    write_image(tmp_path / "in.png", image)
    code, err, left = on_small_disk(
        tmp_path, "100k", "upscale", tmp_path / "in.png", "-o", "DISK/out.png", "--tile", 48, "--overlap", 12
    )
    assert_one_line_error(code, err, "out.png", exit_code=1)
    assert left == []


@pytest.mark.parametrize("command", ["train", "degrade", "denoise", "lam", "evaluate", "export"])
def test_full_disk_in_every_command(tmp_path, images, model_file, command):
    """The disk is full from the start: one line, exit 1 (not the input's fault), nothing left on it."""
    pngs = images / "train"
    argv = {
        "train": train_flags(images, "DISK/run", "--steps", 1),
        "degrade": ["degrade", pngs, "-o", "DISK/lr", "--scale", 2],
        "denoise": ["denoise", pngs, "-o", "DISK/clean"],
        "lam": ["lam", pngs / "0.png", "--model", "bicubic", "--steps", 2, "-o", "DISK/lam"],
        "evaluate": ["evaluate", pngs, "--model", "bicubic", "-o", "DISK/eval"],
        "export": ["export", model_file, "-o", "DISK/m.onnx", "--tile", 24],
    }[command]
    code, err, left = on_small_disk(tmp_path, "64k", *argv, fill=True)
    if command == "lam":  # its progress line comes first
        assert err.splitlines()[0] == "LAM of bicubic: 2 steps..."
        err = "\n".join(err.splitlines()[1:])
    assert_one_line_error(code, err, str(tmp_path / "disk"), "No space left on device", exit_code=1)
    assert left == []  # no file at all (an empty folder at most)


# --- 3. two runs at one output: the second refuses at once ---------------------------------


def start_slow_run(tmp_path: Path, *argv: object):
    import os
    import subprocess
    import sys

    (tmp_path / "runner.py").write_text(RUNNER)
    env = {**os.environ, "PYTHONPATH": src_path()}
    return subprocess.Popen(
        [sys.executable, str(tmp_path / "runner.py"), "0.3", *map(str, argv)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(path: Path, process) -> None:
    import time

    for _ in range(600):
        if path.exists() or process.poll() is not None:
            return
        time.sleep(0.05)


@pytest.mark.parametrize("name, lock", [("o.tif", ".o.tif.fatsr-partial.tif"), ("o.png", ".o.png.part.png")])
def test_a_second_run_at_the_same_output_refuses_at_once(capsys, tmp_path, monkeypatch, name, lock):
    if name.endswith(".tif"):
        src = geotiff(tmp_path / "in.tif", float_scene(4, (3, 60, 60)))
    else:
        from fatsr.io import write_image

        src = tmp_path / "in.png"
        write_image(src, np.random.default_rng(4).integers(0, 256, (60, 60, 3), dtype=np.uint8))
    first = start_slow_run(tmp_path, "upscale", src, "-o", tmp_path / name, "--tile", 24, "--overlap", 6)
    wait_for(tmp_path / lock, first)
    monkeypatch.setattr("fatsr.inference.pipeline.load_model", lambda *a, **k: Nearest())
    code, _, err = run(capsys, "upscale", src, "-o", tmp_path / name, "--tile", 24, "--overlap", 6, "--overwrite")
    assert first.poll() is None, "the first run ended before the second started"
    assert_one_line_error(code, err, "another fatsr run", name)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert files(tmp_path) == {src.name, name, "runner.py"}  # nothing partial left
    expected = tmp_path / "ref" / name
    code, _, err = run(capsys, "upscale", src, "-o", expected, "--tile", 24, "--overlap", 6)
    assert code == 0, err
    if name.endswith(".tif"):
        with rasterio.open(tmp_path / name) as a, rasterio.open(expected) as b:
            np.testing.assert_array_equal(a.read(), b.read())
    else:
        assert (tmp_path / name).read_bytes() == expected.read_bytes()


# --- 4. train never replaces a run it does not continue ------------------------------------

TINY = {"dim": 16, "num_blocks": 1, "num_layers": 1, "num_heads": 2, "window_size": 4, "mlp_ratio": 2.0}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """train/ (4) and val/ (1) smooth random 48x48 RGB images, made here."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(5)
    for folder, count in (("train", 4), ("val", 1)):
        (root / folder).mkdir()
        for k in range(count):
            coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
            Image.fromarray(coarse).resize((48, 48), Image.BICUBIC).save(root / folder / f"{k}.png")
    return root


def train_flags(images: Path, save_dir: Path, *extra: object) -> list[str]:
    flags = ["train", "--data-dir", images / "train", "--val-dir", images / "val", "--save-dir", save_dir,
             "--scale", 2, "--preset", "fat", "--patch-size", 16, "--perceptual-weight", 0, "--batch-size", 2, "--lr", "2e-3",
             "--workers", 0, "--no-progress", "--val-every", 2, "--save-every", 1, *extra]  # fmt: skip
    for key, value in TINY.items():
        flags += ["--network", f"{key}={value}"]
    return [str(f) for f in flags]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def a_run(images, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    assert main(train_flags(images, run_dir, "--steps", 2)) == 0
    return run_dir


def test_train_does_not_replace_a_run_with_weights_or_another_network(capsys, tmp_path, images, a_run):
    from fatsr.models.fat import FAT

    before = snapshot(a_run)
    capsys.readouterr()
    code, _, err = run(capsys, *train_flags(images, a_run, "--steps", 3, "--resume", a_run / "model.safetensors"))
    assert_one_line_error(code, err, "already holds a run", "--overwrite")
    other = tmp_path / "other_arch.pth"
    torch.save(FAT(dim=24, num_blocks=1, num_layers=1, num_heads=2, scale=2).state_dict(), other)
    code, _, err = run(capsys, *train_flags(images, a_run, "--steps", 3, "--resume", other, "--overwrite"))
    assert_one_line_error(code, err, "another network")
    copy = tmp_path / "copy.pt"
    copy.write_bytes((a_run / "last.pt").read_bytes())  # a checkpoint, but not one of this folder
    code, _, err = run(capsys, *train_flags(images, a_run, "--steps", 3, "--resume", copy))
    assert_one_line_error(code, err, "already holds a run", "does not continue it")
    code, _, err = run(capsys, *train_flags(images, a_run, "--steps", 3, "--lr", "inf"))
    assert_one_line_error(code, err, "--lr", "finite")
    assert snapshot(a_run) == before  # not a byte changed


def test_train_continues_its_own_run_and_cleans_leftover_parts(capsys, tmp_path, images, a_run):
    import shutil

    import fatsr.training.checkpoint as checkpoint

    run_dir = tmp_path / "run"
    shutil.copytree(a_run, run_dir)
    (run_dir / ".last.pt.k3j_x9.part.pt").write_bytes(b"killed")  # a checkpoint write killed by kill -9
    (run_dir / ".last.pt.part.pt").write_bytes(b"killed")
    code, _, err = run(capsys, *train_flags(images, run_dir, "--steps", 3, "--resume", run_dir / "last.pt"))
    assert code == 0, err
    assert checkpoint.read(run_dir / "last.pt")["step"] == 3
    assert not [p.name for p in run_dir.iterdir() if ".part" in p.name]


# --- 5. tracebacks become one line ---------------------------------------------------------


def test_truncated_geotiff_input(capsys, tmp_path):
    whole = geotiff(tmp_path / "whole.tif", float_scene(6, (3, 300, 300)))
    src = tmp_path / "cut.tif"
    src.write_bytes(whole.read_bytes()[:40000])
    whole.unlink()
    from fatsr.models.fat import FAT
    from fatsr.models.files import save_model

    save_model(tmp_path / "m.safetensors", FAT(dim=16, num_blocks=1, num_layers=1, num_heads=2, scale=2), name="t")
    code, _, err = run(capsys, "upscale", src, "-o", tmp_path / "o.tif", "--model", tmp_path / "m.safetensors")
    assert_one_line_error(code, err, "cut.tif", "damaged or truncated")
    assert files(tmp_path) == {"cut.tif", "m.safetensors"}


def test_unlistable_input_folder(capsys, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refuse)
    code, _, err = run(capsys, "upscale", folder)
    assert_one_line_error(code, err, "cannot list this folder", "Permission denied")


def test_evaluate_bicubic_on_a_one_pixel_hr(capsys, tmp_path):
    from fatsr.io import write_image

    (tmp_path / "hr").mkdir()
    write_image(tmp_path / "hr" / "a.png", np.zeros((1, 1, 3), np.uint8))
    code, _, err = run(capsys, "evaluate", tmp_path / "hr", "--model", "bicubic", "-o", tmp_path / "out")
    assert_one_line_error(code, err, "1x1", "smaller than the scale")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", ["corrupt", "pickled"])
def test_evaluate_with_a_bad_lpips_weight_file(capsys, tmp_path, content):
    import pickle

    from fatsr.io import write_image

    (tmp_path / "hr").mkdir()
    write_image(tmp_path / "hr" / "a.png", np.random.default_rng(7).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    weights = tmp_path / "weights"
    weights.mkdir()
    good = {"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}
    torch.save(good, weights / "alex.pth")
    bad = weights / "alexnet-owt-7be5be79.pth"
    if content == "corrupt":
        bad.write_bytes(b"PK\x03\x04 not really a zip" * 10)
    else:
        bad.write_bytes(pickle.dumps(Path("/etc/passwd")))  # an object weights_only refuses to build
    code, _, err = run(capsys, "evaluate", tmp_path / "hr", "--model", "bicubic", "--lpips", "alex",
                       "--lpips-weights", weights, "-o", tmp_path / "out")  # fmt: skip
    assert_one_line_error(code, err, bad.name, "not a readable PyTorch weight file")
    assert not (tmp_path / "out").exists()


# --- 6. a damaged partial file restarts the scene --------------------------------------------


class StopAfter(Nearest):
    def __init__(self, calls: int) -> None:
        self.left = calls

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        return super().__call__(x)


@pytest.mark.parametrize("damage", ["truncate", "overwrite the middle"])
def test_a_damaged_partial_is_discarded_and_the_scene_restarts(capsys, tmp_path, damage):
    src = geotiff(tmp_path / "in.tif", float_scene(8, (3, 100, 120)))
    tiling = Tiling(24, 6, batch=2, panel=48)
    upscale_raster(src, tmp_path / "ref.tif", StopAfter(10**9), tiling=tiling)
    out = tmp_path / "out.tif"
    with pytest.raises(KeyboardInterrupt):
        upscale_raster(src, out, StopAfter(20), tiling=tiling, checkpoint_seconds=0)
    partial = tmp_path / ".out.tif.fatsr-partial.tif"
    data = bytearray(partial.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 3 : len(data) // 3 + 4000] = bytes(4000)
    partial.write_bytes(bytes(data))
    capsys.readouterr()
    for _ in range(2):  # it finishes at the first rerun, and an --overwrite rerun also works
        upscale_raster(src, out, StopAfter(10**9), tiling=tiling, checkpoint_seconds=0, overwrite=True)
    err = capsys.readouterr().err
    assert "discarded" in err or "resuming" in err, err
    assert files(tmp_path) == {"in.tif", "ref.tif", "out.tif"}
    with rasterio.open(out) as a, rasterio.open(tmp_path / "ref.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())


# --- 7. nonsense numbers are refused before any work ----------------------------------------


@pytest.fixture
def small_png(tmp_path) -> Path:
    from fatsr.io import write_image

    write_image(tmp_path / "s.png", np.random.default_rng(9).integers(0, 256, (24, 24, 3), dtype=np.uint8))
    return tmp_path / "s.png"


@pytest.mark.parametrize("argv, needle", [
    (["upscale", "GEO", "-o", "OUT/o.tif", "--range", "0", "inf"], "finite"),
    (["upscale", "GEO", "-o", "OUT/o.tif", "--range", "nan", "1"], "finite"),
    (["denoise", "PNG", "-o", "OUT", "--strength", "nan"], "--strength"),
    (["denoise", "PNG", "-o", "OUT", "--strength", "inf"], "--strength"),
    (["evaluate", "PNG", "--model", "bicubic", "--scale", "0", "-o", "OUT"], "--scale"),
    (["lam", "PNG", "--model", "bicubic", "--scale", "0", "-o", "OUT"], "--scale"),
    (["lam", "PNG", "--model", "bicubic", "--sigma", "nan", "-o", "OUT"], "--sigma"),
    (["upscale", "PNG", "--tile", "x"], "--tile"),
    (["train", "--lr"], "--lr"),
])  # fmt: skip
def test_nonsense_is_refused_with_one_line(capsys, tmp_path, small_png, model_file, argv, needle):
    geo = geotiff(tmp_path / "g.tif", float_scene(10, (3, 24, 24)))
    names = {"GEO": str(geo), "PNG": str(small_png), "OUT": str(tmp_path / "out")}
    argv = [names.get(a, a.replace("OUT", names["OUT"])) for a in argv]
    if argv[0] == "upscale":
        argv += ["--model", str(model_file)]
    before = files(tmp_path)
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, err, needle)
    assert out == "" and files(tmp_path) == before


# --- 8. smaller: EXIF, failing commands, in-place batches -----------------------------------


def test_exif_orientation_is_applied_on_read(tmp_path):
    from PIL import Image

    from fatsr.io import image_size, read_image

    stored = np.random.default_rng(11).integers(0, 256, (36, 48, 3), dtype=np.uint8)  # 48 wide, 36 high
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: 36 wide, 48 high
    Image.fromarray(stored).save(tmp_path / "p.jpg", exif=exif, quality=95)
    image = read_image(tmp_path / "p.jpg")
    assert image.shape == (48, 36, 3) and image_size(tmp_path / "p.jpg") == (48, 36)
    decoded = np.asarray(Image.open(tmp_path / "p.jpg").convert("RGB"))  # as stored, 36x48
    np.testing.assert_array_equal(image, np.rot90(decoded, k=-1))  # clockwise quarter turn


def test_a_failing_denoise_leaves_no_output(capsys, tmp_path):
    from fatsr.io import write_image

    write_image(tmp_path / "t.png", np.full((2, 2, 3), 128, np.uint8))
    code, _, err = run(capsys, "denoise", tmp_path / "t.png", "-o", tmp_path / "out")
    assert_one_line_error(code, err, "too small")
    assert not (tmp_path / "out" / "t.png").exists()


def test_skip_existing_resumes_an_in_place_batch(capsys, tmp_path, model_file):
    from fatsr.io import write_image

    rng = np.random.default_rng(12)
    for name in ("a", "b"):
        write_image(tmp_path / f"{name}.png", rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
    code, _, err = run(capsys, "upscale", tmp_path, "--model", model_file)
    assert code == 0, err
    write_image(tmp_path / "c.png", rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
    (tmp_path / ".c_x2.png.part.png").write_bytes(b"left by a killed run")
    a_before = (tmp_path / "a_x2.png").read_bytes()
    code, printed, err = run(capsys, "upscale", tmp_path, "--model", model_file, "--skip-existing")
    assert code == 0, err
    assert printed.split() == [str(tmp_path / "c_x2.png")]  # a_x2/b_x2 are outputs, not inputs
    assert files(tmp_path) == {"a.png", "b.png", "c.png", "a_x2.png", "b_x2.png", "c_x2.png"}
    assert (tmp_path / "a_x2.png").read_bytes() == a_before


def test_yaml_and_torch_refusals_are_one_line(capsys, tmp_path):
    (tmp_path / "bad.yaml").write_text("a: [1,\n b")
    code, _, err = run(capsys, "train", "--config", tmp_path / "bad.yaml", "--save-dir", tmp_path / "run")
    assert_one_line_error(code, err, "bad.yaml", "not valid YAML", "line 2")
    (tmp_path / "junk.pt").write_bytes(b"garbage, not a checkpoint")
    code, _, err = run(capsys, "train", "--resume", tmp_path / "junk.pt", "--save-dir", tmp_path / "run")
    assert_one_line_error(code, err, "junk.pt", "not a readable checkpoint", "damaged")
    assert files(tmp_path) == {"bad.yaml", "junk.pt"}

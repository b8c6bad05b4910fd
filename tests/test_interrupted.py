"""Killed at any point: ``kill -9`` and SIGTERM during ``train`` (checkpoint writes included),
``compare``, ``degrade`` and a batch ``upscale``. Afterwards every visible file is absent or
complete and valid, and running the same command again completes with the same bytes as a run
that was never interrupted. Also: two batch upscales over one folder at once write each output
exactly once, and a disk that fills up part-way leaves nothing partial."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from test_nothing_lost import can_mount_tmpfs, images, src_path, train_flags  # noqa: F401

# fatsr's CLI, with a line on stderr (and an optional pause) just before each finished temporary
# file is renamed onto its output: a kill then lands inside a write, the worst moment.
RUNNER = """
import os, sys, time
import fatsr.io as io
rename = io._rename
def announced(tmp, path, overwrite):
    print(f"RENAMING {path}", file=sys.stderr, flush=True)
    time.sleep(float(os.environ.get("PAUSE", "0")))
    rename(tmp, path, overwrite)
io._rename = announced
from fatsr.cli import main
sys.exit(main(sys.argv[1:]))
"""


def start(tmp_path: Path, argv: list[object], pause: float = 0.0) -> subprocess.Popen:
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    env = {**os.environ, "PYTHONPATH": src_path(), "PAUSE": str(pause), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(runner), *map(str, argv)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    out, err = process.communicate(timeout=600)
    process.output = out  # type: ignore[attr-defined]
    return process.returncode, err


def kill_at_rename(process: subprocess.Popen, nth: int, sig: int) -> bool:
    """Send ``sig`` while the ``nth`` rename is pending; False if the command ended first."""
    assert process.stderr is not None
    seen = 0
    for line in process.stderr:
        if line.startswith("RENAMING"):
            seen += 1
            if seen == nth:
                process.send_signal(sig)
                process.wait(timeout=120)
                return True
    process.wait(timeout=120)
    return False


def kill_after(process: subprocess.Popen, seconds: float, sig: int) -> None:
    time.sleep(seconds)
    process.send_signal(sig)
    process.wait(timeout=120)


def visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def assert_complete(path: Path) -> None:
    """The file reads back whole as what its name says it is."""
    suffix = path.suffix.lower()
    if suffix in (".png", ".jpg"):
        with Image.open(path) as im:
            im.load()
    elif suffix == ".safetensors":
        from safetensors.torch import load_file

        load_file(str(path))
    elif suffix == ".pt":
        torch.load(path, map_location="cpu", weights_only=False)
    elif suffix == ".html":
        assert path.read_text(encoding="utf-8").rstrip().endswith("</html>")
    elif suffix == ".jsonl":
        for line in path.read_text().splitlines():
            json.loads(line)
    elif suffix == ".json":
        json.loads(path.read_text())
    elif suffix == ".yaml":
        import yaml

        yaml.safe_load(path.read_text())
    elif suffix == ".tif":
        import rasterio

        with rasterio.open(path) as ds:
            ds.read()
    else:
        raise AssertionError(f"unexpected file {path}")


def outputs(folder: Path, names: tuple[str, ...] | None = None) -> dict[str, object]:
    """Each output's bytes; a model file's tensors and metadata (less its timings)."""
    found: dict[str, object] = {}
    for p in visible(folder):
        if names is not None and p.name not in names:
            continue
        if p.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(p), "pt") as f:
                meta = {k: v for k, v in (f.metadata() or {}).items() if "time" not in k and "hours" not in k}
                found[p.name] = (meta, {k: f.get_tensor(k).numpy().tobytes() for k in f.keys()})  # noqa: SIM118
        else:
            found[p.name] = p.read_bytes()
    return found


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    """Six textured 40x40 RGB pictures."""
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(11)
    for k in range(6):
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((40, 40), Image.BICUBIC).save(folder / f"p{k}.png")
    return folder


def commands(
    name: str,
    pictures: Path,
    images: Path,  # noqa: F811 - the fixture's value
    model_file: Path,
    out: Path,
) -> tuple[list[object], tuple[str, ...] | None]:
    """(argv writing into ``out``, the names whose bytes must equal the uninterrupted run's)."""
    if name == "upscale":
        return ["upscale", pictures, "-o", out, "--model", model_file, "--skip-existing"], None
    if name == "degrade":
        return ["degrade", pictures, "-o", out, "--scale", 2, "--preset", "fat", "--seed", 3, "--overwrite"], None
    if name == "compare":
        return ["compare", pictures, "--model", model_file, "-o", out / "page.html", "--overwrite"], None
    argv = train_flags(images, out / "run", "--steps", 4)  # the same run name: it is in the model's name
    return argv, ("model.safetensors",)


CASES = [(command, sig) for command in ("upscale", "degrade", "compare", "train") for sig in ("SIGKILL", "SIGTERM")]


@pytest.mark.parametrize("command, sig", CASES)
def test_killed_anywhere_leaves_only_complete_files_and_a_rerun_gives_the_same_bytes(
    tmp_path,
    pictures,
    images,  # noqa: F811 - the fixture
    model_file,
    command,
    sig,
):
    reference = tmp_path / "reference"
    argv, names = commands(command, pictures, images, model_file, reference)
    code, err = finish(start(tmp_path, argv))
    assert code == 0, err
    expected = outputs(reference, names)
    renames = err.count("RENAMING")
    rng = random.Random(f"{command}-{sig}")  # random points, the same ones on every run of the tests
    out = tmp_path / "out"
    argv, _ = commands(command, pictures, images, model_file, out)
    # first inside a write (between a finished temporary file and its rename), then at a random time
    nth = rng.randint(1, max(1, renames - 1))
    kill_at_rename(start(tmp_path, argv, pause=0.3), nth, getattr(signal, sig))
    for path in visible(out):
        assert_complete(path)
    process = start(tmp_path, argv)
    kill_after(process, rng.uniform(2.0, 6.0), getattr(signal, sig))
    for path in visible(out):
        assert_complete(path)
    if command == "train":  # a run folder is continued on request, never silently
        argv = [*argv, "--resume", "auto"]
    code, err = finish(start(tmp_path, argv))
    assert code == 0, err
    assert outputs(out, names) == expected
    if command != "train":  # a run folder keeps its checkpoint; elsewhere nothing hidden is left
        assert [p.name for p in out.rglob(".*")] == []


def test_two_batch_upscales_over_one_folder_write_each_output_once(tmp_path, pictures, model_file):
    argv = ["upscale", pictures, "-o", tmp_path / "out", "--model", model_file, "--skip-existing"]
    first, second = start(tmp_path, argv, pause=0.2), start(tmp_path, argv, pause=0.2)
    (code1, err1), (code2, err2) = finish(first), finish(second)
    assert (code1, code2) == (0, 0), err1 + err2
    written = [Path(line).name for line in (first.output + second.output).splitlines() if line.endswith(".png")]
    assert sorted(written) == [f"p{k}.png" for k in range(6)]  # each exactly once, by one of the two
    renames = [line.split()[-1] for line in (err1 + err2).splitlines() if line.startswith("RENAMING")]
    assert sorted(Path(r).name for r in renames) == sorted(written)
    reference = tmp_path / "reference"
    code, err = finish(start(tmp_path, ["upscale", pictures, "-o", reference, "--model", model_file]))
    assert code == 0, err
    assert outputs(tmp_path / "out") == outputs(reference)
    assert [p.name for p in (tmp_path / "out").glob(".*")] == []


SMALL_DISK = """
set -e
mount -t tmpfs -o size=$SIZE tmpfs "$DISK"
if [ "$FILLER" -gt 0 ]; then dd if=/dev/zero of="$DISK/filler" bs=1k count="$FILLER" 2>/dev/null; fi
set +e
"$PY" -m fatsr "$@" > "$LOG.out" 2> "$LOG.err"
echo "code=$?" > "$LOG"
find "$DISK" -type f -printf '%P\\n' >> "$LOG"
"""


@pytest.mark.parametrize(
    "command, size, filler", [("train", "300k", 0), ("compare", "200k", 0), ("degrade", "64k", 52)]
)
def test_a_disk_that_fills_up_part_way_leaves_one_line_and_nothing_partial(
    tmp_path,
    pictures,
    images,  # noqa: F811 - the fixture
    model_file,
    command,
    size,
    filler,  # noqa: F811
):
    reason = can_mount_tmpfs()
    if reason:
        pytest.skip(reason)
    disk, log = tmp_path / "disk", tmp_path / "log"
    disk.mkdir()
    argv, _ = commands(command, pictures, images, model_file, disk / "out")
    if command == "train":  # checkpoints of a larger network fill the disk after the first ones
        argv = [a.replace("dim=16", "dim=48").replace("num_heads=2", "num_heads=4") for a in map(str, argv)]
    env = {**os.environ, "PYTHONPATH": src_path(), "SIZE": size, "DISK": str(disk), "LOG": str(log), "PY": sys.executable,
           "FILLER": str(filler)}  # fmt: skip
    subprocess.run(["unshare", "-m", "sh", "-c", SMALL_DISK, "sh", *map(str, argv)], env=env, check=True, timeout=600)
    lines = log.read_text().splitlines()
    code, left, err = (
        int(lines[0].split("=")[1]),
        [n for n in lines[1:] if n != "filler"],
        Path(f"{log}.err").read_text(),
    )
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "no space left" in errors[0].lower(), err
    assert "Traceback" not in err
    assert not [name for name in left if name.rsplit("/", 1)[-1].startswith(".")], left  # no temporary file
    if command != "compare":  # one page: nothing, or all of it
        assert left, "the disk filled up before the first file: this test wants a disk that fills up part-way"

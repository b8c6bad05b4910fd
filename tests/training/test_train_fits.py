"""Issue 30: training that fits the machine: the preset and data workers follow the device,
the time per step is said, an interrupted run leaves a model `--model RUN_DIR` runs, and model
files name their data without a path."""

from __future__ import annotations

import os
import signal

import numpy as np
import torch
from PIL import Image

from fatsr.cli import main
from fatsr.data import TrainDataset
from fatsr.models.header import safetensors_header
from fatsr.training import train
from fatsr.training.config import default_workers
from fatsr.training.train import data_record


def test_without_preset_a_cpu_trains_the_compact_network_and_says_so(tmp_path, make_config, capsys):
    config = make_config(tmp_path / "run", preset=None, network={}, workers=None, steps=2, val_every=100, patch_size=24)
    result = train(config)
    out = capsys.readouterr().out
    assert "no --preset: training the compact FAT network" in out and "--preset fat" in out
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "preset: compact" in saved and f"workers: {default_workers()}" in saved
    cpus = len(os.sched_getaffinity(0))
    assert default_workers() == min(8, cpus // 2)
    header = safetensors_header(result.model_path)
    assert '"dim": 32' in header["__metadata__"]["config"]  # the compact preset's width


def test_time_per_step_and_expected_duration_are_said(tmp_path, make_config, capsys):
    train(make_config(tmp_path / "run", steps=7, val_every=100))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("time per step:")]
    assert len(lines) == 1, lines
    assert "(mean of 4 steps); 7 steps take about" in lines[0] and "from now" in lines[0]


def test_interrupted_run_folder_is_a_model(tmp_path, make_flags, monkeypatch, capsys):
    run = tmp_path / "run"
    original = TrainDataset.__getitem__
    calls = {"n": 0}

    def interrupting(self, index):  # Ctrl-C while loading step 3's batch (2 samples a step)
        calls["n"] += 1
        if calls["n"] == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, index)

    monkeypatch.setattr(TrainDataset, "__getitem__", interrupting)
    assert main(["train", *make_flags(run), "--steps", "3", "--val-every", "100"]) == 130
    monkeypatch.setattr(TrainDataset, "__getitem__", original)
    capsys.readouterr()
    assert sorted(p.name for p in run.glob("*.safetensors")) == ["last.safetensors"]
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 2

    lr = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    Image.fromarray(lr).save(tmp_path / "in.png")
    code = main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--model", str(run)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"model: {run / 'last.safetensors'} (the latest weights)" in err
    assert Image.open(tmp_path / "out.png").size == (40, 32)  # the tiny run is x2
    code = main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "pt.png"), "--model", str(run / "last.pt")])
    err = capsys.readouterr().err
    assert (
        code == 2
        and f"last.pt: a `fatsr train` checkpoint (to resume a run), not a model; give its run folder {run}" in err
    )

    # the same folder after the run finished: its final model is taken
    assert main(["train", "--save-dir", str(run), "--resume", "auto", "--no-progress"]) == 0
    capsys.readouterr()
    code = main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out2.png"), "--model", str(run), "-q"])
    assert code == 0 and capsys.readouterr().err == ""  # quiet: the choice is not said
    code = main(["info", str(run)])
    assert code == 0 and f"file           {run / 'model.safetensors'}" in capsys.readouterr().out


def test_model_file_records_data_by_name_count_and_hash_never_a_path(tmp_path, make_config, tiny_data):
    result = train(make_config(tmp_path / "run", steps=3, val_every=2))
    for name in ("model.safetensors", "best.safetensors", "last.safetensors"):
        raw = (tmp_path / "run" / name).read_bytes()
        header = raw[8 : 8 + int.from_bytes(raw[:8], "little")].decode()
        for absolute in {str(tmp_path), str(tiny_data), os.path.expanduser("~"), "/tmp/"}:
            assert absolute not in header, (name, absolute)
    training_data = safetensors_header(result.model_path)["__metadata__"]["training_data"]
    files = sorted(p for p in (tiny_data / "train").rglob("*") if p.is_file())
    assert training_data == "6 images in " + data_record([str(tiny_data / "train")], files)
    assert training_data.startswith("6 images in train (6 files, SHA-256 of their names and sizes ")
    # the hash follows the files: renaming one changes it
    other = tmp_path / "other"
    other.mkdir()
    for k, f in enumerate(files):
        (other / (f"renamed{f.suffix}" if k == 0 else f.name)).write_bytes(f.read_bytes())
    assert data_record([str(other)], sorted(other.iterdir())).split()[-1] != training_data.split()[-1][:-1]

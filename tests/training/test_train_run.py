"""A short real run end to end, and the NaN guard."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import fatsr
from fatsr.cli import main
from fatsr.data import TrainDataset
from fatsr.evaluation.metrics import psnr
from fatsr.models.files import read_metadata
from fatsr.training import TrainConfig, train
from fatsr.training.config import to_dict

REPO = Path(__file__).resolve().parents[2]


def test_short_run_writes_a_usable_run_folder(tmp_path, tiny_data, make_flags, capsys):
    run = tmp_path / "run"
    code = main(["train", *make_flags(run), "--steps", "24", "--val-every", "8", "--log-every", "4"])
    assert code == 0
    out = capsys.readouterr().out
    assert "bicubic on the validation set" in out and "done: 24 steps" in out

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["kind"] == "train"]
    val_records = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in train_records] == [4, 8, 12, 16, 20, 24]
    assert all(math.isfinite(r[k]) and r[k] > 0 for r in train_records for k in ("loss", "l1", "lev", "lr", "time"))
    assert all(r["loss"] == pytest.approx(r["l1"] + 0.1 * r["lev"], rel=1e-5) for r in train_records)
    assert "perceptual" not in train_records[0]
    assert [r["step"] for r in val_records] == [8, 16, 24]
    # training works: validation PSNR of the EMA weights climbs
    assert val_records[-1]["psnr"] > val_records[0]["psnr"] + 1.0
    assert [r["kind"] for r in records].count("bicubic") == 1

    with Image.open(run / "progress.png") as im:
        assert im.format == "PNG" and im.width > 100
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["steps"] == 24 and saved["network"]["dim"] == 16 and saved["batch_size"] == 2
    assert saved == to_dict(TrainConfig(**{**saved, "betas": tuple(saved["betas"])}))

    # model.safetensors is the best EMA model, loadable for upscaling, and scores what was logged
    model = fatsr.load_model(run / "model.safetensors")
    assert model.scale == 2
    best = max(r["psnr"] for r in val_records)
    val = sorted((tiny_data / "val").glob("*.png"))
    scores = []
    for path in val:
        hr = np.array(Image.open(path).convert("RGB"))
        lr = torch.nn.functional.interpolate(
            torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255, scale_factor=0.5, mode="bicubic",
            antialias=True, align_corners=False,
        ).clamp(0, 1).mul(255).round() / 255  # fmt: skip
        with torch.inference_mode():
            sr = model(lr)[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
        assert sr.shape == hr.shape
        scores.append(psnr(sr, hr, border=2))
    assert np.mean(scores) == pytest.approx(best, abs=1e-6)
    assert (
        main(["upscale", str(val[0]), "-o", str(tmp_path / "sr.png"), "--model", str(run / "model.safetensors")]) == 0
    )
    with Image.open(tmp_path / "sr.png") as im:
        assert im.size == (96, 96)


def test_non_finite_batches_are_skipped_and_counted(tmp_path, tiny_data, make_config, monkeypatch, capsys):
    original = TrainDataset.__getitem__
    calls = {"n": 0}

    def poisoned(self, index):  # the 5th sample (in step 3) is NaN
        calls["n"] += 1
        item = original(self, index)
        if calls["n"] == 5:
            item["lr"] = torch.full_like(item["lr"], float("nan"))
        return item

    monkeypatch.setattr(TrainDataset, "__getitem__", poisoned)
    config = make_config(tmp_path / "run", steps=5, val_dir=None)
    result = train(config)
    assert result.skipped_steps == 1
    assert "warning: step 3: non-finite loss or gradients, update skipped" in capsys.readouterr().out
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["skipped_steps"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert all(torch.isfinite(v).all() for v in state["ema"]["weights"].values())
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["skipped"] for r in records if r["kind"] == "train"] == [0, 0, 1, 1, 1]
    # make_config gives data_dir as a plain str: one folder, not a list of its characters
    assert read_metadata(tmp_path / "run" / "model.safetensors")["training_data"].startswith(
        "6 images in train (6 files, "
    )


def test_same_seed_same_bytes_whatever_the_string_hash_seed(tmp_path, make_flags):
    """Two processes with different PYTHONHASHSEED (set and dict orders of strings) and the same
    seed and thread count train the same weights to the bit and write the same model file."""
    runs = []
    for hash_seed in ("1", "2"):
        run = tmp_path / hash_seed / "run"  # same folder name: the model file's name field is the same
        command = [sys.executable, "-m", "fatsr", "train", *make_flags(run), "--steps", "2", "--val-every", "2",
                   "--save-every", "2", "--threads", "1"]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(run)
    first, second = (torch.load(run / "last.pt", weights_only=True) for run in runs)
    for part in ("model", "ema", "optimizer"):
        tensors = _tensors(first[part])
        assert tensors and tensors == _tensors(second[part]), part
    assert (runs[0] / "model.safetensors").read_bytes() == (runs[1] / "model.safetensors").read_bytes()


def _tensors(state: object, prefix: str = "") -> dict[str, bytes]:
    """Every tensor in a nested checkpoint entry, by its key path, as raw bytes."""
    if isinstance(state, torch.Tensor):
        return {prefix: state.numpy().tobytes()}
    items = state.items() if isinstance(state, dict) else enumerate(state) if isinstance(state, list) else ()
    return {k: v for key, value in items for k, v in _tensors(value, f"{prefix}/{key}").items()}


def test_published_script_runs_on_the_published_layout(tmp_path, tiny_data, make_flags):
    """``python train.py`` with the published flags, on datasets/train/{HR,LR} under the cwd."""
    hr_dir, lr_dir = tmp_path / "datasets" / "train" / "HR", tmp_path / "datasets" / "train" / "LR"
    lr_dir.mkdir(parents=True)
    shutil.copytree(tiny_data / "train", hr_dir)
    for path in hr_dir.iterdir():
        with Image.open(path) as im:
            im.resize((24, 24), Image.BICUBIC).save(lr_dir / path.name)
    flags = make_flags(tmp_path / "unused")
    tiny = flags[flags.index("--scale") :]  # scale, patch size, network, no perceptual loss (no VGG here)
    tiny[tiny.index("--batch-size") : tiny.index("--batch-size") + 2] = []
    command = [sys.executable, str(REPO / "train.py"), "--no-cuda", "--epochs", "2", "--batch_size", "2",
               "--lr", "1e-4", "--save_cycle", "1", *tiny]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "checkpoints" / "v1"
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "last.pt", "step_000003.pt", "step_000006.pt",
                                               "model.safetensors", "metrics.jsonl", "progress.png"}  # fmt: skip
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["data_dir"], saved["epochs"], saved["device"]) == (["./datasets/train"], 2, "cpu")
    assert saved["val_dir"] is None and saved["save_dir"] == "./checkpoints/v1"
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 6  # 2 epochs of 3 batches
    assert fatsr.load_model(run / "model.safetensors").scale == 2

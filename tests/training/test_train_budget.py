"""The CPU budget of a run, the residual-CNN yardstick preset and what exported model files
record. Data: synthetic textured images made here (no dataset needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import fatsr
from fatsr.cli import main
from fatsr.models.cnn import ResidualCNN
from fatsr.models.files import read_metadata
from fatsr.training import TrainConfig, train
from fatsr.training.checkpoint import read

TINY_FAT = {"dim": 16, "num_blocks": 1, "num_layers": 1, "num_heads": 2, "window_size": 4, "mlp_ratio": 2.0}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """train/ (6) and val/ (2) 48x48 RGB images: smooth colour fields plus stripes."""
    root = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48] / 48.0
    for split, count in (("train", 6), ("val", 2)):
        (root / split).mkdir()
        for i in range(count):
            f = rng.uniform(2, 9, size=3)
            img = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (f[c] * xx + (c + 1) * yy) + i) for c in range(3)], axis=-1)
            Image.fromarray((img * 255).round().astype(np.uint8)).save(root / split / f"img{i}.png")
    return root


def config(root: Path, save_dir: Path, **changes) -> TrainConfig:
    values = dict(
        data_dir=[str(root / "train")], val_dir=str(root / "val"), save_dir=str(save_dir), scale=2, patch_size=16,
        preset="fat",
        network=dict(TINY_FAT), perceptual_weight=0.0, batch_size=2, steps=40, lr=2e-3, val_every=1000,
        save_every=1000, log_every=1, workers=0, progress=False,
    )  # fmt: skip
    values.update(changes)
    return TrainConfig(**values)


def test_cpu_budget_ends_the_run_and_counts_over_resumes(tmp_path, synthetic):
    run = tmp_path / "run"
    result = train(config(synthetic, run, cpu_budget_min=0.002))  # 0.12 CPU seconds
    state = read(run / "last.pt")
    assert 1 <= result.steps < 40 and state["step"] == result.steps
    assert state["train_cpu_seconds"] >= 0.12
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    cpu = [r["cpu_time"] for r in records if r["kind"] == "train"]
    assert cpu == sorted(cpu) and cpu[-1] == pytest.approx(state["train_cpu_seconds"], abs=1e-3)
    assert (run / "model.safetensors").is_file()
    # the budget is the run's: resuming with the same budget adds no step; a larger one continues
    again = train(config(synthetic, run, cpu_budget_min=0.002, resume="auto"))
    assert again.steps == result.steps
    more = train(config(synthetic, run, cpu_budget_min=0, steps=result.steps + 3, resume="auto"))
    assert more.steps == result.steps + 3


def test_negative_budget_and_threads_are_refused(tmp_path, synthetic, capsys):
    for flag in ("--cpu-budget-min", "--threads"):
        code = main(["train", "--data-dir", str(synthetic / "train"), "--save-dir", str(tmp_path / "r"), flag, "-1"])
        assert code == 2
        assert capsys.readouterr().err.strip() == f"error: {flag} {-1.0 if 'budget' in flag else -1}: must be >= 0"


def test_residual_cnn_shape_parameters_and_bicubic_skip():
    torch.manual_seed(0)
    net = ResidualCNN(channels=8, num_blocks=2, scale=4)
    c = 8
    conv = lambda i, o: i * o * 9 + o  # noqa: E731
    expected = conv(3, c) + 2 * 2 * conv(c, c) + conv(c, c) + 2 * conv(c, 4 * c) + conv(c, 3)
    assert sum(p.numel() for p in net.parameters()) == expected
    x = torch.rand(2, 3, 7, 9) * 2 - 1
    assert net(x).shape == (2, 3, 28, 36)
    with torch.no_grad():  # with a zero last layer the network is exactly bicubic
        net.tail.weight.zero_()
        net.tail.bias.zero_()
        assert torch.equal(net(x), F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False))
    assert ResidualCNN(channels=8, num_blocks=1, scale=3)(x).shape == (2, 3, 21, 27)


def test_rcnn_preset_trains_and_its_file_records_the_run(tmp_path, synthetic):
    run = tmp_path / "cnn"
    result = train(config(
        synthetic, run, preset="rcnn", network={"channels": 8, "num_blocks": 1}, steps=4,
        model_info={"gsd_m": 0.3, "licence": "MIT"},
    ))  # fmt: skip
    meta = read_metadata(result.model_path)
    assert meta["architecture"] == "ResidualCNN" and json.loads(meta["config"])["channels"] == 8
    assert meta["training_data"].startswith("6 images in train (6 files, SHA-256 of their names and sizes ")
    assert meta["degradation"].startswith("bicubic x2") and meta["bands"] == "red,green,blue"
    assert meta["gsd_m"] == "0.3" and meta["licence"] == "MIT" and "4 steps of batch 2" in meta["training"]
    # the file rebuilds the trained network: same output as the run's EMA weights
    state = read(run / "last.pt")
    net = ResidualCNN(**json.loads(meta["config"]))
    net.load_state_dict(state["ema"]["weights"])
    lr = torch.rand(1, 3, 16, 16)  # no padding needed
    with torch.inference_mode():
        assert torch.allclose(fatsr.load_model(result.model_path)(lr), (net(lr * 2 - 1) + 1) / 2, atol=1e-6)


def test_unknown_model_info_is_refused(tmp_path, synthetic, capsys):
    code = main(
        ["train", "--data-dir", str(synthetic / "train"), "--save-dir", str(tmp_path / "r"), "--model-info", "gsd=1"]
    )
    assert code == 2
    assert capsys.readouterr().err.startswith("error: --model-info gsd: not a model file entry; use description, bands")

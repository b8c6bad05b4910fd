"""configs/gpu-fat-x4.yaml, the GPU recipe, run as its one command on the CPU with only its
length, batch, patch, precision and data overridden: the published-size network trains, and
the weights file and its curves are written and reload."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml
from PIL import Image

from fatsr.cli import main
from fatsr.models.loading import load_model
from fatsr.models.registry import presets

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "gpu-fat-x4.yaml"
UCMERCED = Path(__file__).resolve().parents[1] / "fixtures" / "ucmerced" / "val"


def crops(folder: Path, names: list[str]) -> Path:
    """96x96 HR crops of fixture images: the smallest the fat network takes at x4 (24 LR)."""
    folder.mkdir()
    for name in names:
        with Image.open(UCMERCED / name) as im:
            im.crop((64, 64, 160, 160)).save(folder / name)
    return folder


def test_gpu_recipe_runs_on_cpu_with_a_tiny_step_count(tmp_path):
    run = tmp_path / "run"
    train = crops(tmp_path / "train", ["agricultural05.png", "harbor55.png"])
    val = crops(tmp_path / "val", ["forest05.png"])
    flags = ["--data-dir", str(train), "--val-dir", str(val), "--save-dir", str(run),
             "--steps", "2", "--batch-size", "1", "--patch-size", "24", "--val-every", "2", "--log-every", "1", "--amp", "none",
             "--device", "cpu", "--workers", "0", "--no-progress"]  # fmt: skip
    assert main(["train", "--config", str(CONFIG), *flags]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    recipe = yaml.safe_load(CONFIG.read_text())
    kept = {k: v for k, v in recipe.items() if k not in ("steps", "batch_size", "patch_size", "val_every", "log_every", "amp",
                                                          "workers", "save_dir")}  # fmt: skip
    assert {k: saved[k] for k in kept} == kept and recipe["amp"] == "bf16"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2]
    assert [r["step"] for r in records if r["kind"] == "val"] == [2]
    with Image.open(run / "progress.png") as curves:
        assert curves.format == "PNG" and min(curves.size) > 100
    model = load_model(run / "model.safetensors")
    fat = presets()["fat"][1].config
    config = model.network.config
    assert (config.dim, config.num_blocks, config.num_layers, config.mlp_ratio) == (
        fat.dim, fat.num_blocks, fat.num_layers, fat.mlp_ratio)  # fmt: skip
    assert config.bicubic_skip and model.scale == 4
    assert 10.2e6 < sum(p.numel() for p in model.parameters()) < 10.3e6
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 24, 24)).shape == (1, 3, 96, 96)

"""``--recipe published``: each setting of the published train.py pinned, whole-image resizing
against Pillow, and ``python train.py`` end to end on a few images (with a stand-in VGG19
file: the ImageNet weights are not in the repository and tests run offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from fatsr.cli import build_parser, main
from fatsr.cli.train import resolve_config
from fatsr.data import TrainDataset
from fatsr.errors import FatsrError
from fatsr.losses import VGG19_FILE, VGG19Features
from fatsr.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "harbor55.png"
TINY = ["--network", "dim=16", "--network", "num_blocks=1", "--network", "num_layers=1", "--network",
        "num_heads=2", "--network", "window_size=4", "--network", "mlp_ratio=2.0"]  # fmt: skip


def _parse(argv: list[str]):
    return build_parser().parse_args(["train", *argv])


# fat-architecture.md sections 11-12, written out here rather than imported
PUBLISHED = {
    "preset": "fat", "scale": 4, "sampling": "resize", "patch_size": 120, "augment": False, "batch_size": 2,
    "epochs": 100, "steps": None, "optimizer": "adam", "lr": 1e-4, "betas": (0.9, 0.999), "weight_decay": 0.0,
    "schedule": "constant", "warmup_steps": 0, "grad_clip": 0.0, "ema_decay": 0.0, "amp": "none",
    "losses": {"l1": 1.0, "lev": 0.1, "perceptual": 0.001}, "published_normalization": True,
    "save_cycle": 5, "val_dir": None, "data_dir": ["./datasets/train"], "save_dir": "./checkpoints/v1",
}  # fmt: skip


def test_published_recipe_pins_every_setting():
    config = resolve_config(_parse(["--recipe", "published"]))
    assert {k: getattr(config, k) for k in PUBLISHED} == PUBLISHED
    assert config.recipe == "published"
    # flags still override single values; the rest stays published
    changed = resolve_config(_parse(["--recipe", "published", "--lr", "2e-4", "--epochs", "3"]))
    assert (changed.lr, changed.epochs, changed.ema_decay, changed.sampling) == (2e-4, 3, 0.0, "resize")


def test_fatsr_recipe_is_the_default_and_differs_where_documented():
    config = resolve_config(_parse([]))
    assert config == TrainConfig() and config.recipe == "fatsr"
    assert config.epochs is None and config.steps is None  # the trainer's 100 epochs
    differs = {k for k, v in PUBLISHED.items() if getattr(config, k) != v and k != "epochs"}
    assert differs == {
        "sampling", "patch_size", "augment", "ema_decay", "amp", "published_normalization", "save_cycle", "preset",
    }  # fmt: skip
    assert config.preset is None  # by the device: fat on a GPU, compact on a CPU


def test_recipe_from_yaml(tmp_path):
    (tmp_path / "run.yaml").write_text("recipe: published\nlr: 0.0003\n")
    config = resolve_config(_parse(["--config", str(tmp_path / "run.yaml")]))
    assert (config.recipe, config.lr, config.augment) == ("published", 3e-4, False)


def _folder(root: Path, sizes: list[tuple[int, int]]) -> Path:
    """HR/ crops (width, height) of the example image and LR/ at a quarter size by Pillow."""
    (root / "HR").mkdir(parents=True)
    (root / "LR").mkdir()
    with Image.open(EXAMPLE) as im:
        rgb = im.convert("RGB")
        for i, (w, h) in enumerate(sizes):
            hr = rgb.crop((10 * i, 5 * i, 10 * i + w, 5 * i + h))
            hr.save(root / "HR" / f"{i}.png")
            hr.resize((w // 4, h // 4), Image.BICUBIC).save(root / "LR" / f"{i}.png")
    return root


def test_resize_sampling_is_torchvision_resize(tmp_path):
    root = _folder(tmp_path / "d", [(96, 64), (96, 64)])
    data = TrainDataset(root, 4, patch_size=12, augment=False, resize=True)
    assert data.lr_size == (12, 18)  # shorter side 16 -> 12, longer 24 -> int(12 * 24 / 16)
    item = data[1]
    with Image.open(root / "HR" / "1.png") as hr, Image.open(root / "LR" / "1.png") as lr:
        expected_hr = np.asarray(hr.resize((72, 48), Image.BILINEAR))
        expected_lr = np.asarray(lr.resize((18, 12), Image.BILINEAR))
    assert np.array_equal((item["hr"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), expected_hr)
    assert np.array_equal((item["lr"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), expected_lr)
    mixed = _folder(tmp_path / "m", [(96, 64), (64, 64)])
    with pytest.raises(FatsrError, match="different LR sizes"):
        TrainDataset(mixed, 4, patch_size=12, resize=True)


def test_published_script_end_to_end(tmp_path):
    """``python train.py`` (published flags, published recipe) on four images for one epoch."""
    _folder(tmp_path / "datasets" / "train", [(96, 96)] * 4)  # resized to 16 LR, 64 HR
    g = torch.Generator().manual_seed(0)
    stand_in = {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in VGG19Features().state_dict().items()}
    torch.save(stand_in, tmp_path / VGG19_FILE)
    command = [sys.executable, str(REPO / "train.py"), "--data_dir", "datasets/train", "--epochs", "1",
               "--batch_size", "2", "--no-cuda", "--vgg-weights", VGG19_FILE, "--patch-size", "16",
               "--log-every", "1", "--no-progress", "--workers", "0", *TINY]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "checkpoints" / "v1"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["recipe"] == "published" and saved["sampling"] == "resize" and saved["augment"] is False
    assert saved["published_normalization"] is True and saved["ema_decay"] == 0.0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in steps] == [1, 2]  # 4 images, batch 2
    for r in steps:
        assert r["loss"] == pytest.approx(r["l1"] + 0.001 * r["perceptual"] + 0.1 * r["lev"], rel=1e-5)
        assert r["lr"] == pytest.approx(1e-4)
    state = torch.load(run / "last.pt", weights_only=True)
    assert all(torch.equal(state["model"][k], v) for k, v in state["ema"]["weights"].items())  # no EMA


def test_missing_vgg_is_one_clear_line(tmp_path, monkeypatch, capsys):
    _folder(tmp_path / "d", [(64, 64)] * 2)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    code = main(["train", "--recipe", "published", "--data-dir", str(tmp_path / "d"), "--save-dir",
                 str(tmp_path / "run"), "--patch-size", "16", "--device", "cpu", *TINY])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert str(tmp_path / "hub" / "checkpoints" / VGG19_FILE) in err and "--vgg-weights" in err

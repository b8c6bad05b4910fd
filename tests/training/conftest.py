"""Tiny real data and a tiny FAT configuration for the trainer's tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from fatsr.training.config import TrainConfig

UCMERCED = Path(__file__).resolve().parents[1] / "fixtures" / "ucmerced"
TINY_NETWORK = {"dim": 16, "num_blocks": 1, "num_layers": 1, "num_heads": 2, "window_size": 4, "mlp_ratio": 2.0}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train/`` (6 HR crops 48x48) and ``val/`` (2 HR crops) of UC Merced, copied from the fixtures."""
    root = tmp_path_factory.mktemp("ucm")
    shutil.copytree(UCMERCED / "train48", root / "train")
    shutil.copytree(UCMERCED / "val48", root / "val")
    return root


def _tiny_config(data: Path, save_dir: Path, **changes: object) -> TrainConfig:
    values = dict(
        data_dir=str(data / "train"), val_dir=str(data / "val"), save_dir=str(save_dir), scale=2, preset="fat",
        patch_size=16, network=dict(TINY_NETWORK), perceptual_weight=0.0, batch_size=2, steps=6,
        lr=2e-3, val_every=3, save_every=2, log_every=1, workers=0, progress=False,
    )  # fmt: skip
    values.update(changes)
    return TrainConfig(**values)


def _tiny_flags(data: Path, save_dir: Path) -> list[str]:
    flags = [
        "--data-dir", str(data / "train"), "--val-dir", str(data / "val"), "--save-dir", str(save_dir),
        "--scale", "2", "--preset", "fat", "--patch-size", "16", "--perceptual-weight", "0", "--batch-size", "2",
        "--lr", "2e-3", "--workers", "0", "--no-progress",
    ]  # fmt: skip
    for key, value in TINY_NETWORK.items():
        flags += ["--network", f"{key}={value}"]
    return flags


@pytest.fixture
def make_config(tiny_data: Path) -> Callable[..., TrainConfig]:
    """``make_config(save_dir, **changes)``: a run of a 40k-parameter FAT (x2, 16x16 LR
    patches, 6 steps of batch 2) on :func:`tiny_data`, well under a second a step."""
    return lambda save_dir, **changes: _tiny_config(tiny_data, Path(save_dir), **changes)


@pytest.fixture
def make_flags(tiny_data: Path) -> Callable[[Path], list[str]]:
    """``make_flags(save_dir)``: the ``fatsr train`` flags of the same tiny run (no --steps)."""
    return lambda save_dir: _tiny_flags(tiny_data, Path(save_dir))

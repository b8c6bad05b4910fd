"""`fatsr train --degradation`: LR made per batch on the device, recorded, resumable exactly."""

from __future__ import annotations

import dataclasses
import importlib

import pytest
import torch
import yaml

from fatsr.cli import main, message
from fatsr.data import bicubic_downscale, quantize
from fatsr.data.degrade_presets import load_preset
from fatsr.errors import FatsrError
from fatsr.training import train
from fatsr.training.config import TrainConfig

train_module = importlib.import_module("fatsr.training.train")  # the module, not fatsr.training.train()


def test_cli_run_trains_on_degraded_lr_and_records_the_preset(tmp_path, make_flags, monkeypatch, capsys):
    batches = []
    original = train_module.training_step

    def recording(model, loss_fn, optimizer, lr, hr, **options):
        batches.append((lr.clone(), hr.clone()))
        return original(model, loss_fn, optimizer, lr, hr, **options)

    monkeypatch.setattr(train_module, "training_step", recording)
    run = tmp_path / "run"
    assert main(["train", *make_flags(run), "--steps", "2", "--val-every", "100", "--degradation", "fat"]) == 0
    assert "LR made per batch by the 'fat' degradation" in capsys.readouterr().out
    assert len(batches) == 2
    for lr, hr in batches:  # in the network's [-1, 1] space
        assert lr.shape == (2, 3, 16, 16) and hr.shape == (2, 3, 32, 32)
        lr01, hr01 = (lr + 1) / 2, (hr + 1) / 2
        torch.testing.assert_close(lr01, quantize(lr01, 255), rtol=0, atol=1e-6)
        bicubic = quantize(bicubic_downscale(hr01, 2), 255)
        assert (lr01 - bicubic).abs().mean() > 0.01  # not the plain bicubic LR ...
        assert (lr01 - bicubic).abs().mean() < 0.2  # ... but a degraded view of the same crop
    assert not torch.equal(batches[0][0], batches[1][0])
    assert yaml.safe_load((run / "config.yaml").read_text())["degradation"] == "fat"
    assert yaml.safe_load((run / "degradation.yaml").read_text()) == load_preset("fat")


def test_resumed_run_degrades_like_a_straight_one(tmp_path, make_config):
    config = make_config(tmp_path / "straight", steps=4, val_dir=None, degradation="realesrgan")
    train(config)
    first = dataclasses.replace(config, save_dir=str(tmp_path / "resumed"), steps=2)
    train(first)
    train(dataclasses.replace(first, steps=4, resume="auto"))
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name


def test_unknown_degradation_is_a_one_line_error():
    with pytest.raises(FatsrError) as error:
        TrainConfig(degradation="nope").validate()
    said = "unknown preset 'nope'; use one of bicubic, fat, mild, realesrgan or a path to a .yaml file"
    assert str(error.value) == f"degradation: {said}"  # from Python
    assert message(error.value) == f"--degradation: {said}"  # fatsr train

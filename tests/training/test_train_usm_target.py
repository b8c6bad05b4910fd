"""With the realesrgan preset the loss compares with the USM-sharpened HR (Real-ESRGAN's
l1_gt_usm / percep_gt_usm); with the fat preset with the plain HR."""

from __future__ import annotations

import importlib

import pytest
import torch

from fatsr.cli import main
from fatsr.data.degrade import usm_sharpen
from fatsr.data.degrade_presets import load_preset

train_module = importlib.import_module("fatsr.training.train")


@pytest.mark.parametrize(("preset", "sharpened"), [("realesrgan", True), ("fat", False)])
def test_training_target_is_usm_sharpened_for_realesrgan(tmp_path, make_flags, monkeypatch, preset, sharpened):
    targets = []
    seen = []
    original = train_module.training_step

    def recording(model, loss_fn, optimizer, lr, hr, **options):
        targets.append(hr.clone())
        return original(model, loss_fn, optimizer, lr, hr, **options)

    original_batches = train_module.Trainer._batches

    def batches(self, epoch, start):
        for batch in original_batches(self, epoch, start):
            seen.append(batch["hr"].clone())
            yield batch

    monkeypatch.setattr(train_module, "training_step", recording)
    monkeypatch.setattr(train_module.Trainer, "_batches", batches)
    run = tmp_path / "run"
    assert main(["train", *make_flags(run), "--steps", "1", "--val-every", "100", "--degradation", preset]) == 0
    usm = load_preset("realesrgan")["usm"]
    expected = usm_sharpen(seen[0], **usm) if sharpened else seen[0]
    torch.testing.assert_close((targets[0] + 1) / 2, expected, rtol=0, atol=1e-6)
    assert sharpened == bool(((targets[0] + 1) / 2 - seen[0]).abs().max() > 1e-3)

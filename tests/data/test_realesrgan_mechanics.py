"""Real-ESRGAN's training mechanics in the presets: the noise type drawn once per batch
(``noise_type: batch``) or per image, and presets written before these keys still load
(USM-sharpened targets: tests/training/test_train_usm_target.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from fatsr.data.degrade import run_degradation
from fatsr.data.degrade_presets import load_preset
from fatsr.data.jpeg import jpeg
from fatsr.errors import FatsrError


def _noise_types(preset: dict, seeds: range, batch: int = 6) -> list[set[bool]]:
    """For each seed, the set of noise types (True = Gaussian) the images of one batch got."""
    found = []

    def recording(x, draws, rngs):
        found.append({d.gaussian for d in draws})
        return x

    x = torch.rand(batch, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for seed in seeds:
        shared = np.random.default_rng(seed)
        run_degradation(x, 2, preset, shared, recording, jpeg, [np.random.default_rng([seed, i]) for i in range(batch)])
    return found


def test_noise_type_per_batch_or_per_image(first_stage_only):
    noise = {"gaussian_prob": 0.5, "gaussian_sigma": [1.0, 2.0], "poisson_scale": [0.1, 0.2], "gray_prob": 0.4}
    per_batch = _noise_types({**first_stage_only(noise=noise), "noise_type": "batch"}, range(20))
    assert all(len(types) == 1 for types in per_batch)  # one type for the whole batch ...
    assert {next(iter(t)) for t in per_batch} == {True, False}  # ... and both types over batches
    per_image = _noise_types({**first_stage_only(noise=noise), "noise_type": "image"}, range(20))
    assert any(len(types) == 2 for types in per_image)
    assert load_preset("realesrgan")["noise_type"] == "batch" and load_preset("fat")["noise_type"] == "image"


def test_old_preset_files_load_with_defaults(tmp_path):
    data = yaml.safe_load((load_preset.__globals__["PRESET_DIR"] / "realesrgan.yaml").read_text())
    for key in ("noise_type", "usm_target"):
        data.pop(key)
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(data))
    preset = load_preset(tmp_path / "old.yaml")
    assert (preset["noise_type"], preset["usm_target"]) == ("image", False)
    data.update(usm=None, usm_target=True)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(FatsrError, match="usm_target"):
        load_preset(tmp_path / "bad.yaml")

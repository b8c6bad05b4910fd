"""Model discovery: --model NAME|PATH, `fatsr models`, `fatsr info`, and what model files record."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

import fatsr
from fatsr.cli import main
from fatsr.errors import FatsrError
from fatsr.models import zoo
from fatsr.models.cnn import ResidualCNN
from fatsr.models.fat import FAT
from fatsr.models.files import INFO_KEYS, load_network, read_metadata, save_model
from fatsr.models.zoo import builtin_names


def test_resolve_names_paths_and_the_default(tmp_path, model_file):
    shipped = zoo.builtin_models()
    assert shipped and all(p.suffix == ".safetensors" and p.parent == zoo.weights_dir() for p in shipped.values())
    for name, path in shipped.items():
        assert zoo.resolve(name) == path
    assert zoo.resolve(str(model_file)) == model_file
    assert zoo.resolve(None) == fatsr.default_model_path() == shipped[zoo.default_name()]
    assert zoo.default_name() == "fatsr-x4"
    with pytest.raises(FatsrError, match=r"model='nope': model file not found, and no built-in model .*fatsr-x4"):
        zoo.resolve("nope")
    with pytest.raises(FatsrError, match="a folder without a model file"):
        zoo.resolve(tmp_path)


def test_upscale_by_name_equals_upscale_by_path(tmp_path, capsys):
    rgb = np.random.default_rng(0).integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.png")
    path = zoo.builtin_models()["fatsr-x2"]
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "a.png"), "--model", "fatsr-x2"]) == 0
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "b.png"), "--model", str(path)]) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "c.png"), "--model", "fatsr-nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "fatsr-nope" in err and "not found" in err
    assert not (tmp_path / "c.png").exists()


def test_former_name_runs_its_successor_and_says_so(tmp_path):
    """fatsr-compact-x4 (the default before fatsr-x4, its smaller network) keeps users' scripts working."""
    with pytest.warns(FutureWarning, match="fatsr-compact-x4 is now fatsr-x4"):
        assert zoo.resolve("fatsr-compact-x4") == zoo.builtin_models()["fatsr-x4"]
    assert "fatsr-compact-x4" not in zoo.builtin_models() and "fatsr-compact-x4" in builtin_names()
    rgb = np.random.default_rng(1).integers(0, 256, size=(16, 20, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.png")
    old, new = tmp_path / "old.png", tmp_path / "new.png"
    with pytest.warns(FutureWarning, match="running fatsr-x4"):
        assert main(["upscale", str(tmp_path / "in.png"), "-o", str(old), "--model", "fatsr-compact-x4"]) == 0
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(new), "--model", "fatsr-x4"]) == 0
    assert old.read_bytes() == new.read_bytes()


def test_models_lists_every_shipped_file_with_its_parameters(capsys):
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    shipped = zoo.builtin_models()
    assert sorted(listed) == sorted(shipped)
    for name, record in listed.items():
        network, _ = load_network(shipped[name])
        assert record["parameters"] == sum(p.numel() for p in network.parameters())
        assert record["scale"] == str(network.scale) and record["default"] == (name == zoo.default_name())
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in shipped) and "(default)" in text


def test_shipped_models_record_what_they_expect_and_how_they_measured():
    """Each built-in model file describes itself: no entry missing, figures with their command."""
    for name, path in zoo.builtin_models().items():
        meta = read_metadata(path)
        missing = [
            k for k in ("bands", "value_range", "training_data", "gsd_m", "degradation", "licence") if k not in meta
        ]
        assert not missing, (name, missing)
        evaluation, speed = json.loads(meta["evaluation"]), json.loads(meta["speed"])
        assert evaluation["psnr_y"] > evaluation["bicubic_psnr_y"] and "fatsr evaluate" in evaluation["command"]
        assert speed["lr_mpx_per_cpu_s"] > 0 and "bench_scene.py" in speed["command"]
        assert meta["name"] == name  # a renamed or swapped file shows


def test_info_prints_what_the_file_records(tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "cnn.safetensors"
    info = {"bands": "nir,red,green", "gsd_m": 10, "licence": "CC-BY-4.0", "evaluation": {"psnr_y": 30.5}}
    save_model(path, ResidualCNN(channels=8, num_blocks=1, scale=2), name="my-cnn", info=info)
    assert main(["info", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["name"] == "my-cnn" and record["architecture"] == "ResidualCNN" and record["scale"] == "2"
    assert record["bands"] == "nir,red,green" and record["gsd_m"] == "10" and record["licence"] == "CC-BY-4.0"
    assert record["evaluation"] == {"psnr_y": 30.5}
    assert record["parameters"] == sum(p.numel() for p in ResidualCNN(channels=8, num_blocks=1, scale=2).parameters())
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["size_bytes"] == path.stat().st_size
    assert main(["info", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "my-cnn"] and any(line.split() == ["bands", "nir,red,green"] for line in lines)
    assert main(["info", str(tmp_path / "none.safetensors")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'none.safetensors'}: model file not found")


def test_model_info_keys_are_checked(tmp_path):
    with pytest.raises(FatsrError, match="model info 'gsd' is not one of description, bands"):
        save_model(
            tmp_path / "m.safetensors", FAT(dim=8, num_blocks=1, num_layers=1, num_heads=2), name="m", info={"gsd": 1}
        )
    assert not (tmp_path / "m.safetensors").exists()
    assert set(INFO_KEYS) >= {"bands", "value_range", "training_data", "gsd_m", "degradation", "licence"}

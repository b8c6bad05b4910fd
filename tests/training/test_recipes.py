"""The built-in models' recipes are files that rerun them (``configs/recipes/``, run by
``scripts/train_recipe.py``): every stage resolves to a valid run, each starts from a stage
before it, and a small recipe runs end to end."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from fatsr.models.zoo import weights_dir
from fatsr.training.config import load_yaml, recipe_defaults, updated

REPO = Path(__file__).resolve().parents[2]
TINY = {"dim": 16, "num_blocks": 1, "num_layers": 1, "num_heads": 2, "window_size": 4, "mlp_ratio": 2.0}
_spec = importlib.util.spec_from_file_location("train_recipe", REPO / "scripts" / "train_recipe.py")
assert _spec is not None and _spec.loader is not None
train_recipe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_recipe)


@pytest.mark.parametrize(("recipe", "count"), [("fatsr-x4", 5), ("fatsr-real-x4", 5), ("fatsr-x2", 1)])
def test_every_stage_of_a_shipped_recipe_is_a_valid_run_from_the_one_before(recipe, count, tmp_path):
    planned = train_recipe.stages(REPO / "configs" / "recipes" / f"{recipe}.yaml", tmp_path / "data", tmp_path / "runs")
    assert len(planned) == count and planned[-1][0] == recipe
    done: list[str] = []
    for name, options in planned:
        config = updated(recipe_defaults("fatsr"), options, name)
        config.validate()
        assert config.save_dir == str(tmp_path / "runs" / name)
        assert all(folder.startswith(str(tmp_path / "data")) for folder in [*config.data_dir, config.val_dir])
        if config.resume is not None:  # an earlier stage's weights, or a shipped model's
            started = Path(config.resume)
            assert started.parent.name in done or started.parent == weights_dir() and started.is_file()
        done.append(name)
    # the last stage is its config file as it is, on the data, from the stage before
    name, options = planned[-1]
    shipped = load_yaml(REPO / "configs" / f"{recipe}.yaml")
    assert {k: v for k, v in options.items() if k in shipped and k != "save_dir"} == {
        k: v for k, v in shipped.items() if k != "save_dir"
    }


def test_the_stages_of_fatsr_x4_as_they_ran(tmp_path):
    planned = dict(train_recipe.stages(REPO / "configs/recipes/fatsr-x4.yaml", Path("UCMerced"), Path("runs")))
    compact = {"num_layers": 1, "mlp_ratio": 2.0}
    assert planned["compact-x4"]["data_dir"] == ["UCMerced/train"] and "resume" not in planned["compact-x4"]
    stage3 = planned["fatsr-x4-stage3"]
    assert (stage3["network"], stage3["steps"], stage3["stop_at"], stage3["resume"]) == (
        compact, 4000, 250, "runs/fatsr-x4-stage2/best.safetensors"
    )  # fmt: skip
    assert planned["fatsr-x4"]["network"] == {"num_layers": 3, "mlp_ratio": 4.0}
    assert planned["fatsr-x4"]["data_dir"] == ["UCMerced/train", "UCMerced/train_extra"]


def test_a_recipe_runs_its_stages_in_order(tmp_path, tiny_data, capsys):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({
        "preset": "fat", "scale": 2, "patch_size": 16, "network": TINY, "losses": {"perceptual": 0.0},
        "batch_size": 2, "steps": 2, "lr": 2e-3, "val_every": 2, "workers": 0, "progress": False,
    }))  # fmt: skip
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "data_dir": ["{data}/train"], "val_dir": "{data}/val",
        "stages": [
            {"name": "one", "config": str(base)},
            {"name": "two", "config": str(base), "steps": 3, "resume": "{runs}/one/best.safetensors"},
        ],
    }))  # fmt: skip
    runs = tmp_path / "runs"
    assert train_recipe.main([str(recipe), "--data", str(tiny_data), "--runs", str(runs)]) == 0
    said = capsys.readouterr()
    assert said.err == "stage one:\nstage two:\n"
    assert (runs / "one" / "model.safetensors").is_file() and (runs / "two" / "model.safetensors").is_file()
    assert f"initialised the weights from {runs / 'one' / 'best.safetensors'}" in said.out
    saved = yaml.safe_load((runs / "two" / "config.yaml").read_text())
    assert saved["steps"] == 3 and saved["data_dir"] == [str(tiny_data / "train")]
    # a second call skips the stages whose run folders hold their model
    assert train_recipe.main([str(recipe), "--data", str(tiny_data), "--runs", str(runs)]) == 0
    assert capsys.readouterr().err.count("holds its model; skipped") == 2

"""Rerun the training of a built-in model: the stages of a recipe file (``configs/recipes/``),
each a ``fatsr train`` run of a config file with the stage's changes, in order.

    python scripts/train_recipe.py configs/recipes/fatsr-x4.yaml --data UCMerced --runs runs
    python scripts/train_recipe.py configs/recipes/fatsr-x4.yaml --data UCMerced --runs runs --dry-run
    python scripts/train_recipe.py RECIPE --data UCMerced --runs runs --from fatsr-x4-stage3

A recipe holds ``stages``, a list of ``{name, config, OPTION: VALUE, ...}``, and options every
stage takes unless it gives its own (``data_dir``, ``val_dir``); mappings (``network``,
``losses``, ``model_info``) add up over the config file's. In any text ``{data}``, ``{runs}`` and
``{builtin}`` (the package's weights folder) are filled in. Stage NAME runs in RUNS/NAME; a stage
whose run folder already holds its model.safetensors is skipped (rerun it in a new --runs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from fatsr.cli import main as fatsr
from fatsr.models.zoo import weights_dir
from fatsr.training.config import load_yaml

REPO = Path(__file__).resolve().parents[1]
MAPPINGS = ("network", "losses", "model_info")  # options whose entries add up


def _filled(value: Any, places: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**places)
    if isinstance(value, list):
        return [_filled(v, places) for v in value]
    if isinstance(value, dict):
        return {k: _filled(v, places) for k, v in value.items()}
    return value


def stages(recipe: Path, data: Path, runs: Path) -> list[tuple[str, dict[str, Any]]]:
    """(name, the options of its `fatsr train` run) of every stage of ``recipe``, in order."""
    text = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    shared = {k: v for k, v in text.items() if k != "stages"}
    places = {"data": str(data), "runs": str(runs), "builtin": str(weights_dir())}
    found = []
    for stage in text["stages"]:
        stage = dict(stage)
        name, config = stage.pop("name"), stage.pop("config")
        options = load_yaml(REPO / config)
        for key, value in {**shared, **stage}.items():
            options[key] = {**options.get(key, {}), **value} if key in MAPPINGS else value
        options["save_dir"] = str(runs / name)
        found.append((name, _filled(options, places)))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path, help="a recipe file, e.g. configs/recipes/fatsr-x4.yaml")
    parser.add_argument("--data", type=Path, required=True, help="the folder of the recipe's data (e.g. UCMerced)")
    parser.add_argument("--runs", type=Path, required=True, help="the folder of the stages' run folders")
    parser.add_argument("--from", dest="start", help="start at this stage (the earlier ones' run folders exist)")
    parser.add_argument("--dry-run", action="store_true", help="print each stage's options, run nothing")
    args = parser.parse_args(argv)
    planned = stages(args.recipe, args.data, args.runs)
    names = [name for name, _ in planned]
    if args.start is not None and args.start not in names:
        parser.error(f"--from {args.start}: the stages are {', '.join(names)}")
    for name, options in planned[names.index(args.start) if args.start else 0 :]:
        print(f"stage {name}:", file=sys.stderr)
        if args.dry_run:
            print(yaml.safe_dump({name: options}, sort_keys=False))
            continue
        if (Path(options["save_dir"]) / "model.safetensors").is_file():
            print(f"  {options['save_dir']} holds its model; skipped", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / f"{name}.yaml"
            config.write_text(yaml.safe_dump(options, sort_keys=False), encoding="utf-8")
            code = fatsr(["train", "--config", str(config)])
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())

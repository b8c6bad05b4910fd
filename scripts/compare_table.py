"""The equal-CPU comparison tables of docs/model-comparison.md, from the run folders.

    python scripts/compare_table.py --recipe configs/compare-x4.yaml RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a finished ``fatsr train --config configs/compare-x4.yaml ...`` run. Prints two
Markdown tables: one row per run (the flags it adds to the recipe, parameters, steps, the last
validation's PSNR-Y / SSIM-Y and gain over the trainer's bicubic), and its validation curve
(step: PSNR-Y at CPU seconds). Only what the runs recorded is printed. ``--at MINUTES``: the row
of each run is its last validation within that many CPU-minutes (a longer run read at a shorter
budget: with a constant learning rate it is the shorter run), and the row gives its CPU time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import yaml
from safetensors import safe_open

COMPARED = ("preset", "batch_size", "lr", "lev_weight", "l1_weight", "patch_size", "cpu_budget_min")  # and losses


def flags(config: dict, recipe: dict) -> str:
    """The command-line flags that make this run's config from the recipe's."""
    out = []
    for key in COMPARED:
        if key in config and config[key] != recipe.get(key):
            out.append(f"--{key.replace('_', '-')} {config[key]:g}" if isinstance(config[key], float) else
                       f"--{key.replace('_', '-')} {config[key]}")  # fmt: skip
    weights, base = config.get("losses") or {}, recipe.get("losses") or {}
    changed = [f"{k}={v:g}" for k, v in weights.items() if v != base.get(k)]
    out += [f"--losses {' '.join(changed)}"] if changed else []
    out += [f"--network {k}={v}" for k, v in (config.get("network") or {}).items()]
    return " ".join(out)


def parameters(model: Path) -> int:
    with safe_open(str(model), "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--recipe", type=Path, default=Path("configs/compare-x4.yaml"))
    parser.add_argument("--at", type=float, metavar="MINUTES", help="read each run at this CPU budget")
    args = parser.parse_args(argv)
    recipe = yaml.safe_load(args.recipe.read_text())
    rows, curves = [], []
    for run in args.runs:
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
        vals = [r for r in records if r["kind"] == "val" and (args.at is None or r["cpu_time"] <= args.at * 60)]
        bicubic = next((r for r in records if r["kind"] == "bicubic"), None)
        if not vals or bicubic is None:
            print(f"error: {run} has no validation records; is it a finished comparison run?", file=sys.stderr)
            return 2
        config = yaml.safe_load((run / "config.yaml").read_text())
        last = vals[-1]
        model = run / "model.safetensors" if (run / "model.safetensors").exists() else run / "last.safetensors"
        steps = f"{last['step']} ({last['cpu_time']:.0f} CPU-s)" if args.at is not None else last["step"]
        rows.append(
            f"| `{run.name}` | `{flags(config, recipe)}` | {parameters(model):,} | {steps} "
            f"| {last['psnr']:.3f} | {last['ssim']:.4f} | {last['psnr'] - bicubic['psnr']:+.3f} |"
        )
        curve = "; ".join(f"{r['step']}: {r['psnr']:.3f} at {r['cpu_time']:.0f} s" for r in vals)
        curves.append(f"| `{run.name}` | {curve} |")
    print("| run | flags | parameters | steps | PSNR-Y (dB) | SSIM-Y | gain over bicubic |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print("| run | step: PSNR-Y at CPU seconds |")
    print("|---|---|")
    print("\n".join(curves))
    return 0


if __name__ == "__main__":
    sys.exit(main())

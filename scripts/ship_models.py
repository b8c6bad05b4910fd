"""Evaluate, time and ship the built-in models from their training runs; write their model cards,
copy their training curves and fill the evaluation tables of README.md and MODEL_CARD.md.

    python scripts/ship_models.py --runs RUNS --val ucmerced/val --work WORK
    python scripts/ship_models.py --runs RUNS --val ucmerced/val --work WORK --speed   # re-time (quiet machine)

Each model comes from its run folder RUNS/x4, RUNS/real, RUNS/x2, or --run NAME=FOLDER: its
best.safetensors (EMA weights of the best validation), config.yaml, metrics.jsonl and
progress.png (--run NAME=FILE: a weights file; its folder's run files if there). Example:
    python scripts/ship_models.py --val ../shared/data/ucmerced/val --work /tmp/ship \
        --run fatsr-x4=runs/x4b --run fatsr-real-x4=runs/real2 --run fatsr-x2=runs/x2b
The steps, each kept in WORK and done again
only when its input changed (evaluations are keyed by the weights' SHA-256):
  1. degraded val inputs, once: `fatsr degrade VAL --scale 4 --preset fat --seed 0`
  2. `fatsr evaluate` on VAL (LR and baseline by Pillow's bicubic) of `--model bicubic` and of
     each model; for the x4 models also on the degraded inputs (`--lr`)
  3. speed: `benchmarks/bench_scene.py --model FILE --sizes 1024 --threads 2` per model, only
     with --speed (run it on a quiet machine): otherwise the figure already measured for the same
     network (in WORK, else in the shipped file) is kept, and a model without one is timed
  4. scripts/ship_model.py: src/fatsr/weights/NAME.safetensors with its record (`fatsr info`)
  5. docs/models/NAME.md (model card) and NAME-progress.png (the run's training curves); then
     MODEL_CARD.md and README.md's table (between the models-table markers) from the records of
     every shipped file; the README table is printed too.
The cards' and README's figures on every domain split come from docs/models/domains.json
(`python benchmarks/eval_domains.py --splits splits`). Without the runs,
    python scripts/ship_models.py --docs
rewrites README.md's table, MODEL_CARD.md and the domain section of each card from the shipped
files and that JSON (nothing is evaluated).
Commit src/fatsr/weights, docs/models, MODEL_CARD.md and README.md afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this repository's fatsr, also in the commands it runs

from ship_model import WEIGHTS, evaluation, ship  # noqa: E402

from fatsr.models import registry, zoo  # noqa: E402
from fatsr.models.files import load_network, read_metadata  # noqa: E402

DEGRADE_SEED = 0
SPEED_THREADS = 2
# By its name fatsr-real-x4 runs --denoise auto (fatsr.models.strength); the card says so.
AUTO_DENOISE = [
    "By its name it runs `--denoise auto`: each tile gets a mix of these weights and `fatsr-x4`'s by how "
    "blurred the tile looks. On UC Merced val that gives +1.70 dB over bicubic on clean LR, +0.51 on the `mild` "
    "degradation (both as `fatsr-x4`) and +0.63 on `fat` (`fatsr-x4` +0.35); the evaluation tables are of these "
    "weights alone (`--denoise 1`), the domain tables give both. Details: [ensembles](../ensembles.md).",
    "",
]
MARKERS = ("<!-- models-table:start -->", "<!-- models-table:end -->")
DOMAINS = ROOT / "docs" / "models" / "domains.json"  # benchmarks/eval_domains.py
DOMAIN_SECTION = "## Every domain split, with and without `--tta`"
OWN_WEIGHTS = {"fatsr-real-x4": "fatsr-real-x4 --denoise 1"}  # domains.json's row of the file's weights
GSD_M = "0.3048"
TRAINING_DATA = (
    "UC Merced Land Use, 420 training images of 256x256 RGB (configs/ucmerced-split.csv: train + train_extra), "
    "USGS urban orthophotos"
)
LICENCE = "MIT (weights, as fatsr); training data public domain (USGS)"
FAT_DEGRADATION = (
    "the `fat` preset of fatsr degrade (src/fatsr/data/presets/fat.yaml: two rounds of blur, random resize, "
    "Gaussian or Poisson noise and JPEG 80-95, then x4 down), drawn per image on the fly"
)


@dataclass(frozen=True)
class Spec:
    name: str
    run: str  # its run folder under --runs
    scale: int
    recipe: str
    description: str
    degradation: str
    degraded: bool  # scored on the degraded val inputs too
    limits: str


MODELS = (
    Spec(
        "fatsr-x4", "x4", 4, "configs/fatsr-x4.yaml",
        "the default: x4 super-resolution of clean RGB aerial images (sharp, little noise, not compressed); best PSNR",
        "bicubic x4 (antialiased, rounded to 8 bit), made on the fly",
        True,
        "Trained on clean bicubic pairs: on blurred, noisy or JPEG-compressed imagery it sharpens the artefacts "
        "too (use fatsr-real-x4 there, see the degraded table).",
    ),
    Spec(
        "fatsr-real-x4", "real", 4, "configs/fatsr-real-x4.yaml",
        "x4 super-resolution of real RGB imagery: LR with sensor blur, noise and JPEG compression",
        FAT_DEGRADATION,
        True,
        "Trained to remove blur, noise and compression: on clean images it is smoother and scores below "
        "fatsr-x4 (see the val table); the degradation is a synthetic one, not measured on a given sensor.",
    ),
    Spec(
        "fatsr-x2", "x2", 2, "configs/fatsr-x2.yaml",
        "x2 super-resolution of clean RGB aerial images (sharp, little noise, not compressed)",
        "bicubic x2 (antialiased, rounded to 8 bit), made on the fly",
        False,
        "Trained on clean bicubic pairs, like fatsr-x4: not for blurred, noisy or compressed imagery.",
    ),
)  # fmt: skip
BY_NAME = {spec.name: spec for spec in MODELS}


# -- running things ------------------------------------------------------------------------


def run(command: list[str], what: str, threads: int | None = 1) -> str:
    """Run ``command`` with this repository's fatsr and ``threads`` torch threads (None: its
    own choice); its output; exits on failure. One thread: on a busy 2-core machine a second
    one mostly spins (measured: 3 val images in 28 s with one thread, 103 s with two)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    print(f"{what}: {' '.join(command)}", flush=True)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: {what} failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    print(f"  {what}: {time.perf_counter() - start:.0f} s", flush=True)
    return done.stdout


def fatsr(*args: str) -> list[str]:
    return [sys.executable, "-m", "fatsr", *args]


def name_of(val: Path) -> str:
    """The val folder as the commands name it: its parent and its name (e.g. ucmerced/val)."""
    return f"{val.parent.name}/{val.name}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def degraded_inputs(val: Path, work: Path) -> Path:
    folder = work / f"val-fat-x4-seed{DEGRADE_SEED}"
    if not folder.is_dir():
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        run(fatsr("degrade", str(val), "-o", str(partial), "--scale", "4", "--preset", "fat", "--seed", str(DEGRADE_SEED),
                  "--workers", "2"), "degraded val inputs")  # fmt: skip
        partial.rename(folder)
    return folder


@dataclass(frozen=True)
class Evaluation:
    key: str  # its folder under WORK/eval
    model: str  # a file or 'bicubic'
    scale: int
    lr: Path | None  # LR inputs; None: Pillow bicubic of the HR


def evaluate(val: Path, work: Path, job: Evaluation) -> Path:
    """The `fatsr evaluate -o` folder of ``job`` on ``val`` (kept from an earlier run when there)."""
    key, model, scale, lr = job.key, job.model, job.scale, job.lr
    folder = work / "eval" / key
    if (folder / "summary.json").is_file():
        settings = json.loads((folder / "summary.json").read_text())["settings"]
        if settings["hr"] == str(val):
            return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    args = ["evaluate", str(val), "--model", model, "--scale", str(scale), "-o", str(partial)]
    run(fatsr(*args, *(["--lr", str(lr)] if lr else [])), f"evaluate {key}")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def speed(spec: Spec, weights: Path, work: Path, again: bool, size: int) -> dict:
    """LR Mpx/s of a scene by bench_scene.py. Unless ``again``, the figure already measured for
    the same network (speed does not depend on the weights' values) in WORK, else in the shipped
    file of that name, is kept; only a model without one is timed."""
    record_file = work / "speed" / f"{spec.name}.json"
    config = read_metadata(weights)["config"]
    if not again:
        if record_file.is_file():
            record = json.loads(record_file.read_text())
            record.pop("size", None)
            if record.pop("config") == config:
                return record
        shipped = zoo.builtin_models().get(spec.name)
        meta = read_metadata(shipped) if shipped else {}
        if meta.get("config") == config and "speed" in meta:
            print(f"speed of {spec.name}: kept from the shipped file (same network; --speed times it again)")
            return json.loads(meta["speed"])
    out = run([sys.executable, "benchmarks/bench_scene.py", "--model", str(weights), "--sizes", str(size),
               "--threads", str(SPEED_THREADS), "--scale", str(spec.scale), "--workdir", str(work / "bench")],
              f"speed of {spec.name}", threads=None)  # fmt: skip
    line = out.strip().splitlines()[0].replace(str(weights), spec.name)
    wall, cpu = re.search(r"([\d.]+) LR Mpx/s, ([\d.]+) LR Mpx per CPU-s", line).groups()  # type: ignore[union-attr]
    tile, overlap = re.search(r"tile (\d+)/(\d+)", line).groups()  # type: ignore[union-attr]
    record = {
        "lr_mpx_per_s": float(wall), "lr_mpx_per_cpu_s": float(cpu), "threads": SPEED_THREADS,
        "scene": f"{size}x{size} LR GeoTIFF, tiles {tile} overlap {overlap}", "output": line,
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": f"python benchmarks/bench_scene.py --model {spec.name} --sizes {size} --threads {SPEED_THREADS}",
    }  # fmt: skip
    record_file.parent.mkdir(parents=True, exist_ok=True)
    record_file.write_text(json.dumps({**record, "config": config, "size": size}, indent=2))
    return record


# -- what a run says -----------------------------------------------------------------------


def run_config(run_dir: Path | None) -> dict:
    path = run_dir / "config.yaml" if run_dir else None
    return yaml.safe_load(path.read_text()) if path and path.is_file() else {}


def val_curve(run_dir: Path | None) -> list[tuple[int, float, float]]:
    path = run_dir / "metrics.jsonl" if run_dir else None
    if not path or not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["step"], r["psnr"], r["ssim"]) for r in records if r.get("kind") == "val"]


def grown_text(config: dict) -> str:
    """How the network differs from the `compact` preset (a grown model: more layers, wider MLP)."""
    preset = registry.presets()["compact"][1].config.to_dict()
    changed = [
        f"{k} {config[k]}" for k in ("num_layers", "mlp_ratio", "dim", "num_blocks") if config.get(k) != preset[k]
    ]
    return f" with {', '.join(changed)}" if changed else ""


def training_text(spec: Spec, weights: Path, config: dict, stand_in: str | None) -> str:
    meta = read_metadata(weights)
    extra = json.loads(meta.get("extra", "{}"))
    text = f"recipe {spec.recipe}"
    if config:
        text += (
            f"; this run: {config['steps']} steps, {config['schedule']} schedule, {config['warmup_steps']} warm-up, "
            f"Adam lr {config['lr']}, batch {config['batch_size']} of {config['patch_size']}x{config['patch_size']} "
            f"LR crops, L1 + {(config.get('losses') or {}).get('lev', config.get('lev_weight'))} LEV, "
            f"EMA {config['ema_decay']}"
            + (", continuing the weights of the recipe's earlier stages" if config.get("resume") else "")
        )
    if "step" in extra:
        text += f"; shipped: EMA weights of step {extra['step']} ({extra.get('selection', 'best validation')})"
    if meta.get("training"):
        text += f" ({meta['training']})"
    return f"STAND-IN ({stand_in}); {text}" if stand_in else text


# -- documents -----------------------------------------------------------------------------


def records() -> dict[str, dict]:
    return {name: zoo.summary(path) for name, path in zoo.builtin_models().items()}


def stand_in(info: dict) -> bool:
    return str(info.get("training", "")).startswith("STAND-IN")


def gain(ev: dict, key: str) -> float:
    return ev[key] - ev[f"bicubic_{key}"]


def ordered(shipped: dict[str, dict]) -> list[tuple[str, dict]]:
    """The shipped models, those of MODELS first in its order."""
    rank = {name: i for i, name in enumerate(BY_NAME)}
    return sorted(shipped.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def domain_figures() -> dict:
    """docs/models/domains.json, written by benchmarks/eval_domains.py ({} where there is none)."""
    return json.loads(DOMAINS.read_text()) if DOMAINS.is_file() else {}


def figure(domains: dict, row: str, split: str, tta: bool = False, lr: str = "clean") -> dict | None:
    wanted = (row, split, tta, lr)
    return next((f for f in domains.get("figures", []) if (f["row"], f["split"], f["tta"], f["lr"]) == wanted), None)


def psnr_cell(f: dict | None) -> str:
    return f"{f['psnr_y']:.2f} ({f['psnr_y'] - f['bicubic_psnr_y']:+.2f})" if f else "-"


def row_label(row: str, tta: bool = False) -> str:
    """A domains.json row as a table names it: a name that runs other settings than its weights
    alone (OWN_WEIGHTS) says so."""
    return f"`{row}{' --tta' if tta else ''}`" + (" (`--denoise auto`)" if row in OWN_WEIGHTS else "")


def gain_cell(domains: dict, row: str, split: str) -> str:
    """Gain in PSNR-Y over bicubic, and with --tta in brackets."""
    plain, tta = figure(domains, row, split), figure(domains, row, split, True)
    if not plain:
        return "-"
    text = f"{plain['psnr_y'] - plain['bicubic_psnr_y']:+.2f}"
    return text + (f" ({tta['psnr_y'] - tta['bicubic_psnr_y']:+.2f})" if tta else "")


def readme_table(shipped: dict[str, dict], domains: dict) -> str:
    """The evaluation table of every shipped model (from the files' records and domains.json), by
    scale, each scale's bicubic first; a model whose name runs other settings than its weights
    alone (OWN_WEIGHTS) gets a row for each."""
    splits = domains.get("splits", {})
    rows = [
        "| model | scale | parameters | val PSNR-Y / SSIM-Y | "
        + " | ".join(
            ("gain over bicubic (`--tta`): " if i == 0 else "") + s["label"] for i, s in enumerate(splits.values())
        )
        + " | `fat`-degraded val PSNR-Y (gain) | scene speed, LR Mpx/s (per CPU-s) |",
        "|---|---|---|---|" + "---|" * len(splits) + "---|---|",
    ]
    dash = " - |" * len(splits)
    for scale in sorted({info["scale"] for info in shipped.values()}, key=int, reverse=True):
        models = [(name, info) for name, info in ordered(shipped) if info["scale"] == scale]
        ev = models[0][1]["evaluation"]
        degraded = next(
            (info["evaluation"]["degraded"] for _, info in models if "degraded" in info["evaluation"]), None
        )
        rows.append(
            f"| bicubic (Pillow) | x{scale} | - | {ev['bicubic_psnr_y']:.3f} / {ev['bicubic_ssim_y']:.4f} |{dash} "
            + (f"{degraded['bicubic_psnr_y']:.3f} | - |" if degraded else "- | - |")
        )
        for name, info in models:
            params = f"{info['parameters'] / 1e6:.2f} M"
            if name in OWN_WEIGHTS:  # by its name: other settings than its weights alone
                val, fat = figure(domains, name, "ucmerced-val"), figure(domains, name, "ucmerced-val", lr="fat")
                if val:
                    gains = " | ".join(gain_cell(domains, name, split) for split in splits)
                    deg = f"{fat['psnr_y']:.3f} ({fat['psnr_y'] - fat['bicubic_psnr_y']:+.2f})" if fat else "-"
                    rows.append(
                        f"| {row_label(name)} | x{scale} | {params} | {val['psnr_y']:.3f} / {val['ssim_y']:.4f} | "
                        f"{gains} | {deg} | - |"
                    )
            ev, sp = info["evaluation"], info["speed"]
            degraded = ev.get("degraded")
            deg = f"{degraded['psnr_y']:.3f} ({gain(degraded, 'psnr_y'):+.2f})" if degraded else "-"
            notes = [n for n, on in (("default", name == zoo.DEFAULT), ("stand-in", stand_in(info))) if on]
            row = OWN_WEIGHTS.get(name, name)
            label = f"`{row}`" + (f" ({', '.join(notes)})" if notes else "")
            gains = "".join(f" {gain_cell(domains, row, split)} |" for split in splits)
            rows.append(
                f"| {label} | x{scale} | {params} | {ev['psnr_y']:.3f} / {ev['ssim_y']:.4f} |{gains} {deg} | "
                f"{sp.get('lr_mpx_per_s', '-')} ({sp['lr_mpx_per_cpu_s']}) |"
            )
    name, info = next(iter(shipped.items()))
    speed_command = info["speed"]["command"].replace(name, "NAME")
    notes = [
        "",
        "UC Merced val (42 images none of the models trained on), PSNR/SSIM on BT.601 Y, border = scale; LR and "
        "baseline by Pillow's bicubic (the literature's convention): `fatsr evaluate ucmerced/val --model NAME`. "
        "Gains: PSNR-Y (dB) over bicubic, in brackets with `--tta` (the x8 self-ensemble), on UC Merced val and on "
        "satellite tiles of 300 m and 10 m none of the models trained on: `fatsr evaluate SPLIT --model NAME "
        "[--tta]`, splits by `scripts/domain_splits.py`, all by `python benchmarks/eval_domains.py` "
        "(docs/models/domains.json). `fatsr-real-x4` by its name runs `--denoise auto`, `--denoise 1` its weights "
        "alone. Degraded: LR made once by `fatsr degrade ucmerced/val "
        f"--scale 4 --preset fat --seed {DEGRADE_SEED}`, scored with `--lr`. Speed: `{speed_command}` (wall clock). "
        "Each model's card in `docs/models/` has the details; `fatsr models` lists the same figures. "
        "Bands: every built-in model takes red, green, blue (in that order; trained on 8-bit RGB); a raster's "
        "other bands (NIR, SWIR, ...) go bicubic and a raster without red, green and blue goes through the "
        "network band by band as grey (`docs/bands-and-bit-depths.md`).",
    ]
    if any(stand_in(info) for info in shipped.values()):
        notes.append(
            "\n**Stand-in figures**: rows marked (stand-in) are weights of earlier, shorter runs shipped while the "
            "final ones train, their speed timed on a busy shared machine; `scripts/ship_models.py` replaces them "
            "and this table."
        )
    return "\n".join(rows + notes)


def degraded_table(shipped: dict[str, dict]) -> list[str]:
    x4 = {n: i["evaluation"]["degraded"] for n, i in ordered(shipped) if "degraded" in i["evaluation"]}
    if not x4:
        return []
    first = next(iter(x4.values()))
    lines = [
        f"On the degraded val inputs (`fatsr degrade ucmerced/val --scale 4 --preset fat --seed {DEGRADE_SEED}`, "
        "the degradation fatsr-real-x4 trained on, drawn once), scored with `fatsr evaluate --lr`:",
        "",
        "| | PSNR-Y (dB) | SSIM-Y | smoothest third | middle | most textured |",
        "|---|---|---|---|---|---|",
        f"| bicubic (Pillow) | {first['bicubic_psnr_y']:.3f} | {first['bicubic_ssim_y']:.4f} | "
        f"{first['bicubic_psnr_low']:.3f} | {first['bicubic_psnr_mid']:.3f} | {first['bicubic_psnr_high']:.3f} |",
    ]
    for name, ev in x4.items():
        lines.append(
            f"| {OWN_WEIGHTS.get(name, name)} | {ev['psnr_y']:.3f} ({gain(ev, 'psnr_y'):+.2f}) | {ev['ssim_y']:.4f} | {ev['psnr_low']:.3f} | "
            f"{ev['psnr_mid']:.3f} | {ev['psnr_high']:.3f} |"
        )
    return lines


def card(spec: Spec, info: dict, shipped: dict[str, dict], run_dir: Path | None, curve_png: str | None) -> str:
    ev, sp = info["evaluation"], info["speed"]
    c = info["config"]
    path = zoo.builtin_models()[spec.name]
    training = str(info.get("training", ""))
    lines = [
        f"# Model card: `{spec.name}`" + (" (the default model)" if spec.name == zoo.DEFAULT else ""),
        "",
        "*Written by `scripts/ship_models.py` from the model file's record and its training run.*",
        "",
    ]
    if training.startswith("STAND-IN"):
        lines += ["**Stand-in weights** (an earlier, shorter run) until the final run is shipped: figures below "
                  "are those of the stand-in.", ""]  # fmt: skip
    lines += [
        f"**For**: {info.get('description', spec.description)}.",
        "",
        f"File `src/fatsr/weights/{spec.name}.safetensors` ({path.stat().st_size / 1e6:.2f} MB, SHA-256 "
        f"`{zoo.sha256(path)[:16]}...`): `fatsr upscale IMAGE --model {spec.name}`"
        + (" (or no --model)" if spec.name == zoo.DEFAULT else "")
        + f', `fatsr.load_model("{spec.name}")`; `fatsr info {spec.name}` prints everything the file records.',
        "",
        *(AUTO_DENOISE if spec.name == "fatsr-real-x4" else []),
        "## Model",
        f"* FAT (Frequency-Aware Transformer), `compact` preset{grown_text(c)}: D = {c['dim']}, {c['num_blocks']} "
        f"blocks of {c['num_layers']} Swin layer(s) + 1 MAT layer, {c['num_heads']} heads, window {c['window_size']}, "
        f"MLP ratio {c['mlp_ratio']}, pixel-shuffle x{c['scale']} upsampler"
        + (", bicubic skip (the network adds a residual to a bicubic upscale)" if c.get("bicubic_skip") else "")
        + f"; {info['parameters']:,} parameters.",
        f"* Scale x{info['scale']}; bands {info.get('bands', '?').replace(',', ', ')} (in this order); values: "
        f"{info.get('value_range', '?')}.",
        "* Deterministic: the LSH rotations come from a generator seeded by `--seed` (default 0).",
        "",
        "## Training",
        f"* Data: {info.get('training_data', '?')}; ground sample distance {info.get('gsd_m', '?')} m (1 ft). "
        'UC Merced Land Use: Y. Yang and S. Newsam, "Bag-of-visual-words and spatial extensions for land-use '
        'classification", ACM SIGSPATIAL GIS 2010; images of the USGS National Map Urban Area Imagery.',
        f"* Degradation (how its LR images were made): {info.get('degradation', '?')}.",
        f"* Recipe: `configs/recipes/{spec.name}.yaml` (every stage of the training, on `{spec.recipe}`; "
        "`scripts/train_recipe.py` reruns them).",
        f"* Training: {training}.",
        "* Hardware: a shared 2-core AMD EPYC virtual machine, CPU only, one thread.",
    ]
    curve = val_curve(run_dir)
    if curve:
        points = ", ".join(f"{step}: {p:.3f}" for step, p, _ in curve)
        lines.append(
            "* Validation during training (the trainer's convention: clean val, LR by torch's antialiased "
            f"bicubic; step: PSNR-Y dB): {points}."
        )
    if curve_png:
        lines += ["", f"![training curves of the run]({curve_png})"]
    lines += [
        "",
        "## Evaluation",
        f"{ev['data']}. Baseline: Pillow's bicubic upscale of the same LR. Thirds: pixels by 7x7 local "
        "variance of the HR (texture).",
        "",
        "| | PSNR-Y (dB) | SSIM-Y | smoothest third | middle | most textured |",
        "|---|---|---|---|---|---|",
        f"| bicubic (Pillow) | {ev['bicubic_psnr_y']:.3f} | {ev['bicubic_ssim_y']:.4f} | {ev['bicubic_psnr_low']:.3f} | "
        f"{ev['bicubic_psnr_mid']:.3f} | {ev['bicubic_psnr_high']:.3f} |",
        f"| {spec.name} | {ev['psnr_y']:.3f} | {ev['ssim_y']:.4f} | {ev['psnr_low']:.3f} | {ev['psnr_mid']:.3f} | "
        f"{ev['psnr_high']:.3f} |",
        f"| gain | {gain(ev, 'psnr_y'):+.3f} | {gain(ev, 'ssim_y'):+.4f} | {gain(ev, 'psnr_low'):+.3f} | "
        f"{gain(ev, 'psnr_mid'):+.3f} | {gain(ev, 'psnr_high'):+.3f} |",
        "",
        f"Command: `{ev['command']}` (means from its summary.json).",
    ]
    if spec.degraded:
        lines += ["", *degraded_table(shipped)]
    lines += [
        "",
        "## Speed",
        f"{sp.get('lr_mpx_per_s', '?')} LR megapixels per second ({sp['lr_mpx_per_cpu_s']} per CPU-second), "
        f"{sp.get('threads', '?')} threads, on {sp.get('scene', 'a tiled scene')}, measured {sp.get('measured', '')} "
        f"by `{sp['command']}`.",
        "",
        "## Limits",
        f"* {spec.limits}",
        "* One sensor type: US urban orthophotos, 0.3 m, 8-bit RGB. Other sensors, scales, seasons or "
        "multispectral bands (`fatsr upscale --bands`) are out of its training distribution: expect less.",
    ]
    if gain(ev, "psnr_low") < 0:
        lines.append(
            f"* In the smoothest third of pixels it is {gain(ev, 'psnr_low'):+.2f} dB against bicubic (val, "
            "table above): flat areas come out worse than plain bicubic."
        )
    lines += domain_section(spec, domain_figures())
    lines += ["", "## Licence", f"{info.get('licence', '?')}."]
    return "\n".join(lines) + "\n"


def domain_section(spec: Spec, domains: dict) -> list[str]:
    """A card's section: the model on every domain split, without and with --tta (and the x4
    models on degraded LR), from domains.json, with the commands that rerun it."""
    lines = ["", DOMAIN_SECTION]
    splits = domains.get("splits", {})
    rows = [spec.name, *([OWN_WEIGHTS[spec.name]] if spec.name in OWN_WEIGHTS else [])]
    if not figure(domains, rows[0], "ucmerced-val"):
        return lines + ["Not measured yet: `python benchmarks/eval_domains.py --splits splits` measures it."]
    images = {s: (figure(domains, rows[0], s) or {}).get("images", "?") for s in splits}
    lines += [
        "PSNR-Y (dB) and its gain over Pillow's bicubic upscale of the same LR (Pillow bicubic of the HR). `--tta`: "
        "the x8 self-ensemble (the 8 flips and quarter turns of each tile, averaged; 8 times the network's work). "
        "UC Merced val is of the domain it was trained on; the satellite splits are cut by "
        "`scripts/domain_splits.py` from imagery none of the models trained on: the four quarters of rasterio's "
        "Landsat 7 test composite (300 m) and 18 tiles of a Sentinel-2 L1C scene west of Berlin (10 m).",
        "",
        "| | " + " | ".join(f"{s['label']} ({images[n]})" for n, s in splits.items()) + " |",
        "|---|" + "---|" * len(splits),
        "| bicubic (Pillow) | "
        + " | ".join(f"{f['bicubic_psnr_y']:.2f}" if (f := figure(domains, rows[0], n)) else "-" for n in splits)
        + " |",
    ]
    for row in rows:
        for tta in (False, True):
            cells = " | ".join(psnr_cell(figure(domains, row, n, tta)) for n in splits)
            lines.append(f"| {row_label(row, tta)} | {cells} |")
    commands = [f"`{figure(domains, row, 'ucmerced-val')['command'].replace('ucmerced/val', 'SPLIT')} [--tta]`"
                for row in rows]  # fmt: skip
    paths = ", ".join(f"`{s['command_path']}`" for s in splits.values())
    lines += [
        "",
        f"Rerun: {' and '.join(commands)} for SPLIT in {paths}, the satellite splits made by "
        f"`{domains['splits_made_by']}`; all of them: `{domains['made_by']}` (measured {domains['measured']}, "
        "one thread each, into docs/models/domains.json).",
    ]
    if spec.scale == 4:
        x4 = ["fatsr-x4", "fatsr-real-x4", OWN_WEIGHTS["fatsr-real-x4"]]
        sets = [(n, lr) for n in splits for lr in ("mild", "fat") if figure(domains, x4[0], n, lr=lr)]
        if sets:
            lines += [
                "",
                "On degraded LR: `fatsr degrade SPLIT -o lr-PRESET --preset PRESET --scale 4 --seed 0`, then "
                "`fatsr evaluate SPLIT --lr lr-PRESET --model NAME`; `mild` is slight blur, light noise and JPEG "
                "75-85, `fat` the FAT release's heavy degradation that fatsr-real-x4 was trained on:",
                "",
                "| | " + " | ".join(f"{splits[n]['label']}, {lr}" for n, lr in sets) + " |",
                "|---|" + "---|" * len(sets),
                "| bicubic (Pillow) | "
                + " | ".join(f"{figure(domains, x4[0], n, lr=lr)['bicubic_psnr_y']:.2f}" for n, lr in sets)
                + " |",
                *(f"| {row_label(row)} | " + " | ".join(psnr_cell(figure(domains, row, n, lr=lr)) for n, lr in sets) + " |"
                  for row in x4),
            ]  # fmt: skip
    lines += [
        "",
        "`--denoise` strengths and how `auto` chooses them: [ensembles](../ensembles.md) "
        "(`benchmarks/eval_tta_denoise.sh`)."
        if spec.scale == 4
        else "More on `--tta`: [ensembles](../ensembles.md).",
    ]
    if spec.scale == 4:
        lines.append(
            "How well `--uncertainty` (the ensemble's per-pixel spread) predicts its actual error, per pixel "
            "and per 32x32 tile on val: [ensembles](../ensembles.md#uncertainty-where-the-network-is-unsure) "
            "(`benchmarks/eval_uncertainty.py`)."
        )
    return lines


def put_domain_section(path: Path, section: list[str]) -> None:
    """Replace a card's domain section (its heading, up to the next one) by ``section``."""
    text = path.read_text()
    start = text.find(f"\n{DOMAIN_SECTION}\n")
    if start < 0:
        sys.exit(f"error: {path} has no section {DOMAIN_SECTION!r}; write the card with the runs")
    end = text.find("\n## ", start + 1)
    path.write_text(text[:start] + "\n".join([*section, ""]) + text[end:])


def model_card_index(shipped: dict[str, dict], table: str) -> str:
    lines = [
        "# Model cards: the built-in models",
        "",
        "*Written by `scripts/ship_models.py`; one card per model in `docs/models/`.*",
        "",
        "`fatsr models` lists them, `fatsr info NAME` prints what a model file records. All are the "
        "`compact` FAT configuration (the best FAT configuration of the equal-time comparison, "
        "`docs/model-comparison.md`) trained on UC Merced Land Use; the x4 models' networks were then "
        "grown to 3 Swin layers per block and MLP ratio 4 (stage 5 of their recipes in `configs/`).",
        "",
    ]
    lines += [f"* [`{name}`](docs/models/{name}.md): {info.get('description', '')}" for name, info in ordered(shipped)]
    lines += [
        "* `fatsr-compact-x4` (the default until fatsr-x4): the `compact` network trained on 168 of the "
        "images (configs/compact-x4.yaml, the first stage of fatsr-x4's recipe); the name now runs fatsr-x4, "
        "with a warning. It is not kept: the `compact` network is only 1.08x faster than the grown one "
        "(scene, 1024^2, 2 threads, quiet machine: 0.0504 against 0.0468 LR Mpx/s) and fatsr-x4 is 0.22 dB better (28.613 against 28.395 dB).",
        "",
        table,
    ]
    return "\n".join(lines) + "\n"


def put_readme_table(table: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = text.find(MARKERS[0]), text.find(MARKERS[1])
    if start < 0 or end < start:
        sys.exit(f"error: README.md has no {MARKERS[0]} ... {MARKERS[1]} block for the table")
    readme.write_text(text[: start + len(MARKERS[0])] + "\n" + table + "\n" + text[end:])


# -- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, help="folder of the run folders x4, real, x2")
    parser.add_argument("--run", action="append", default=[], metavar="NAME=PATH",
                        help="a model's run folder (its best.safetensors) or weights file")  # fmt: skip
    parser.add_argument("--val", type=Path, help="the UC Merced val folder (42 HR images)")
    parser.add_argument("--work", type=Path, help="folder for evaluations, inputs and timings")
    parser.add_argument(
        "--docs", action="store_true", help="only rewrite the tables and the cards' domain sections (no runs)"
    )
    parser.add_argument("--models", nargs="+", choices=list(BY_NAME), default=list(BY_NAME))
    parser.add_argument("--speed", action="store_true", help="time the models again (on a quiet machine)")
    parser.add_argument("--speed-size", type=int, default=1024, help="side of the LR scene timed (default 1024)")
    parser.add_argument("--jobs", type=int, default=2, help="evaluations run at once, one thread each (default 2)")
    parser.add_argument(
        "--stand-in", metavar="TEXT", help="ship as stand-in weights, saying TEXT (where they come from)"
    )
    args = parser.parse_args()

    if any("=" not in item for item in args.run):
        parser.error("--run takes NAME=PATH, e.g. --run fatsr-x4=runs/x4")
    overrides = {name: Path(path) for name, path in (item.split("=", 1) for item in args.run)}
    unknown = set(overrides) - set(BY_NAME)
    if unknown:
        parser.error(f"--run: no model {', '.join(sorted(unknown))}; choose from {', '.join(BY_NAME)}")
    if args.docs:
        write_docs([BY_NAME[name] for name in args.models])
        return
    if args.val is None or args.work is None:
        parser.error("give --val and --work (or --docs)")
    val = args.val.resolve()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    specs = [BY_NAME[name] for name in args.models]
    sources: dict[str, tuple[Path, Path | None]] = {}  # name -> (weights, run folder)
    for spec in specs:
        path = overrides.get(spec.name) or (args.runs / spec.run if args.runs else None)
        if path is None:
            sys.exit(f"error: {spec.name}: give --runs or --run {spec.name}=PATH")
        weights = path / "best.safetensors" if path.is_dir() else path
        run_dir: Path | None = path if path.is_dir() else path.parent
        if not weights.is_file():
            sys.exit(
                f"error: {spec.name}: no weights file {weights} (best.safetensors comes with the first validation)"
            )
        if run_dir is not None and not (run_dir / "config.yaml").is_file():
            run_dir = None  # a weights file alone: no run record
        # a copy: a run still training may replace its best.safetensors while this one is measured
        digest = sha256(weights)
        snapshot = work / "weights" / f"{spec.name}-{digest[:12]}.safetensors"
        snapshot.parent.mkdir(exist_ok=True)
        shutil.copyfile(weights, snapshot)
        if sha256(snapshot) != digest:
            sys.exit(f"error: {weights} changed while it was copied (a validation of its run?); run again")
        network, _ = load_network(snapshot)
        kind = registry.of(network).name
        if network.scale != spec.scale or kind != "FAT":
            sys.exit(f"error: {weights} is a x{network.scale} {kind} network, not {spec.name}'s")
        sources[spec.name] = (snapshot, run_dir.resolve() if run_dir else None)
        print(f"{spec.name}: {weights} (sha256 {digest[:12]}), measured and shipped from {snapshot}")

    degraded = degraded_inputs(val, work) if any(s.degraded for s in specs) else None
    plans: dict[str, dict[str, Evaluation]] = {}  # name -> its evaluations: clean/degraded, model/bicubic
    for spec in specs:
        weights, _ = sources[spec.name]
        key = f"{spec.name}-{sha256(weights)[:12]}"
        plans[spec.name] = {
            "model": Evaluation(key, str(weights), spec.scale, None),
            "bicubic": Evaluation(f"bicubic-x{spec.scale}", "bicubic", spec.scale, None),
        }
        if spec.degraded:
            plans[spec.name]["degraded model"] = Evaluation(f"fat-{key}", str(weights), 4, degraded)
            plans[spec.name]["degraded bicubic"] = Evaluation("bicubic-fat-x4", "bicubic", 4, degraded)
    jobs = list(dict.fromkeys(job for plan in plans.values() for job in plan.values()))
    with ThreadPoolExecutor(args.jobs) as pool:
        folders = dict(zip(jobs, pool.map(lambda job: evaluate(val, work, job), jobs)))
    evaluations: dict[str, dict] = {}
    for spec in specs:
        plan = plans[spec.name]
        command = f"fatsr evaluate {name_of(val)} --model {spec.name}"
        record = evaluation(folders[plan["model"]], folders[plan["bicubic"]], command)
        if spec.degraded:
            assert degraded is not None
            data = (f"{name_of(val)} ({len(list(degraded.glob('*.png')))} images), x4, border 4, BT.601 Y; LR by "
                    f"`fatsr degrade --preset fat --seed {DEGRADE_SEED}`")  # fmt: skip
            command = (f"fatsr degrade {name_of(val)} -o lr-fat --scale 4 --preset fat --seed {DEGRADE_SEED}; "
                       f"fatsr evaluate {name_of(val)} --lr lr-fat --model {spec.name}")  # fmt: skip
            folder, base = folders[plan["degraded model"]], folders[plan["degraded bicubic"]]
            record["degraded"] = evaluation(folder, base, command, data=data)
        evaluations[spec.name] = record

    speeds = {spec.name: speed(spec, sources[spec.name][0], work, args.speed, args.speed_size) for spec in specs}

    for spec in specs:
        weights, run_dir = sources[spec.name]
        config = run_config(run_dir)
        info = {
            "description": spec.description,
            "training_data": (config.get("model_info") or {}).get("training_data", TRAINING_DATA),
            "gsd_m": GSD_M,
            "degradation": spec.degradation,
            "licence": LICENCE,
            "training": training_text(spec, weights, config, args.stand_in),
        }
        ship(weights, spec.name, info, evaluations[spec.name], speeds[spec.name], WEIGHTS / f"{spec.name}.safetensors")

    shipped = records()
    docs = ROOT / "docs" / "models"
    docs.mkdir(exist_ok=True)
    for spec in specs:
        _, run_dir = sources[spec.name]
        png = run_dir / "progress.png" if run_dir else None
        curve_png = None
        if png and png.is_file():
            curve_png = f"{spec.name}-progress.png"
            shutil.copyfile(png, docs / curve_png)
        (docs / f"{spec.name}.md").write_text(card(spec, shipped[spec.name], shipped, run_dir, curve_png))
        print(f"wrote docs/models/{spec.name}.md" + (f" and {curve_png}" if curve_png else ""))
    write_tables(shipped)


def write_tables(shipped: dict[str, dict]) -> None:
    table = readme_table(shipped, domain_figures())
    (ROOT / "MODEL_CARD.md").write_text(model_card_index(shipped, table))
    put_readme_table(table)
    print("wrote MODEL_CARD.md and README.md's table:\n")
    print(table)


def write_docs(specs: list[Spec]) -> None:
    """--docs: each card's domain section, MODEL_CARD.md and README.md's table from the shipped
    files and domains.json."""
    domains = domain_figures()
    for spec in specs:
        put_domain_section(ROOT / "docs" / "models" / f"{spec.name}.md", domain_section(spec, domains))
        print(f"wrote the domain section of docs/models/{spec.name}.md")
    write_tables(records())


if __name__ == "__main__":
    main()

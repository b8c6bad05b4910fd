"""Fit ``--denoise auto`` (:mod:`fatsr.models.strength`): for UC Merced *training* images made
clean (Pillow bicubic x1/4), ``mild`` and ``fat`` (``fatsr degrade --seed 7``), PSNR-Y (border 4)
of fatsr-x4/fatsr-real-x4 mixed at strengths 0, 0.5 and 1, and each LR's sharpness; then the
SHARP/BLURRED pair that gives the best mean on ``fat`` while losing nothing to fatsr-x4 (strength
0) on clean and mild (PSNR between measured strengths interpolated linearly).

    python benchmarks/calibrate_denoise.py ../shared/data/ucmerced/train [WORK] [--every 8]

Prints one line per image and kind, then the fit and its mean gains over strength 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import fatsr
from fatsr.data.resize import pillow_bicubic_downscale
from fatsr.evaluation.metrics import psnr
from fatsr.models.strength import STEPS, sharpness

STRENGTHS = (0.0, 0.5, 1.0)
KINDS = ("clean", "mild", "fat")


def measure(train: Path, work: Path, every: int) -> list[dict]:
    hr_dir = work / "hr"
    hr_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(train.glob("*.png"))[::every]:
        (hr_dir / path.name).write_bytes(path.read_bytes())
    for kind in KINDS[1:]:
        if not (work / kind).is_dir():
            subprocess.run(["fatsr", "degrade", str(hr_dir), "-o", str(work / kind), "--preset", kind, "--scale", "4",
                            "--seed", "7", "-q"], check=True)  # fmt: skip
    models = {s: fatsr.load_model("fatsr-real-x4", denoise=s) for s in STRENGTHS}
    rows = []
    for path in sorted(hr_dir.glob("*.png")):
        hr = np.asarray(Image.open(path).convert("RGB"))
        for kind in KINDS:
            if kind == "clean":
                lr = pillow_bicubic_downscale(hr, 4)
            else:
                lr = np.asarray(Image.open(work / kind / path.name).convert("RGB"))
            x = torch.from_numpy(lr.transpose(2, 0, 1).astype(np.float32) / 255)[None]
            row = {"name": path.name, "kind": kind, "sharpness": float(sharpness(x)[0])}
            row.update({str(s): psnr(fatsr.upscale(lr, m), hr, border=4) for s, m in models.items()})
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def at(row: dict, s: float) -> float:
    """PSNR at strength ``s``, linear between the measured strengths."""
    lo = max(t for t in STRENGTHS if t <= s)
    hi = min(t for t in STRENGTHS if t >= s)
    return row[str(lo)] if hi == lo else row[str(lo)] + (row[str(hi)] - row[str(lo)]) * (s - lo) / (hi - lo)


def gains(rows: list[dict], sharp: float, blurred: float) -> dict[str, float]:
    def strength(v: float) -> float:
        return round(float(np.clip((sharp - v) / (sharp - blurred), 0, 1)) * STEPS) / STEPS

    return {
        k: float(np.mean([at(r, strength(r["sharpness"])) - r["0.0"] for r in rows if r["kind"] == k])) for k in KINDS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train", type=Path)
    parser.add_argument("work", type=Path, nargs="?")
    parser.add_argument("--every", type=int, default=8, help="take every N-th training image (default 8: 21 of 168)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="fatsr-calibrate-"))
    rows = measure(args.train, work, args.every)
    values = np.array([r["sharpness"] for r in rows])
    best: tuple[float, float, float] | None = None
    for sharp in np.linspace(*np.percentile(values, [2, 98]), 40):
        for blurred in np.linspace(values.min(), sharp, 20)[:-1]:
            g = gains(rows, sharp, blurred)
            if g["clean"] >= 0 and g["mild"] >= 0 and (best is None or g["fat"] > best[0]):
                best = (g["fat"], sharp, blurred)
    for k in KINDS:
        one = np.mean([r["1.0"] - r["0.0"] for r in rows if r["kind"] == k])
        print(f"{k}: strength 1 minus strength 0: {one:+.3f} dB")
    if best is None:
        print("no pair loses nothing on clean and mild")
        return
    _, sharp, blurred = best
    print(f"fit: SHARP = {sharp:.3f}, BLURRED = {blurred:.3f}; mean gain over strength 0: "
          + ", ".join(f"{k} {v:+.3f} dB" for k, v in gains(rows, sharp, blurred).items()))  # fmt: skip


if __name__ == "__main__":
    main()

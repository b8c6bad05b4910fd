"""Training pairs for a blind CNN: one HR image, one LR of a kind drawn per pair.

    python configs/experiments/blind-cnn/make_pairs.py HR_DIR [HR_DIR ...] -o OUT

For each HR image and each of two seeds (two pairs per image, named NAME_a.png and NAME_b.png in
OUT/HR and OUT/LR): with probability 1/4 the clean LR (Pillow bicubic x1/4), 1/4 the `mild`
preset's LR, 1/2 the clean LR plus s times the `fat` preset's change to it, s uniform in
[0.5, 1] (blur, noise and JPEG error scaled together). The mild and fat LRs come from
`fatsr degrade --preset mild|fat --scale 4 --seed 1|2`, written to OUT/mild1, OUT/fat1, ...
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from fatsr.data.resize import pillow_bicubic_downscale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hr_dirs", nargs="+", type=Path)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=2027, help="seed of the kinds and strengths drawn")
    args = parser.parse_args()
    sources = args.out / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    for folder in args.hr_dirs:
        for path in sorted(folder.glob("*.png")):
            shutil.copy(path, sources / path.name)
    (args.out / "HR").mkdir(exist_ok=True)
    (args.out / "LR").mkdir(exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for seed, tag in ((1, "a"), (2, "b")):
        made = {}
        for preset in ("mild", "fat"):
            made[preset] = args.out / f"{preset}{seed}"
            if not made[preset].is_dir():
                subprocess.run(["fatsr", "degrade", str(sources), "-o", str(made[preset]), "--preset", preset,
                                "--scale", "4", "--seed", str(seed), "-q"], check=True)  # fmt: skip
        for path in sorted(sources.glob("*.png")):
            hr = np.asarray(Image.open(path).convert("RGB"))
            clean = pillow_bicubic_downscale(hr, 4).astype(np.float64)
            kind = rng.random()
            if kind < 0.25:
                lr = clean
            elif kind < 0.5:
                lr = np.asarray(Image.open(made["mild"] / path.name).convert("RGB")).astype(np.float64)
            else:
                fat = np.asarray(Image.open(made["fat"] / path.name).convert("RGB")).astype(np.float64)
                lr = clean + rng.uniform(0.5, 1.0) * (fat - clean)
            name = f"{path.stem}_{tag}.png"
            Image.fromarray(hr).save(args.out / "HR" / name)
            Image.fromarray(np.clip(np.round(lr), 0, 255).astype(np.uint8)).save(args.out / "LR" / name)


if __name__ == "__main__":
    main()

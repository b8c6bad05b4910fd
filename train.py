"""The published training script's command line, kept working: ``python train.py [flags]``
runs ``fatsr train --recipe published`` (unless another --recipe is given): --data_dir
./datasets/train with HR/ and LR/, --save_dir ./checkpoints/v1, --batch_size 2, --lr 1e-4,
--epochs 100, the published-size network, whole images resized to 120/480, no augmentation,
no EMA, raw [-1, 1] VGG input."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))  # runs from a checkout too

from fatsr.cli import main

if __name__ == "__main__":
    flags = sys.argv[1:]
    if not any(flag == "--recipe" or flag.startswith("--recipe=") for flag in flags):
        flags = ["--recipe", "published", *flags]
    raise SystemExit(main(["train", *flags]))
